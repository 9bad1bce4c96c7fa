/**
 * The ACPI tables a PC platform hands its kernel (ACPI 1.0 layout, which every OS accepts):
 * the RSDP in the BIOS area (where OSes scan for it: kvm-unit-tests scans 0xE0000-0xFFFFF),
 * an RSDT listing a FADT (PM timer port, for kvm-unit-tests' vmexit inl_pmtimer), an empty
 * DSDT, and a MADT with one local APIC per vCPU and the PC/AT-compatible 8259 flag (there is
 * no I/O APIC, so none is listed).
 */
import { LoadSegment } from './elf-types';
import { APIC_DEFAULT_BASE } from '../devices/local-apic';
import { PM_TIMER_PORT } from '../devices/pm-timer';

const HEADER = 36;
const OEM_ID = 'VMMGDB';

function header(b: Uint8Array, sig: string, revision: number): void {
  const enc = new TextEncoder();
  b.set(enc.encode(sig), 0);
  new DataView(b.buffer, b.byteOffset).setUint32(4, b.length, true);
  b[8] = revision;
  b.set(enc.encode(OEM_ID), 10);
  b.set(enc.encode('VMMGDBST'), 16);   // OEM table ID
  new DataView(b.buffer, b.byteOffset).setUint32(24, 1, true); // OEM revision
  b.set(enc.encode('VGDB'), 28);        // creator ID
  new DataView(b.buffer, b.byteOffset).setUint32(32, 1, true);
}

/** Sets byte `at` so that the bytes of `b` sum to 0 (mod 256). */
export function fixChecksum(b: Uint8Array, at: number, length = b.length): void {
  b[at] = 0;
  let sum = 0;
  for (let i = 0; i < length; i++) sum = (sum + b[i]) & 0xff;
  b[at] = (256 - sum) & 0xff;
}

/** All tables as one blob at `base` (16-byte aligned, the RSDP first). */
export function buildAcpiTables(base: number, vcpus: number): LoadSegment {
  const rsdpSize = 20;
  const rsdtAt = base + 32;
  const rsdtSize = HEADER + 8;          // two entries: FADT, MADT
  const fadtAt = rsdtAt + 64;
  const fadtSize = 116;
  const dsdtAt = fadtAt + 128;
  const madtAt = dsdtAt + 64;
  const madtSize = HEADER + 8 + 8 * vcpus;
  const total = madtAt + madtSize - base;
  const blob = new Uint8Array(total);
  const v = new DataView(blob.buffer);
  const at = (addr: number, size: number) => blob.subarray(addr - base, addr - base + size);

  const rsdp = at(base, rsdpSize);
  rsdp.set(new TextEncoder().encode('RSD PTR '), 0);
  rsdp.set(new TextEncoder().encode(OEM_ID), 9);
  rsdp[15] = 0;                                              // ACPI 1.0: no XSDT
  v.setUint32(base - base + 16, rsdtAt, true);
  fixChecksum(rsdp, 8);

  const rsdt = at(rsdtAt, rsdtSize);
  header(rsdt, 'RSDT', 1);
  v.setUint32(rsdtAt - base + HEADER, fadtAt, true);
  v.setUint32(rsdtAt - base + HEADER + 4, madtAt, true);
  fixChecksum(rsdt, 9);

  const fadt = at(fadtAt, fadtSize);
  header(fadt, 'FACP', 1);
  v.setUint32(fadtAt - base + 40, dsdtAt, true);            // DSDT
  v.setUint32(fadtAt - base + 76, PM_TIMER_PORT, true);     // PM_TMR_BLK
  fadt[91] = 4;                                              // PM_TMR_LEN
  fixChecksum(fadt, 9);

  const dsdt = at(dsdtAt, HEADER);
  header(dsdt, 'DSDT', 1);
  fixChecksum(dsdt, 9);

  const madt = at(madtAt, madtSize);
  header(madt, 'APIC', 1);
  v.setUint32(madtAt - base + HEADER, APIC_DEFAULT_BASE, true);
  v.setUint32(madtAt - base + HEADER + 4, 1, true);          // PCAT_COMPAT: 8259s present
  for (let i = 0; i < vcpus; i++) {
    const e = madtAt - base + HEADER + 8 + 8 * i;
    blob[e] = 0; blob[e + 1] = 8; blob[e + 2] = i; blob[e + 3] = i; // processor local APIC: UID i, APIC ID i
    v.setUint32(e + 4, 1, true);                                     // enabled
  }
  fixChecksum(madt, 9);
  return { address: base, data: blob, memSize: blob.length, flags: 4 };
}
