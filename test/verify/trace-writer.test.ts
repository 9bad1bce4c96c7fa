/** The Chrome trace-event timeline: phases per vCPU, instant events, cut-short files, merging. */
import { expect } from 'chai';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ChromeTraceConverter, mergeTraceFiles, readTraceFile, TraceFileSink } from '../../verify/trace-writer';

describe('verify trace writer', function () {
  it('alternates guest and host slices per vCPU and marks exits, #DB, DR writes and leaks', function () {
    const c = new ChromeTraceConverter(7);
    const events = [
      ...c.convert({ kind: 'vm-entry', vcpu: 0 }, 10),
      ...c.convert({ kind: 'vm-exit', vcpu: 0, reason: 'CPUID' }, 20),
      ...c.convert({ kind: 'db', vcpu: 0, dr6: 0xffff4ff0 }, 21),
      ...c.convert({ kind: 'dr-write', vcpu: 0, register: 'dr7', value: 0x401 }, 22),
      ...c.convert({ kind: 'leak', vcpu: 0, register: 'dr0', expected: '0x0', actual: '0x1000' }, 23),
      ...c.convert({ kind: 'vm-entry', vcpu: 1 }, 24),
      ...c.finish(30),
    ];
    expect(events.map((e) => `${e.tid}:${e.ph}:${e.name}`)).to.deep.equal([
      '0:B:guest', '0:i:VM exit: CPUID', '0:E:guest', '0:B:host', '0:i:#DB DR6=0xffff4ff0', '0:i:dr7 = 0x401',
      '0:i:LEAK dr0', '1:B:guest', '0:E:host', '1:E:guest',
    ]);
    expect(events.every((e) => e.pid === 7)).to.equal(true);
  });

  it('a sink file is valid JSON when closed and still readable when cut short', function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trace-'));
    const done = new TraceFileSink(path.join(dir, 'a.json'), 'vmx full');
    done.write({ kind: 'vm-entry', vcpu: 0 });
    done.write({ kind: 'vm-exit', vcpu: 0, reason: 'HLT' });
    done.close();
    const parsed = JSON.parse(fs.readFileSync(done.file, 'utf8'));
    expect(parsed.map((e: { name: string }) => e.name)).to.deep.equal(['process_name', 'guest', 'VM exit: HLT', 'guest', 'host', 'host']);
    const cut = new TraceFileSink(path.join(dir, 'b.json'));
    cut.write({ kind: 'vm-entry', vcpu: 0 }); // never closed: no closing bracket
    expect(readTraceFile(cut.file).map((e) => e.name)).to.deep.equal(['process_name', 'guest']);
    const merged = path.join(dir, 'all.json');
    const count = mergeTraceFiles([{ file: done.file, label: 'one', pid: 1 }, { file: cut.file, label: 'two', pid: 2 }], merged);
    const all = JSON.parse(fs.readFileSync(merged, 'utf8'));
    expect(all.traceEvents).to.have.length(count);
    expect(all.traceEvents.filter((e: { ph: string }) => e.ph === 'M').map((e: { args: { name: string } }) => e.args.name))
      .to.deep.equal(['one', 'two']);
    expect(new Set(all.traceEvents.map((e: { pid: number }) => e.pid))).to.deep.equal(new Set([1, 2]));
  });
});
