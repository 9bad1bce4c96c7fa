/** The Chrome trace-event timeline: phases per vCPU, instant events, cut-short files, merging. */
import { expect } from 'chai';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ChromeTraceConverter, mergeTraceFiles, readTraceFile, TraceFileSink, traceVmToFile } from '../../verify/trace-writer';

describe('verify trace writer', function () {
  it('alternates guest and host slices per vCPU and marks exits, #DB, DR writes and leaks', function () {
    const c = new ChromeTraceConverter(7);
    const leak = { transition: 3, vcpu: 0, register: 'dr0', expected: '0x0', actual: '0x1000', side: 'guest' as const, when: 'exit' as const };
    const events = [
      ...c.convert({ type: 'phase', ts: 10, vcpu: 0, phase: 'guest' }),
      ...c.convert({ type: 'exit', ts: 20, vcpu: 0, reason: 'cpuid', backendReason: 'vmx:10' }),
      ...c.convert({ type: 'phase', ts: 20, vcpu: 0, phase: 'host' }),
      ...c.convert({ type: 'phase', ts: 20, vcpu: 0, phase: 'host' }),
      ...c.convert({ type: 'db', ts: 21, vcpu: 0, dr6: 0xffff4ff0, owner: 'guest' }),
      ...c.convert({ type: 'dr-write', ts: 22, vcpu: 0, register: 'dr7', value: '0x401', by: 'client' }),
      ...c.convert({ type: 'leak', ts: 23, vcpu: 0, leak }),
      ...c.convert({ type: 'phase', ts: 24, vcpu: 1, phase: 'guest' }),
      ...c.finish(),
    ];
    expect(events.map((e) => `${e.ts}:${e.tid}:${e.ph}:${e.name}`)).to.deep.equal([
      '0:0:M:thread_name', '10:0:B:guest', '20:0:i:VM exit: cpuid', '20:0:E:guest', '20:0:B:host',
      '21:0:i:#DB DR6=0x00000000ffff4ff0', '22:0:i:dr7 = 0x401', '23:0:i:LEAK dr0',
      '0:1:M:thread_name', '24:1:B:guest', '24:0:E:host', '24:1:E:guest',
    ]);
    // each vCPU's track is named, once
    expect(events.filter((e) => e.ph === 'M').map((e) => e.args)).to.deep.equal([{ name: 'vCPU 0' }, { name: 'vCPU 1' }]);
    expect(events[2].args).to.deep.equal({ reason: 'cpuid', backendReason: 'vmx:10' });
    expect(events[5].args).to.deep.equal({ dr6: '0x00000000ffff4ff0', owner: 'guest' });
    expect(events.every((e) => e.pid === 7)).to.equal(true);
  });

  it('a sink file is valid JSON when closed and still readable when cut short', function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trace-'));
    const done = new TraceFileSink(path.join(dir, 'a.json'), 'vmx full');
    done.write({ type: 'phase', ts: 1, vcpu: 0, phase: 'guest' });
    done.write({ type: 'exit', ts: 5, vcpu: 0, reason: 'hlt', backendReason: 'svm:0x78' });
    done.write({ type: 'phase', ts: 5, vcpu: 0, phase: 'host' });
    done.close();
    const parsed = JSON.parse(fs.readFileSync(done.file, 'utf8'));
    expect(parsed.map((e: { name: string }) => e.name)).to.deep.equal(['process_name', 'thread_name', 'guest', 'VM exit: hlt', 'guest', 'host', 'host']);
    const cut = new TraceFileSink(path.join(dir, 'b.json'));
    cut.write({ type: 'phase', ts: 1, vcpu: 0, phase: 'guest' }); // never closed: no closing bracket
    expect(readTraceFile(cut.file).map((e) => e.name)).to.deep.equal(['process_name', 'thread_name', 'guest']);
    const merged = path.join(dir, 'all.json');
    const count = mergeTraceFiles([{ file: done.file, label: 'one', pid: 1 }, { file: cut.file, label: 'two', pid: 2 }], merged);
    const all = JSON.parse(fs.readFileSync(merged, 'utf8'));
    expect(all.traceEvents).to.have.length(count);
    expect(all.traceEvents.filter((e: { ph: string; name: string }) => e.ph === 'M' && e.name === 'process_name')
      .map((e: { args: { name: string } }) => e.args.name)).to.deep.equal(['one', 'two']);
    expect(all.traceEvents.filter((e: { name: string }) => e.name === 'thread_name').map((e: { pid: number }) => e.pid))
      .to.deep.equal([1, 2]);
    expect(new Set(all.traceEvents.map((e: { pid: number }) => e.pid))).to.deep.equal(new Set([1, 2]));
  });
});

describe('traceVmToFile (serve/run --trace-vm)', function () {
  it('installs a sink on the VM and closes the file when done', function () {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'trace-')), 'vm.json');
    let sink: ((ev: import('../../verify/trace-writer').VmTraceEvent) => void) | null = null;
    const vm = { setTraceSink(s: typeof sink) { sink = s; } };
    const done = traceVmToFile(vm, file, 'counter vmx full');
    expect(sink).to.be.a('function');
    (sink as unknown as (ev: object) => void)({ type: 'phase', ts: 0, vcpu: 0, phase: 'guest' });
    done();
    expect(sink).to.equal(null);
    const events = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(events[0].args.name).to.equal('counter vmx full');
    expect(events.map((e: { name: string; ph: string }) => `${e.ph}:${e.name}`)).to.deep.equal(['M:process_name', 'M:thread_name', 'B:guest', 'E:guest']);
  });
});
