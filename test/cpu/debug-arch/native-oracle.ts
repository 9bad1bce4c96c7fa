// The host CPU as an oracle for single-step facts the SDM states only indirectly: a small C
// tracer single-steps code natively with ptrace (single-stepping works on these VMs even
// though hardware watchpoints do not) and reports RIP offsets and RCX after each step.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const TRACER = String.raw`
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <unistd.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
__attribute__((used)) char buf[256];
extern void probe_entry(void), probe(void), probe_end(void);
__asm__(".globl probe_entry, probe, probe_end\nprobe_entry:\n lea buf(%rip), %rdi\nprobe:\n" PROBE_BODY "\nprobe_end:\n ret\n");
int main(void) {
  pid_t p = fork();
  if (p == 0) { if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0) _exit(3); raise(SIGSTOP); probe_entry(); _exit(0); }
  int st; struct user_regs_struct r;
  waitpid(p, &st, 0);
  if (WIFEXITED(st)) { fprintf(stderr, "ptrace(PTRACE_TRACEME) is not permitted here\n"); return 3; }
  unsigned long start = (unsigned long)probe, end = (unsigned long)probe_end;
  for (long i = 0; i < 5000000; i++) {
    ptrace(PTRACE_GETREGS, p, 0, &r);
    if (r.rip == start) break;
    ptrace(PTRACE_SINGLESTEP, p, 0, 0); waitpid(p, &st, 0);
    if (WIFEXITED(st)) return 2;
  }
  for (int i = 0; i < 1000; i++) {
    ptrace(PTRACE_SINGLESTEP, p, 0, 0); waitpid(p, &st, 0);
    if (WIFEXITED(st)) break;
    ptrace(PTRACE_GETREGS, p, 0, &r);
    printf("%lu %llu\n", (unsigned long)(r.rip - start), (unsigned long long)r.rcx);
    if (r.rip == end) break;
  }
  kill(p, SIGKILL); waitpid(p, &st, 0);
  return 0;
}
`;

/**
 * Single-steps `body` (AT&T, position-independent, RDI = a 256-byte buffer) natively:
 * [RIP - start of body, RCX] after each step, up to the end of the body.
 */
export function nativeSteps(body: string): Array<[number, number]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbgtests-native-'));
  try {
    const src = path.join(dir, 't.c');
    fs.writeFileSync(src, TRACER);
    const macro = body.split('\n').map((l) => l.trim()).filter((l) => l).join('\\n');
    execFileSync('gcc', ['-O1', `-DPROBE_BODY="${macro.replace(/"/g, '\\"')}"`, '-o', path.join(dir, 't'), src], { stdio: 'pipe' });
    const out = execFileSync(path.join(dir, 't'), { encoding: 'utf8', timeout: 10000, stdio: ['ignore', 'pipe', 'pipe'] });
    return out.trim().split('\n').map((l) => l.split(' ').map(Number) as [number, number]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
