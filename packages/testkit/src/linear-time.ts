// Property tests for hostile inputs: does the work grow linearly with the input? Timed as
// a ratio, never against a clock: one large input against the same number of bytes in
// short inputs, so a linear parser scores about 1 and a quadratic one about the size
// ratio, on a fast machine or a loaded one alike.

import assert from 'node:assert/strict';

/** A small seeded PRNG (mulberry32): fuzz inputs that are the same at every run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `length` characters drawn from `pieces` (whole pieces, cut at the end). */
export function randomText(random: () => number, pieces: readonly string[], length: number): string {
  const parts: string[] = [];
  for (let size = 0; size < length; ) {
    const piece = pieces[Math.floor(random() * pieces.length)]!;
    parts.push(piece);
    size += piece.length;
  }
  return parts.join('').slice(0, length);
}

export interface LinearTimeCase<T> {
  name: string;
  /** One short input. */
  small: T;
  /** One input `ratio` times as large. */
  large: T;
  ratio: number;
}

async function timeOf(run: () => unknown): Promise<number> {
  const started = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - started);
}

/**
 * Assert that `work` on each case's large input takes at most `factor` times as long as
 * on `ratio` copies of its small input (the best of `rounds` tries each, after a warm-up).
 * A quadratic `work` scores about `ratio`: choose `ratio` well above `factor`.
 */
export async function assertLinearTime<T>(
  work: (input: T) => unknown,
  cases: ReadonlyArray<LinearTimeCase<T>>,
  { factor = 8, rounds = 3 }: { factor?: number; rounds?: number } = {},
): Promise<void> {
  const slow: string[] = [];
  for (const { name, small, large, ratio } of cases) {
    assert.ok(
      ratio > factor * 4,
      `${name}: a ratio of ${ratio} cannot tell quadratic from a factor ${factor}`,
    );
    await work(small);
    await work(large);
    let best = Number.POSITIVE_INFINITY;
    for (let round = 0; round < rounds; round++) {
      const manySmall = await timeOf(async () => {
        for (let i = 0; i < ratio; i++) await work(small);
      });
      const oneLarge = await timeOf(() => work(large));
      best = Math.min(best, oneLarge / Math.max(manySmall, 1));
    }
    if (best > factor) slow.push(`${name}: ${best.toFixed(1)}x the time of ${ratio} short inputs`);
  }
  assert.deepEqual(slow, [], 'work that grows faster than the input');
}
