/**
 * The stub of the benchmark in a process of its own, so that the bench can pin it to a CPU
 * (`stepi-same-cpu` in stub-bench.ts) as it pins gdbserver. Usage: node stub-serve.js GUEST.elf
 * -> prints "PORT n" once it listens; ends when its stdin closes.
 */
import { startGdbServer } from '../stub/server';
import { makeRealVmFromElf } from '../test/stub/real-vm';

async function main(elf: string): Promise<void> {
  const real = makeRealVmFromElf(elf);
  if (!real) throw new Error('this build has no VM or loader for the benchmark guest');
  const server = await startGdbServer(real.vm, { transport: { kind: 'tcp', host: '127.0.0.1', port: 0 } });
  process.stdout.write(`PORT ${server.port}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => { void server.close().then(() => process.exit(0)); });
}

main(process.argv[2]).catch((e) => {
  process.stderr.write(`stub-serve: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
