/** What all vCPUs of a VM share: the one physical CPU, the host, the leak detector, the device bus. */
import { PhysicalCpu } from '../cpu/physical-cpu';
import { DeviceBus } from '../devices/bus';
import { GuestTimer } from '../devices/guest-timer';
import { PcPlatform } from '../devices/pc-platform';
import { GuestMemory } from '../memory';
import { TraceEvent, VmOptions } from '../vmm-types';
import { ExitCounts } from './exit';
import { HostContext, HostScenarioRunner } from './host';
import { LeakDetector } from './leak-detector';

export interface VmShared {
  readonly opts: VmOptions;
  readonly memory: GuestMemory;
  readonly phys: PhysicalCpu;
  readonly host: HostContext;
  readonly scenario: HostScenarioRunner;
  readonly leaks: LeakDetector;
  readonly bus: DeviceBus;
  readonly timer: GuestTimer;
  /** The PC devices (local APICs, 8259s, UART, fw_cfg, PM timer). */
  readonly platform: PcPlatform;
  readonly exits: ExitCounts;
  transitions: number;
  /** Null when nobody listens (the hot path then builds no events). */
  trace: ((ev: TraceEvent) => void) | null;
  now(): number;
  /** A device says an interrupt may now be pending: halted vCPUs look again. */
  /** Re-checks the halted vCPUs after a device access; true when one of them woke. */
  wake(): boolean;
}
