/**
 * The VM's time base. The TSC of a vCPU is its count of retired instructions plus the
 * offset WRMSR IA32_TSC set (vmm/cpu/msr.ts), so the same guest sees the same times on
 * every run. The devices that keep time (the local APIC timer, the ACPI PM timer) derive
 * theirs from it with the nominal frequency below, for guests that convert.
 */

/** The nominal TSC frequency: one retired instruction is one nanosecond. */
export const TSC_HZ = 1_000_000_000;

/** The ACPI PM timer frequency (ACPI spec 4.8.3.3: 3.579545 MHz). */
export const PM_TIMER_HZ = 3_579_545;

/** TSC ticks -> ticks of a clock of `hz` (floor, exact for TSC values below 2^53 / hz). */
export function ticksAt(tsc: number, hz: number): number {
  // Split to keep the product exact: tsc = q * TSC_HZ + r.
  const q = Math.floor(tsc / TSC_HZ);
  const r = tsc - q * TSC_HZ;
  return q * hz + Math.floor((r * hz) / TSC_HZ);
}
