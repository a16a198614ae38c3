#!/usr/bin/env node
// scripts/bench [--quick] [name ...]: runs the named benchmarks (all by default).
const BENCHMARKS = {
  'cold-starts': () => import('./cold-starts.mjs'),
  'keychain-proxy': () => import('./keychain-proxy.mjs'),
  'registry-throughput': () => import('./registry-throughput.mjs'),
  cfsd: () => import('./cfsd.mjs'),
  downloader: () => import('./downloader.mjs'),
  fuse: () => import('./fuse.mjs'),
};
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const names = args.filter((a) => !a.startsWith('--'));
for (const name of names) {
  if (!BENCHMARKS[name]) {
    console.error(`unknown benchmark ${name}; known: ${Object.keys(BENCHMARKS).join(', ')}`);
    process.exit(2);
  }
}
for (const name of names.length ? names : Object.keys(BENCHMARKS)) {
  const { main } = await BENCHMARKS[name]();
  await main({ quick });
}
