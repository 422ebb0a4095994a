/** BenchRow is one measured line: a value, the baseline measured in the same run, and their ratio. */
export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  baseline?: { name: string; value: number };
  /** value / baseline.value, when there is a baseline. */
  ratio?: number;
  note?: string;
}

/** medianOf runs fn `runs` times after one warm-up and returns the median duration in milliseconds. */
export async function medianOf(runs: number, fn: () => unknown): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** row builds a BenchRow with its ratio to the baseline. */
export function row(name: string, value: number, unit: string, baseline?: { name: string; value: number }, note?: string): BenchRow {
  return { name, value, unit, ...(baseline ? { baseline, ratio: value / baseline.value } : {}), ...(note !== undefined ? { note } : {}) };
}
