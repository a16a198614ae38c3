// Shared by the benchmarks: medians, timing, result files under docs/benchmarks/.
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const RESULTS_DIR = join(ROOT, 'docs', 'benchmarks');

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Spread of a sample, as (max - min) / median: flags noisy rows on this shared machine. */
export function spread(values) {
  const m = median(values);
  return m === 0 ? 0 : (Math.max(...values) - Math.min(...values)) / m;
}

export async function timed(fn) {
  const start = process.hrtime.bigint();
  const value = await fn();
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, value };
}

/** Where a run's results go: docs/benchmarks/ for full runs; --quick ones stay out of the docs. */
export function resultsDir({ quick }) {
  return quick ? join(tmpdir(), 'gcfs-bench-quick') : RESULTS_DIR;
}

export async function writeResult(name, result, dir = RESULTS_DIR) {
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  return file;
}

export const MiB = 1024 * 1024;
