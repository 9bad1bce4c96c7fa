/**
 * The higher-half kernel guest (guests/hhkernel) on the whole VM, both backends: its own
 * page tables, CPL 3 through IRETQ, SYSCALL/SYSRET with SWAPGS, a #PF it fixes, #DB on an
 * IST stack, and its DR0-3 on virtual addresses hit at CPL 3 and CPL 0 across VM exits.
 */
import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as path from 'path';
import * as fs from 'fs';
import { parseElf } from '../../vmm/loader/elf';

const ROOT = path.join(__dirname, '..', '..', '..');
const ELF = path.join(ROOT, 'guests', 'hhkernel.elf');

describe('guest: hhkernel (higher-half kernel, CPL 3, SYSCALL, #PF, IST, DR0-3)', function () {
  this.timeout(60000);

  it('is linked in the higher half and loaded at 1 MiB (p_paddr), entered at its identity-mapped boot stub', () => {
    const img = parseElf(new Uint8Array(fs.readFileSync(ELF)), 64 * 1024 * 1024);
    expect(img.entry).to.equal(0x100000);
    expect(img.segments.every((s) => s.address >= 0x100000 && s.address < 0x200000)).to.equal(true);
  });

  for (const backend of ['vmx', 'svm']) {
    it(`passes every check and exits 0 (${backend})`, () => {
      const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'vmm-gdbstub.js'), 'run', ELF, '--backend', backend], { encoding: 'utf8', timeout: 50000 });
      expect(r.stdout, r.stderr).to.include('hhkernel: all checks passed');
      expect(r.stdout).to.not.include('FAIL');
      for (const name of ['lretq-reloads-cs', 'dr0-write-at-cpl3', 'dr1-write-at-cpl0', 'dr2-read-at-cpl0', 'dr3-exec-at-cpl3', 'db-on-ist1-stack', 'pf-error-user-write-not-present', 'hh-counter']) {
        expect(r.stdout).to.match(new RegExp(`^PASS ${name}$`, 'm'));
      }
      expect(r.status).to.equal(0);
    });
  }

  it('fails (exit 1, FAIL lines) when the hypervisor loses the guest DR0-3 at VM exits (--dr-switch none)', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'vmm-gdbstub.js'), 'run', ELF, '--dr-switch', 'none'], { encoding: 'utf8', timeout: 50000 });
    expect(r.stdout).to.match(/^FAIL /m);
    expect(r.status).to.equal(1);
  });
});
