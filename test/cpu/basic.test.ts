import { expect } from 'chai';
import { assemble, assembleProgram, makeCpu } from '../helpers/asm';
import { u64ToBigInt } from '../../vmm/u64';
import { Cpu } from '../../vmm/cpu/cpu';
import { GprIndex } from '../../vmm/cpu/guest-cpu';

export function reg(cpu: Cpu, i: GprIndex): bigint {
  return u64ToBigInt(cpu.getGpr(i));
}

describe('cpu: basics and the asm helper', () => {
  it('assembles at an origin and runs to HLT (an instruction-intercept exit at the HLT)', () => {
    const cpu = makeCpu(assemble('mov $5, %eax\nadd $3, %eax\nhlt\n', 0x1000));
    const e = cpu.run(1000);
    expect(e).to.deep.equal({ kind: 'hlt', length: 1 });
    expect(reg(cpu, 0)).to.equal(8n);
    expect(Number(u64ToBigInt(cpu.getReg('rip')))).to.equal(0x1008);
    expect(cpu.instret).to.equal(2);
  });

  it('reports labels', () => {
    const p = assembleProgram('nop\nfoo: nop\nbar: .quad 0\n', 0x2000);
    expect(p.labels.foo).to.equal(0x2001);
    expect(p.labels.bar).to.equal(0x2002);
  });

  it('stops on the budget at an instruction boundary', () => {
    const cpu = makeCpu(assemble('1: inc %rax\njmp 1b\n'));
    expect(cpu.run(101).kind).to.equal('budget');
    expect(reg(cpu, 0)).to.equal(51n);
  });

  it('an access outside RAM is an npf exit and the instruction does not execute', () => {
    const cpu = makeCpu(assemble('mov $0x200000, %rbx\nmov $7, %eax\nmov %eax, (%rbx)\n'), { memSize: 1 << 20 });
    const e = cpu.run(100);
    expect(e).to.deep.equal({ kind: 'npf', address: 0x200000, write: true, fetch: false });
    expect(Number(u64ToBigInt(cpu.getReg('rip')))).to.equal(0x1000 + 7 + 5);
  });
});
