/**
 * Serves a FakeVm (or a built-in guest on the real VM) for tests that need a separate
 * process (stdio transport: gdb starts it with `target remote | node serve-fake.js stdio`).
 * Usage: serve-fake.js stdio|tcp:PORT [vcpus] [guest] [vmx|svm]
 */
import { VmApi } from '../../vmm/api/vm-api';
import { parseGdbEndpoint, startGdbServer } from '../../stub/server';
import { FakeVm } from './fake-vm';
import { makeRealVm } from './real-vm';

async function main(): Promise<void> {
  const transport = parseGdbEndpoint(process.argv[2] ?? 'stdio');
  if (!transport) throw new Error('bad endpoint');
  const vcpus = Number(process.argv[3] ?? '1');
  const guest = process.argv[4];
  let vm: VmApi = new FakeVm(vcpus);
  if (guest) {
    const real = makeRealVm(guest, { vcpus, backend: process.argv[5] === 'svm' ? 'svm' : 'vmx' });
    if (!real) throw new Error('the real VM is not in this build');
    vm = real.vm;
  }
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
