// The cold-start benchmark's report: rows as JSON (latest.json), plots made by plot.py beside
// it, and a markdown table in the README between markers, so a rerun replaces only its section.
import { execFile } from 'node:child_process';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { ErrorCode, GcfsError } from '@gcfs/core';
import { MiB, ROOT } from './lib.mjs';

const execFileP = promisify(execFile);
const BEGIN = '<!-- cold-start:begin -->';
const END = '<!-- cold-start:end -->';
// Debian's interpreter, not whichever python3 is first in PATH: python3-matplotlib is installed for it.
const PYTHON = '/usr/bin/python3';

const mib = (bytes) => (bytes == null ? '—' : `${(bytes / MiB).toFixed(bytes < 10 * MiB ? 1 : 0)} MiB`);
const secs = (s) => (s == null ? '—' : `${s.toFixed(s < 10 ? 2 : 1)} s`);
const isCold = (row) => Boolean(row.cold_backend);
const key = (r) => `${r.image}\0${r.network}`;
const distinct = (values) => [...new Set(values)];

/** The rows, each with `vs_full_pull`: its time over overlayfs's for the same image and network. */
export function withFullPullRatios(rows) {
  const full = new Map(rows.filter((r) => r.mode === 'overlayfs').map((r) => [key(r), r.time_to_ready_s]));
  return rows.map((r) => {
    const base = full.get(key(r));
    return { ...r, vs_full_pull: base ? r.time_to_ready_s / base : null };
  });
}

/** A ratio to the full pull, marked when above 1 (slower than the full pull). */
function ratio(r) {
  if (r?.vs_full_pull == null) return '—';
  return `${r.vs_full_pull.toFixed(2)}x${r.vs_full_pull > 1 ? ' ▲' : ''}`;
}

/** Median time of a row, starred when noisy. */
const time = (r) => (r ? `${secs(r.time_to_ready_s)}${r.noisy ? '*' : ''}` : '—');

/** One line per image and network: the full pull, gcfs with a warm and a cold cfsd. */
function summaryTable(rows) {
  const find = (image, network, mode, cold) =>
    rows.find((r) => r.image === image && r.network === network && r.mode === mode && isCold(r) === cold);
  const lines = [
    '| image | network | full pull (overlayfs) | gcfs, warm cfsd | vs full pull | gcfs, cold cfsd | vs full pull |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const image of distinct(rows.map((r) => r.image))) {
    for (const network of distinct(rows.filter((r) => r.image === image).map((r) => r.network))) {
      const warm = find(image, network, 'gcfs', false);
      const cold = find(image, network, 'gcfs', true);
      lines.push(
        `| ${image} | ${network} | ${time(find(image, network, 'overlayfs', false))} | ${time(warm)} | ${ratio(warm)} | ${time(cold)} | ${ratio(cold)} |`,
      );
    }
  }
  return lines;
}

/** How many runs each median is of: one number when all rows agree. */
function runsNote(rows) {
  const counts = distinct(rows.map((r) => r.runs));
  if (counts.length > 1) return 'medians of the runs (counts in the second table)';
  return counts[0] === 1 ? 'one run each' : `medians of ${counts[0]} runs each`;
}

/** The markdown of the section, markers included; `rows` with their ratios (withFullPullRatios). */
export function coldStartSection(rows, { date = new Date() } = {}) {
  const images = [...new Map(rows.map((r) => [r.image, r])).values()];
  const lines = [
    BEGIN,
    '',
    "Time from the pull to the container's ready line through containerd's CRI: gcfs against a full",
    "pull with containerd's overlayfs snapshotter, per network profile. gcfs with a warm cfsd (its",
    'index kept, a regional service) and a cold one (a new cfsd on an empty store, `cold_backend`).',
    `Times: ${runsNote(rows)} (* noisy: spread over half the median). Ratio: the time over the`,
    "full pull's for the same image and network (below 1 is faster; ▲ slower).",
    '',
    ...images.map(
      (r) => `- **${r.image}**: ${mib(r.image_bytes)} compressed, working set ${mib(r.working_set_bytes)}`,
    ),
    '',
    ...summaryTable(rows),
    '',
    "Every row: bytes before ready against the image's working set (the files its app opens,",
    "measured with strace). The lower bound is the run's own estimate.",
    '',
    '| image | network | mode | backend | time to ready (median, runs) | vs full pull | bytes before ready / working set | peak RSS gcfsd / downloader | all layers local | lower bound | noisy |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of rows) {
    const bytes =
      r.bytes_before_ready == null
        ? '—'
        : `${mib(r.bytes_before_ready)} / ${mib(r.working_set_bytes)}` +
          (r.working_set_bytes ? ` (${(r.bytes_before_ready / r.working_set_bytes).toFixed(2)}x)` : '');
    const backend = r.mode === 'gcfs' ? (isCold(r) ? 'cold' : 'warm') : '—';
    const rss = r.mode === 'gcfs' ? `${mib(r.rss_peak_bytes)} / ${mib(r.downloader_rss_peak_bytes)}` : '—';
    const local = r.downloaded_s == null ? '—' : `${secs(r.downloaded_s)}`;
    lines.push(
      `| ${r.image} | ${r.network} | ${r.mode} | ${backend} | ${secs(r.time_to_ready_s)} (${r.runs}) | ${r.mode === 'overlayfs' ? '—' : ratio(r)} | ${bytes} | ${rss} | ${local} | ${secs(r.lower_bound_s)} | ${r.noisy ? 'noisy' : ''} |`,
    );
  }
  lines.push(
    '',
    `(\`scripts/bench\`, ${date.toISOString().slice(0, 10)}, ${availableParallelism()} cores; raw rows in`,
    '`latest.json`.)',
    '',
    '![time to ready](time-to-ready.png)',
    '',
    '![bytes fetched before ready](bytes-before-ready.png)',
    '',
    END,
  );
  return lines.join('\n');
}

/** `text` with the section between the markers replaced, or the section appended. */
export function replaceSection(text, section) {
  const begin = text.indexOf(BEGIN);
  const end = text.indexOf(END, begin);
  if (begin >= 0 && end >= 0) return text.slice(0, begin) + section + text.slice(end + END.length);
  return `${text.replace(/(?<!\n)\n*$/, '')}\n\n## Cold start\n\n${section}\n`;
}

async function writeAtomically(file, content) {
  await writeFile(`${file}.tmp`, content);
  await rename(`${file}.tmp`, file);
}

/**
 * Write the rows with their ratios to the full pull to `file`, the cold-start section of the
 * README beside it, and the plots (time-to-ready.png, bytes-before-ready.png) with plot.py.
 * The data is written before the plots, so a missing matplotlib loses only the pictures (and
 * still throws). Returns the path of the JSON file.
 */
export async function writeReport(measured, { file = 'docs/benchmarks/latest.json', readme } = {}) {
  const json = resolve(ROOT, file);
  const readmeFile = readme ? resolve(ROOT, readme) : join(dirname(json), 'README.md');
  const rows = withFullPullRatios(measured);
  await mkdir(dirname(json), { recursive: true });
  await writeAtomically(json, `${JSON.stringify(rows, null, 2)}\n`);
  const text = await readFile(readmeFile, 'utf8').catch((err) =>
    err.code === 'ENOENT' ? '# Benchmarks\n' : Promise.reject(err),
  );
  await writeAtomically(readmeFile, replaceSection(text, coldStartSection(rows)));
  try {
    await execFileP(PYTHON, [join(ROOT, 'scripts', 'benchmarks', 'plot.py'), json]);
  } catch (err) {
    throw new GcfsError(
      ErrorCode.FailedPrecondition,
      `plotting ${json} failed: ${(err.stderr ?? '').trim()}`,
      {
        cause: err,
        hint: 'scripts/setup installs python3-matplotlib for /usr/bin/python3',
      },
    );
  }
  return json;
}
