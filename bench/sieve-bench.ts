/**
 * kvm-unit-tests `sieve.flat` (issue 10): our `run` and `qemu-system-x86_64 -accel tcg` on
 * the same unmodified binary, one after the other, with the wall-time ratio ours / QEMU's
 * (the target is <= 3) and, since the machine is shared, the CPU-time ratio beside it.
 * The binaries come from ../shared/kvm-unit-tests (or $KVM_UNIT_TESTS_DIR); without them the
 * section says so and measures nothing; without QEMU its figures are n/a.
 * Both sides get 128 MiB: sieve vmallocs 100 MB, which our 64 MiB default cannot hold
 * (QEMU's default and run_tests.sh give 128 MiB too).
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { findKvmUnitTests } from '../verify/kvm-unit-tests-dir';

const MEM_MIB = 128;
const BIN = path.join(__dirname, '..', '..', 'bin', 'vmm-gdbstub.js');
/** Our side took about 20 minutes on a busy 2-core machine before the block compiler. */
const TIMEOUT_S = Number(process.env.BENCH_SIEVE_TIMEOUT_S ?? 3600);

interface Timed {
  status: number | null;
  wallS: number;
  cpuS: number | undefined;
  output: string;
  timedOut: boolean;
}

/**
 * Runs a command under sh, whose `times` gives the user + system time of its children when
 * the command is done (the CPU the command itself used, whatever else runs on the machine).
 */
function timed(cmd: string, args: string[]): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const script = '"$0" "$@"; s=$?; echo; echo "@@times"; times; exit $s';
    const t0 = process.hrtime.bigint();
    // its own process group, so that a timeout stops the command and not only the shell
    const child = spawn('sh', ['-c', script, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    child.stdout.on('data', (d) => { out += d.toString('latin1'); });
    child.stderr.on('data', (d) => { out += d.toString('latin1'); });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* already gone */ }
    }, TIMEOUT_S * 1000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
      const at = out.lastIndexOf('@@times');
      const lines = at < 0 ? [] : out.slice(at).split('\n');
      // `times`: the shell's own user/system, then its children's: "0m35.05s 0m0.51s"
      const m = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s/.exec(lines[2] ?? '');
      const cpuS = m ? Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]) : undefined;
      resolve({ status, wallS, cpuS, output: at < 0 ? out : out.slice(0, at), timedOut });
    });
  });
}

function hasQemu(): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d && fs.existsSync(path.join(d, 'qemu-system-x86_64')));
}

const round = (x: number): number => Math.round(x * 10) / 10;

export async function benchSieve(): Promise<Record<string, number | string>> {
  const found = findKvmUnitTests('sieve.flat', path.join(__dirname, '..', '..'));
  if (found.dir === undefined) {
    console.log(`sieve: skipped: ${found.why} (set KVM_UNIT_TESTS_DIR to use another folder)`);
    return {};
  }
  const flat = path.join(found.dir, 'sieve.flat');
  const r: Record<string, number | string> = { sieve_mem_mib: MEM_MIB };
  let qemu: Timed | undefined;
  if (hasQemu()) {
    // the command line of the README beside the binaries, with the same RAM as ours
    qemu = await timed('qemu-system-x86_64', ['-nodefaults', '-vga', 'none', '-nographic', '-serial', 'stdio',
      '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x4', '-m', String(MEM_MIB), '-accel', 'tcg', '-kernel', flat]);
    // isa-debug-exit: QEMU exits with (status << 1) | 1, so 1 is the test's 0
    if (qemu.status !== 1 || qemu.timedOut) {
      console.log(`sieve: QEMU did not pass (exit ${qemu.status}${qemu.timedOut ? ', timed out' : ''}): ${qemu.output.slice(-300)}`);
      qemu = undefined;
    }
  } else {
    console.log('sieve: qemu-system-x86_64 is not installed: its figures are n/a (apt-get install qemu-system-x86)');
  }
  const ours = await timed(process.execPath, [BIN, 'run', flat, '--mem', String(MEM_MIB)]);
  if (ours.status !== 0 || ours.timedOut) {
    console.log(`sieve: our run did not pass (exit ${ours.status}${ours.timedOut ? `, stopped after ${TIMEOUT_S} s (BENCH_SIEVE_TIMEOUT_S)` : ''}): ${ours.output.slice(-300)}`);
  }
  const oursOk = ours.status === 0 && !ours.timedOut;
  r.sieve_ours_wall_s = oursOk ? round(ours.wallS) : `failed after ${round(ours.wallS)}`;
  r.sieve_ours_cpu_s = oursOk && ours.cpuS !== undefined ? round(ours.cpuS) : 'n/a';
  r.sieve_qemu_tcg_wall_s = qemu ? round(qemu.wallS) : 'n/a';
  r.sieve_qemu_tcg_cpu_s = qemu?.cpuS !== undefined ? round(qemu.cpuS) : 'n/a';
  r['sieve_wall_ratio_ours_over_qemu (target <= 3)'] = oursOk && qemu ? Math.round(ours.wallS / qemu.wallS * 100) / 100 : 'n/a';
  r.sieve_cpu_ratio_ours_over_qemu = oursOk && qemu && ours.cpuS && qemu.cpuS ? Math.round(ours.cpuS / qemu.cpuS * 100) / 100 : 'n/a';
  return r;
}
