/** listMappings over hand-built tables: 32-bit (4K and PSE 4M), PAE, 4-level rights and NX. */
import { expect } from 'chai';
import { listMappings } from '../../vmm/api/page-mappings';

/** A little physical memory with 32/64-bit little-endian stores. */
function mem(size = 0x20000) {
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  return {
    read: (a: number, n: number) => (a + n <= size ? b.slice(a, a + n) : undefined),
    w32: (a: number, v: number) => dv.setUint32(a, v >>> 0, true),
    w64: (a: number, v: bigint) => dv.setBigUint64(a, v, true),
  };
}

describe('page mappings (monitor info mem / tlb)', () => {
  it('paging off: no walk', () => {
    const m = mem();
    expect(listMappings(m.read, { cr0: 1n, cr3: 0n, cr4: 0n, efer: 0n }).mode).to.equal('none');
  });

  it('32-bit paging: a 4K page (user, read-only) and, with CR4.PSE, a 4M page (supervisor, writable)', () => {
    const m = mem();
    m.w32(0x1000 + 1 * 4, 0x2000 | 0x7); // PDE 1 -> table at 0x2000, U/W/P
    m.w32(0x2000 + 3 * 4, 0x5000 | 0x5); // PTE 3 -> 0x5000, U, read-only
    m.w32(0x1000 + 2 * 4, 0x00c00000 | 0x83); // PDE 2: 4M page at 12 MiB, W
    const r = listMappings(m.read, { cr0: 0x80000001n, cr3: 0x1000n, cr4: 0x10n, efer: 0n });
    expect(r.mode).to.equal('32-bit');
    expect(r.mappings.map((p) => [p.virt, p.phys, p.size, p.user, p.writable])).to.deep.equal([
      [0x403000n, 0x5000n, 4096, true, false],
      [0x800000n, 0xc00000n, 4 << 20, false, true],
    ]);
  });

  it('PAE: PDPTE -> PD 2M page and PT 4K page with NX (EFER.NXE)', () => {
    const m = mem();
    m.w64(0x1000 + 1 * 8, 0x2000n | 1n); // PDPTE 1 (1 GiB..2 GiB)
    m.w64(0x2000, 0x3000n | 7n); // PDE 0 -> PT
    m.w64(0x3000 + 8, (1n << 63n) | 0x9000n | 7n); // PTE 1: NX
    m.w64(0x2000 + 8, 0x400000n | 0x83n); // PDE 1: 2M page, supervisor
    const r = listMappings(m.read, { cr0: 0x80000001n, cr3: 0x1000n, cr4: 0x20n, efer: 0x800n });
    expect(r.mode).to.equal('pae');
    expect(r.mappings.map((p) => [p.virt, p.phys, p.size, p.user, p.executable])).to.deep.equal([
      [0x40001000n, 0x9000n, 4096, true, false],
      [0x40200000n, 0x400000n, 2 << 20, false, true],
    ]);
  });

  it('4-level: rights are the AND of every level, the address is sign-extended', () => {
    const m = mem();
    m.w64(0x1000 + 511 * 8, 0x2000n | 3n); // PML4E 511, supervisor
    m.w64(0x2000 + 510 * 8, 0x3000n | 7n);
    m.w64(0x3000, 0x4000n | 7n);
    m.w64(0x4000, 0x7000n | 7n); // user PTE, but PML4E is supervisor
    const r = listMappings(m.read, { cr0: 0x80000001n, cr3: 0x1000n, cr4: 0x20n, efer: 0x500n });
    expect(r.mode).to.equal('4-level');
    expect(r.mappings.map((p) => [p.virt, p.phys, p.user, p.writable])).to.deep.equal([[0xffffffff80000000n, 0x7000n, false, true]]);
  });
});
