import { expect } from 'chai';
import { Block, CodeCache, pageKey } from '../../vmm/cpu/code-cache';

describe('code cache: find', () => {
  it('finds the block cached at (page, rip) and nothing once it is removed, replaced, dropped or evicted', () => {
    const cache = new CodeCache(1000, () => { /* nothing runs */ });
    const k = pageKey(5, 0);
    const a = new Block(0x5010, cache.page(k));
    cache.add(a, null);
    expect(cache.find(k, 0x5010)).to.equal(a);
    expect(cache.find(k, 0x5010)).to.equal(a); // again (the last found)
    expect(cache.find(pageKey(5, 1), 0x5010)).to.equal(undefined); // another mode
    expect(cache.find(k, 0x5011)).to.equal(undefined);
    cache.removeBlock(a);
    expect(cache.find(k, 0x5010)).to.equal(undefined);
    const b = new Block(0x5010, cache.page(k));
    cache.add(b, null);
    expect(cache.find(k, 0x5010)).to.equal(b);
    const c = new Block(0x5010, cache.page(k)); // decoded again at the same address: replaces b
    cache.add(c, null);
    expect(cache.find(k, 0x5010)).to.equal(c);
    cache.dropPhysPage(5);
    expect(cache.find(k, 0x5010)).to.equal(undefined);
    const d = new Block(0x5010, cache.page(k));
    cache.add(d, null);
    expect(cache.find(k, 0x5010)).to.equal(d);
    cache.dropAll();
    expect(cache.find(k, 0x5010)).to.equal(undefined);
  });
});
