/**
 * `monitor info mem`, `info tlb`, `info lapic` (QEMU's monitor names): the current vCPU's
 * page tables as virtual ranges -> physical with flags, every leaf page, and its local APIC.
 */
import { listMappings, PageMapping } from '../../vmm/api/page-mappings';
import { SessionContext } from './context';

export const INFO_HELP = [
  '  info mem          current vCPU: mapped virtual ranges -> physical, with flags (u/-: user, r, w/-, x/-)',
  '  info tlb          current vCPU: every leaf page: virtual -> physical, size, flags (G global, D dirty, A accessed)',
  '  info lapic        current vCPU: its local APIC registers',
];

/** Lines cut after this many (a full 4 GiB map in 4 KiB pages is a million). */
const MAX_LINES = 4096;

const hex64 = (v: bigint) => v.toString(16).padStart(16, '0');
const rights = (m: PageMapping) => `${m.user ? 'u' : '-'}r${m.writable ? 'w' : '-'}${m.executable ? 'x' : '-'}`;

function mappingsOf(ctx: SessionContext, vcpu: number) {
  const reg = (name: 'cr0' | 'cr3' | 'cr4' | 'efer') => {
    const v = ctx.vm.getRegister(vcpu, name);
    return (BigInt(v.hi >>> 0) << 32n) | BigInt(v.lo >>> 0);
  };
  return listMappings((a, n) => ctx.vm.readMemory(a, n), { cr0: reg('cr0'), cr3: reg('cr3'), cr4: reg('cr4'), efer: reg('efer') });
}

function header(vcpu: number, mode: string): string | undefined {
  if (mode === 'none') return `vCPU ${vcpu}: paging is off (CR0.PG = 0): virtual = physical`;
  if (mode === '5-level') return `vCPU ${vcpu}: 5-level paging (CR4.LA57) is not walked by this monitor`;
  return undefined;
}

export function runInfo(ctx: SessionContext, what: string | undefined): string[] | { error: string } {
  const vcpu = ctx.gVcpu;
  switch (what) {
    case 'lapic': {
      if (!ctx.vm.describeLocalApic) return { error: 'monitor info lapic: this VM has no local APIC to show' };
      return [`vCPU ${vcpu}:`, ...ctx.vm.describeLocalApic(vcpu).split('\n')];
    }
    case 'mem': {
      const { mode, mappings, truncated } = mappingsOf(ctx, vcpu);
      const h = header(vcpu, mode);
      if (h) return [h];
      const lines = [`vCPU ${vcpu} (${mode} paging): virtual range, size, physical start, flags`];
      // coalesce neighbours with the same rights and contiguous physical addresses
      let run: { start: bigint; end: bigint; phys: bigint; flags: string } | undefined;
      const flush = () => { if (run) lines.push(`${hex64(run.start)}-${hex64(run.end)} ${hex64(run.end - run.start)} ${hex64(run.phys)} ${run.flags}`); };
      for (const m of mappings) {
        const f = rights(m);
        if (run && run.end === m.virt && run.flags === f && run.phys + (run.end - run.start) === m.phys) { run.end += BigInt(m.size); continue; }
        flush();
        run = { start: m.virt, end: m.virt + BigInt(m.size), phys: m.phys, flags: f };
      }
      flush();
      if (mappings.length === 0) lines.push('  nothing mapped');
      if (truncated) lines.push('  ... (more mappings not listed)');
      return lines;
    }
    case 'tlb': {
      const { mode, mappings } = mappingsOf(ctx, vcpu);
      const h = header(vcpu, mode);
      if (h) return [h];
      const size = (n: number) => (n >= 1 << 30 ? `${n / (1 << 30)}G` : n >= 1 << 20 ? `${n / (1 << 20)}M` : `${n / 1024}K`);
      const lines = [`vCPU ${vcpu} (${mode} paging): virtual: physical size flags`];
      for (const m of mappings.slice(0, MAX_LINES)) {
        lines.push(`${hex64(m.virt)}: ${hex64(m.phys)} ${size(m.size).padStart(4)} ${rights(m)} ${m.global ? 'G' : '-'}${m.dirty ? 'D' : '-'}${m.accessed ? 'A' : '-'}`);
      }
      if (mappings.length > MAX_LINES) lines.push(`... ${mappings.length - MAX_LINES} more pages not listed (monitor info mem summarises them)`);
      if (mappings.length === 0) lines.push('  nothing mapped');
      return lines;
    }
    default:
      return { error: `monitor info: ${what === undefined ? 'say what' : `unknown "${what}"`}: mem, tlb or lapic` };
  }
}
