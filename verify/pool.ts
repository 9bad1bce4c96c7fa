/** Runs async jobs with at most `limit` at a time; results keep the input order. */
export async function runPool<T, R>(items: readonly T[], limit: number,
  worker: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Math.max(1, Math.min(Math.floor(limit) || 1, items.length));
  async function lane(): Promise<void> {
    while (next < items.length) {
      const index = next++;
      results[index] = await worker(items[index], index);
    }
  }
  await Promise.all(Array.from({ length: lanes }, lane));
  return results;
}
