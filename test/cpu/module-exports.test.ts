// The CPU's modules keep their exports objects in V8's fast mode. A re-export
// (`export { X } from ...`) compiles to an accessor; defining one over the slot tsc declared
// turns the whole exports object into a dictionary, and then every read of the module's
// constants in hot code (core_1.EXIT_RIP, flags_1.CF...) is a generic property lookup or a
// getter call: about a sixth of the workload's time when it happened.
import { expect } from 'chai';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

function modulesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const f of fs.readdirSync(dir)) {
    const p = path.join(dir, f);
    if (fs.statSync(p).isDirectory()) out.push(...modulesUnder(p));
    else if (p.endsWith('.js')) out.push(p);
  }
  return out;
}

describe('cpu: module exports stay in fast mode (no accessor re-exports in the hot path)', () => {
  it('every module under vmm/cpu and vmm/x86 has fast exports', () => {
    const root = path.join(__dirname, '..', '..', 'vmm');
    const files = [...modulesUnder(path.join(root, 'cpu')), ...modulesUnder(path.join(root, 'x86'))];
    expect(files.length).to.be.greaterThan(20);
    const script = `const slow = []; for (const f of ${JSON.stringify(files)}) { const e = require(f); if (!%HasFastProperties(e)) slow.push(f); } console.log(JSON.stringify(slow));`;
    const out = execFileSync(process.execPath, ['--allow-natives-syntax', '-e', script]).toString();
    expect(JSON.parse(out)).to.deep.equal([]);
  });
});
