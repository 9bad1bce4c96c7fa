import { expect } from 'chai';
import {
  DR7_RW_ACCESS, DR7_RW_EXEC, DR7_RW_IO, DR7_RW_WRITE, dr7EncodeSlot, dr7GlobalEnable, dr7LocalEnable, dr7SlotAddressMask,
  dr7SlotControl, dr7SlotEnabled, dr7SlotLen, dr7SlotRw, normalizeDr6Write, normalizeDr7,
} from '../../vmm/x86/debug-regs';

describe('vmm/x86: the DR7 codec (SDM 17.2.4)', () => {
  it('encodes R/W and LEN as the SDM numbers them: LEN 00=1, 01=2, 11=4, 10=8; exec always LEN 00', () => {
    // Slot 1, write, 4 bytes: R/W1=01 (bits 21:20), LEN1=11 (bits 23:22) -> 0xd00000.
    expect(dr7EncodeSlot(1, 'write', 4)).to.equal(0x00d00000);
    expect(dr7EncodeSlot(0, 'access', 8)).to.equal(0x000b0000);
    expect(dr7EncodeSlot(2, 'access', 2)).to.equal(0x07000000);
    expect(dr7EncodeSlot(3, 'io', 1)).to.equal(0x20000000);
    expect(dr7EncodeSlot(3, 'exec', 8)).to.equal(0);
    expect(dr7EncodeSlot(3, 'write', 8)).to.equal(0x90000000);
    expect(dr7LocalEnable(2) | dr7GlobalEnable(3)).to.equal(0x10 | 0x80);
  });

  it('decodes what it encodes, for every slot, kind and length', () => {
    const rw = { exec: DR7_RW_EXEC, write: DR7_RW_WRITE, io: DR7_RW_IO, access: DR7_RW_ACCESS } as const;
    for (let n = 0; n < 4; n++) {
      for (const kind of ['exec', 'write', 'io', 'access'] as const) {
        for (const len of [1, 2, 4, 8] as const) {
          const dr7 = normalizeDr7(dr7LocalEnable(n) | dr7EncodeSlot(n, kind, len));
          expect(dr7SlotEnabled(dr7, n)).to.equal(true);
          expect(dr7SlotEnabled(dr7, (n + 1) % 4)).to.equal(false);
          expect(dr7SlotRw(dr7, n)).to.equal(rw[kind]);
          const bytes = kind === 'exec' ? 1 : len;
          expect(dr7SlotLen(dr7, n)).to.equal(bytes);
          expect(dr7SlotAddressMask(dr7, n)).to.equal(bytes - 1);
          expect(dr7SlotControl(dr7, n) << (16 + 4 * n) >>> 0).to.equal(dr7EncodeSlot(n, kind, len));
        }
      }
    }
  });

  it('normalizes DR7 (bit 10 set; 12, 14, 15 clear) and DR6 as MOV writes it (reserved bits 1, bit 12 0)', () => {
    expect(normalizeDr7(0)).to.equal(0x400);
    expect(normalizeDr7(0xffffffff)).to.equal(0xffff2fff);
    expect(normalizeDr6Write(0)).to.equal(0xffff0ff0);
    expect(normalizeDr6Write(0xffffffff)).to.equal(0xffffefff);
  });
});
