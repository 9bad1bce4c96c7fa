// gdb sees VIRTUAL memory: m/M and Z0 translate through the selected vCPU's page tables (as
// QEMU's gdbstub does); an unmapped address is an error reply, not a crash.
import { expect } from 'chai';
import { startGdbServer, GdbServer } from '../../stub/server';
import { createVm } from '../../vmm/api/create-vm';
import { DEFAULT_VM_OPTIONS } from '../../vmm/api/vm-options';
import { parseElf } from '../../vmm/loader/elf';
import { pageTablesBase } from '../../vmm/loader/page-tables';
import { VmApi } from '../../vmm/api/vm-api';
import { RspClient } from './rsp-client';
import { guestPath } from './real-vm';
import * as fs from 'fs';

const HIGH = 0xffffffff80000000n; // a higher-half alias of physical 0 (PML4[511], PDPT[510])

/** The counter guest with a higher-half alias added to its loader page tables. */
function vmWithAlias(): VmApi {
  const opts = { ...DEFAULT_VM_OPTIONS, memMiB: 16 };
  const mem = opts.memMiB << 20;
  const vm = createVm(parseElf(new Uint8Array(fs.readFileSync(guestPath('counter'))), mem, 1), opts);
  const pml4 = pageTablesBase(mem, 1);
  const pdpt2 = 0x200000; // a free page for the second PDPT
  const q = (a: number, lo: number, hi = 0): void => {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(lo >>> 0, 0);
    b.writeUInt32LE(hi >>> 0, 4);
    expect(vm.writeMemory(a, b)).to.equal(true);
  };
  q(pml4 + 511 * 8, pdpt2 | 0x27);
  q(pdpt2 + 510 * 8, 0xe7); // 1 GiB page at physical 0
  return vm;
}

describe('stub: memory at virtual addresses (real VM, packet level)', () => {
  let vm: VmApi;
  let server: GdbServer;
  let c: RspClient;
  beforeEach(async () => {
    vm = vmWithAlias();
    server = await startGdbServer(vm, { transport: { kind: 'tcp', host: '127.0.0.1', port: 0 } });
    c = await RspClient.connect({ port: server.port!, host: '127.0.0.1' });
    await c.handshake();
  });
  afterEach(async () => {
    c.close();
    await server.close();
  });

  it('m and M at a higher-half address reach the physical page behind it; unmapped addresses are E replies', async () => {
    const phys = vm.readMemory(0x100000, 4)!;
    expect(await c.request(`m${(HIGH + 0x100000n).toString(16)},4`)).to.equal(Buffer.from(phys).toString('hex'));
    expect(await c.request(`M${(HIGH + 0x300000n).toString(16)},2:abcd`)).to.equal('OK');
    expect(Array.from(vm.readMemory(0x300000, 2)!)).to.deep.equal([0xab, 0xcd]);
    expect(await c.request('mffff800000000000,4')).to.match(/^E/);         // not mapped
    expect(await c.request('m8000000000000000,4')).to.match(/^E/);         // not canonical
    expect(await c.request(`M${(HIGH - 1n).toString(16)},2:0102`)).to.match(/^E/); // first byte unmapped: nothing written
    expect(await c.request('m0,4')).to.match(/^[0-9a-f]{8}$/);            // still alive
  });

  it('Z0 at a virtual address plants the int3 in the physical page and hides it from m; z0 restores it', async () => {
    const a = HIGH + 0x100000n;
    const orig = vm.readMemory(0x100000, 1)![0];
    expect(await c.request(`Z0,${a.toString(16)},1`)).to.equal('OK');
    expect(vm.readMemory(0x100000, 1)![0]).to.equal(0xcc);
    expect(await c.request(`m${a.toString(16)},1`)).to.equal(orig.toString(16).padStart(2, '0'));
    expect(await c.request(`z0,${a.toString(16)},1`)).to.equal('OK');
    expect(vm.readMemory(0x100000, 1)![0]).to.equal(orig);
    expect(await c.request('Z0,ffff800000000000,1')).to.match(/^E/);
  });
});
