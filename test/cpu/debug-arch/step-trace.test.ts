// Single-step traces compared with the host CPU: the same position-independent code is
// single-stepped natively (ptrace) and in the simulator (TF=1, the #DB handler logs each RIP);
// the sequences of (RIP offset, RCX) after each instruction must be identical (SDM 17.3.1.4).
import { expect } from 'chai';
import { DebugMachine, DATA, DB_CLEAR_DR6, describeEvents } from './harness';
import { nativeSteps } from './native-oracle';

function simSteps(body: string): Array<[number, number]> {
  const m = new DebugMachine().load(`
start:
  mov $${DATA}, %edi
  pushf
  orl $0x100, (%rsp)
  popf
probe:
${body}
probe_end:
  pushf
  andl $~0x100, (%rsp)
  popf
  hlt
`);
  m.dbActions(DB_CLEAR_DR6, 400);
  const r = m.run({ budget: 100000 });
  expect(r.stop.kind, describeEvents(r.events)).to.equal('hlt');
  const p = m.sym('probe');
  const end = m.sym('probe_end') - p;
  return r.events.map((e) => [e.rip - p, e.rcx] as [number, number]).filter(([o]) => o >= 0 && o <= end);
}

const BRANCHY = `
  mov $5, %ecx
1:
  lea (%rdi,%rcx,4), %rax
  mov %ecx, (%rax)
  call 2f
  dec %ecx
  jnz 1b
  jmp 3f
2:
  add $1, %edx
  ret
3:
  xor %eax, %eax
  cpuid
  xor %eax, %eax
  cmp $0, %eax
  je 4f
  nop
4:
  xchg %eax, (%rdi)
  lock incl 4(%rdi)
  lea 64(%rdi), %rsi
  movsq
  stosb
  setnz %al
  bswap %eax
  push $3
  pop %rax
  cmovz %eax, %ecx
  nop
`;

const MORE = `
  xor %ecx, %ecx
  push %rbp
  mov %rsp, %rbp
  sub $16, %rsp
  lea 5f(%rip), %rax
  call *%rax
  lea 6f(%rip), %rax
  jmp *%rax
5:
  ret
6:
  push $0
  call 7f
  jmp 8f
7:
  ret $8
8:
  mov $7, %eax
  cqo
  mov $3, %ecx
  idiv %rcx
  bsf %rax, %rdx
  leave
  movl $0x41414141, (%rdi)
  movl $0x41414241, 8(%rdi)
  lea 8(%rdi), %rsi
  mov $4, %ecx
  repe cmpsb
  mov $0x42, %al
  mov $4, %ecx
  repne scasb
  nop
`;

const REPS = `
  mov $3, %ecx
  rep stosb
  mov $2, %ecx
  lea 64(%rdi), %rsi
  rep movsb
  xor %ecx, %ecx
  rep stosb
  nop
`;

describe('debug architecture: single-step traces vs the host CPU (SDM 17.3.1.4)', function () {
  this.timeout(20000);

  it('17.3.1.4: branches, CALL/RET, CPUID (emulated by the harness VMM), LOCK, string and stack instructions: one trap after each, same RIPs as the host CPU', () => {
    const native = nativeSteps(BRANCHY);
    expect(native.length).to.be.greaterThan(30);
    expect(simSteps(BRANCHY).map(([o]) => o)).to.deep.equal(native.map(([o]) => o));
  });

  it('17.3.1.4: indirect CALL/JMP, RET imm16, LEAVE, IDIV, REPE CMPSB and REPNE SCASB ending early: same RIPs and RCX as the host CPU', () => {
    const native = nativeSteps(MORE);
    expect(native.length).to.be.greaterThan(25);
    expect(simSteps(MORE)).to.deep.equal(native);
  });

  it('17.3.1.4: REP STOSB / REP MOVSB (one trap per iteration) and a REP with RCX=0: same RIPs and RCX as the host CPU', () => {
    const native = nativeSteps(REPS);
    expect(simSteps(REPS)).to.deep.equal(native);
  });
});
