import { BackendName } from '../vmm-types';
import { XSAVE_AREA_BYTES } from '../cpu/fpu-image';

/* The guest ABI's ports are devices (vmm/devices: debug-console, exit-port, guest-timer). */

function str4(s: string): number {
  return (s.charCodeAt(0) | (s.charCodeAt(1) << 8) | (s.charCodeAt(2) << 16) | (s.charCodeAt(3) << 24)) >>> 0;
}

const INTEL = [str4('Genu'), str4('ineI'), str4('ntel')];
const AMD = [str4('Auth'), str4('enti'), str4('cAMD')];

/**
 * CPUID features, leaf 1 EDX: DE, PSE, TSC, MSR, PAE, CX8, PGE, CMOV, FXSR, SSE, SSE2. Not
 * FPU: the CPU has the x87 state and control instructions (vmm/cpu/fpu-exec.ts) but no x87
 * arithmetic. ECX: XSAVE (x87|SSE components) and OSXSAVE (a copy of CR4.OSXSAVE).
 */
const LEAF1_EDX = (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 8) | (1 << 9) | (1 << 13) |
  (1 << 15) | (1 << 24) | (1 << 25) | (1 << 26); // bit 9: the local APIC (vmm/devices)
/** Leaf 1 ECX: x2APIC (21) and the APIC timer's TSC-deadline mode (24). */
const LEAF1_ECX_APIC = (1 << 21) | (1 << 24);
/** Leaf 1 ECX: PCID (17; vmm/cpu/pcid.ts). */
const LEAF1_ECX_PCID = 1 << 17;
/** Leaf 7 subleaf 0 EBX: SMEP (7) and SMAP (20, with STAC/CLAC; vmm/cpu/mmu.ts), INVPCID (10; vmm/cpu/pcid.ts). */
const LEAF7_EBX = (1 << 7) | (1 << 10) | (1 << 20);
const LEAF1_ECX_XSAVE = 1 << 26;
const LEAF1_ECX_OSXSAVE = 1 << 27;
/** Leaf 0DH: XCR0 may hold x87|SSE; their XSAVE area is the legacy region plus the header. */
const XCR0_SUPPORTED = 3;

/** Leaf 8000_0001H EDX: SYSCALL, NX, RDTSCP (27, with IA32_TSC_AUX), LM. */
const EXT1_EDX = (1 << 11) | (1 << 20) | (1 << 27) | (1 << 29);
/** Leaf 7 subleaf 0 ECX: RDPID (22). */
const LEAF7_ECX = 1 << 22;

/**
 * CPUID as the hypervisor emulates it: vendor by backend, family 6, the features the
 * CPU model implements (DE included: debugging extensions, CR4.DE and I/O breakpoints).
 * Writes [eax, ebx, ecx, edx] into `out`.
 */
export function emulateCpuid(backend: BackendName, leaf: number, subleaf: number, vcpu: number, vcpus: number, out: Uint32Array, cr4 = 0): void {
  out[0] = 0; out[1] = 0; out[2] = 0; out[3] = 0; // (not fill(): a runtime call, on every CPUID exit)
  const vendor = backend === 'vmx' ? INTEL : AMD;
  switch (leaf >>> 0) {
    case 0:
      out[0] = 0xd;
      out[1] = vendor[0];
      out[3] = vendor[1];
      out[2] = vendor[2];
      return;
    case 1:
      out[0] = 0x000306a9; // family 6, model 3A, stepping 9
      out[1] = ((vcpu & 0xff) << 24) | ((vcpus & 0xff) << 16) | (8 << 8);
      out[2] = LEAF1_ECX_APIC | LEAF1_ECX_PCID | LEAF1_ECX_XSAVE | (cr4 & (1 << 18) ? LEAF1_ECX_OSXSAVE : 0);
      out[3] = LEAF1_EDX;
      return;
    case 7:
      if (subleaf === 0) { out[1] = LEAF7_EBX; out[2] = LEAF7_ECX; }
      return;
    case 0xd:
      if (subleaf === 0) { // (subleaf 1: no XSAVEOPT/XSAVEC/XGETBV1/XSAVES)
        out[0] = XCR0_SUPPORTED;
        out[1] = XSAVE_AREA_BYTES; // both components sit in the legacy region whatever XCR0 enables
        out[2] = XSAVE_AREA_BYTES;
      }
      return;
    case 0x80000000: out[0] = 0x80000008; return;
    case 0x80000001: out[3] = EXT1_EDX; return;
    case 0x80000008: out[0] = 0x3028; return; // 40 physical, 48 linear address bits
    default: return;
  }
}

/**
 * AMD's legacy performance counters (PerfEvtSel0-3 at C001_0000H, PerfCtr0-3 at C001_0004H)
 * exist on every AMD64 part, so guests (kvm-unit-tests' pmu_init) touch them unasked. The
 * hypervisor models no PMU: on svm they read 0 and writes are dropped, as KVM does with its
 * PMU disabled. On vmx the Intel PMU is absent from CPUID leaf 0AH, so its MSRs stay #GP.
 */
export function isNullPmuMsr(backend: BackendName, index: number): boolean {
  return backend === 'svm' && index >>> 0 >= 0xc0010000 && index >>> 0 <= 0xc0010007;
}
