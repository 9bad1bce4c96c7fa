/**
 * Serves a FakeVm for tests that need a separate process (stdio transport: gdb starts it
 * with `target remote | node serve-fake.js stdio`). Usage: serve-fake.js stdio|tcp:PORT [vcpus]
 */
import { parseGdbEndpoint, startGdbServer } from '../../stub/server';
import { FakeVm } from './fake-vm';

async function main(): Promise<void> {
  const transport = parseGdbEndpoint(process.argv[2] ?? 'stdio');
  if (!transport) throw new Error('bad endpoint');
  const vm = new FakeVm(Number(process.argv[3] ?? '1'));
  const server = await startGdbServer(vm, { transport, trace: process.env.STUB_TRACE ? 'stderr' : undefined });
  if (transport.kind !== 'stdio') process.stderr.write(`listening on ${server.address}\n`);
  const status = await server.closed;
  process.exit(status ?? 0);
}

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`serve-fake: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
