/**
 * The scenarios of the verification matrix (issue 5, section 2): what each runs, and what
 * each must show per backend and --dr-switch mode. A mode not listed for a scenario is
 * "n/a": that part of the fix plays no role in what the scenario looks at, so the cell is
 * not run (the part is proved by another scenario).
 */
import { detect, Expectation, notApplicable, pass } from './expectations';
import { VerifyBackend } from './verify-options';

/** stock gdb runs a scenario script from gdb-scripts/ against `serve` of the guest. */
export interface GdbRun {
  kind: 'gdb';
  script: string;
  guest: string;
}

/** `vmm-gdbstub run` of a guest with its own checks (PASS/FAIL lines, exit status 0). */
export interface GuestRun {
  kind: 'guest';
  guest: string;
  args: string[];
}

/**
 * `vmm-gdbstub run --json` of a guest with no debugger: the host's side of the story (the
 * leak detector's count, the host watchpoint hits) and the guest's exit status.
 */
export interface StatsRun {
  kind: 'stats';
  guest: string;
  args: string[];
  /** No leak may be reported (failure kind "leak"). */
  noLeaks: boolean;
  /** The host's own watchpoints must have fired (failure kind "host-watch-disturbed"). */
  hostWatchFires: boolean;
}

export type ScenarioRun = GdbRun | GuestRun | StatsRun;

type ModeExpectations = Partial<Record<string, Expectation | ((backend: VerifyBackend) => Expectation)>>;

export interface Scenario {
  name: string;
  title: string;
  runs(backend: VerifyBackend): ScenarioRun[];
  expect(backend: VerifyBackend, mode: string): Expectation;
}

function scenario(name: string, title: string, runs: (backend: VerifyBackend) => ScenarioRun[],
  modes: ModeExpectations): Scenario {
  return {
    name, title, runs,
    expect(backend, mode) {
      if (backend === 'kvm') return kvmExpectation(name);
      const entry = modes[mode];
      if (entry === undefined) return notApplicable(`--dr-switch ${mode} plays no role in ${name}`);
      return typeof entry === 'function' ? entry(backend) : entry;
    },
  };
}

const gdb = (script: string, guest: string): GdbRun => ({ kind: 'gdb', script, guest });
const vmxOnly = (e: Expectation, why = 'a VT-x-only part of the fix') =>
  (b: VerifyBackend): Expectation => (b === 'vmx' ? e : notApplicable(why));
const svmOnly = (e: Expectation, why = 'an SVM-only part of the fix') =>
  (b: VerifyBackend): Expectation => (b === 'svm' ? e : notApplicable(why));

/**
 * On kvm the host kernel switches the debug registers: what applies must simply pass (and
 * shows it when this host gets it wrong); what needs our host scenarios, leak detector or
 * SVM VMCB does not apply.
 */
const KVM_SCENARIOS = ['watch-write', 'access-hbreak', 'selfwatch', 'stepping'];
function kvmExpectation(name: string): Expectation {
  return KVM_SCENARIOS.includes(name) ? pass("on the host's /dev/kvm: the host kernel switches the debug registers")
    : notApplicable(`${name} needs the simulated host (host scenarios, leak detector or the SVM VMCB)`);
}

const LOST_DRS = 'guest DR0-3/DR7 lost at VM exits: hits missed';

export const SCENARIOS: readonly Scenario[] = [
  scenario('watch-write', 'gdb write watchpoint on a guest global across I/O, CPUID, HLT and preemption exits',
    () => [gdb('scenario-watch-write.gdb', 'counter.elf')], {
      full: pass(),
      none: detect(LOST_DRS, 'missed-hits'),
      'no-guest-dr0-3': detect('guest DR0-3 not loaded: the watchpoint address is not in DR0', 'missed-hits'),
    }),
  scenario('access-hbreak', 'gdb access watchpoint and hardware breakpoint across the same exits',
    () => [gdb('scenario-access-hbreak.gdb', 'counter.elf')], {
      full: pass(),
      none: detect(LOST_DRS, 'missed-hits'),
      'no-guest-dr0-3': detect('guest DR0-3 not loaded', 'missed-hits'),
    }),
  scenario('selfwatch', "the guest's own debugger, without and with gdb attached",
    () => [
      { kind: 'guest', guest: 'selfwatch.elf', args: ['--preempt-every', '1000', '--host-scenario', 'host-watch'] },
      gdb('scenario-selfwatch.gdb', 'selfwatch.elf'),
    ], {
      full: pass(),
      none: detect("the guest's breakpoints stop firing after the first VM exit", 'guest-checks-failed'),
      'no-guest-dr0-3': detect("the guest's DR0-3 take host values", 'guest-checks-failed'),
      'no-guest-dr6': vmxOnly(detect("the guest's DR6 is not switched: its status bits are wrong",
        'guest-checks-failed'), 'SVM keeps the guest DR6 in the VMCB'),
    }),
  scenario('host-isolation', 'host watchpoints keep firing; no guest value reaches the host (monitor leaks)',
    () => [
      { kind: 'stats', guest: 'counter.elf', args: ['--preempt-every', '500', '--host-scenario', 'host-watch'],
        noLeaks: true, hostWatchFires: true },
      gdb('scenario-host-isolation.gdb', 'counter.elf'),
    ], {
      full: pass(),
      none: detect('guest and host debug registers leak into each other', 'leak', 'missed-hits'),
      'no-guest-dr0-3': detect('host DR0-3 stay loaded in the guest', 'leak', 'missed-hits'),
      'no-guest-dr6': vmxOnly(detect('the host DR6 stays loaded in the guest', 'leak'),
        'SVM keeps the guest DR6 in the VMCB'),
      'no-host-dr7-debugctl': detect('host DR7/DEBUGCTL not restored after the exit', 'leak', 'host-watch-disturbed'),
    }),
  scenario('dr6-race', 'VT-x DR6 race: a host debugger steps the VM-entry path (TF guard; determined debugger)',
    (backend) => backend === 'vmx'
      ? [
        gdb('scenario-dr6-race.gdb', 'counter.elf'),
        // The guest's own view of its DR6 (gdb reads the saved guest view; selfwatch reads DR6 itself).
        { kind: 'guest', guest: 'selfwatch.elf', args: ['--preempt-every', '500', '--host-scenario', 'kdb-step'] },
        gdb('scenario-dr6-determined.gdb', 'counter.elf'),
      ]
      : [gdb('scenario-dr6-race.gdb', 'counter.elf')], {
      full: (b) => pass(b === 'vmx'
        ? 'TF guard keeps DR6 intact; the determined debugger still corrupts it (documented limitation)'
        : 'no race on SVM: the guest DR6 is in the VMCB'),
      none: (b) => (b === 'vmx'
        ? detect('no DR6 switch at all: the guest reads the host DR6', 'dr6-corrupted', 'guest-checks-failed')
        : pass('no race on SVM: VMRUN loads the guest DR6 from the VMCB')),
      'no-tf-guard': vmxOnly(detect("the host's single-step trap sets BS in the guest's DR6", 'dr6-corrupted')),
      'no-guest-dr6': vmxOnly(detect("the guest's DR6 is not loaded: the guest reads the host DR6",
        'dr6-corrupted', 'guest-checks-failed')),
    }),
  scenario('svm-clean-bits', 'SVM clean bits: a guest DR7 written through the stub takes effect only when marked dirty',
    () => [gdb('scenario-svm-clean-bits.gdb', 'counter.elf')], {
      full: (b) => pass(b === 'vmx' ? 'VT-x: the guest DR7 is a VMCS field, no cache' : undefined),
      // Only the checks that look at the new DR7 count: a failure elsewhere is not this bug.
      'no-svm-dirty': svmOnly(detect('the VMCB keeps the stale cached DR7', 'stub-dr7-took-effect:leak',
        'vmmctl-dr7-took-effect:leak', 'gdb-watch-after-guest-ran:missed-hits')),
    }),
  scenario('stepping', "stepi through VM exits and a guest interrupt; the guest never sees the debugger's TF",
    () => [gdb('scenario-stepping.gdb', 'stepper.elf')], {
      full: pass(),
      none: pass('stepping uses the guest TF and the #DB intercept, not the DR switch'),
    }),
];

export const VERIFY_SCENARIOS: readonly string[] = SCENARIOS.map((s) => s.name);

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
