// How gcfsctl writes things for people: sizes, ages, short digests, aligned tables, and one
// word (with a percent) for where a layer or a whole image stands.

import { formatDuration } from '@gcfs/cli';
import type { ImageView, LayerView } from '@gcfs/gcfsd/admin-client';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** Whole seconds, Go style: `3m12s`. */
export function formatAge(ms: number): string {
  return formatDuration(Math.max(0, Math.round(ms / 1000)) * 1000);
}

/** `sha256:` and the first 12 hex digits, as docker shortens image IDs. */
export function shortDigest(digest: string): string {
  const colon = digest.indexOf(':');
  return colon < 0 ? digest : digest.slice(0, colon + 13);
}

/** Rows under a header, columns padded to their widest cell (the last one is not padded). */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[header, ...rows].map(line).join('\n')}\n`;
}

function percent(done: number, total: number): number {
  return total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 0;
}

/** Compressed bytes of the layer on the node: all of it once local, what the downloader fetched before. */
function bytesDone(layer: LayerView): number {
  if (layer.state === 'local') return layer.size;
  return layer.state === 'downloading' ? (layer.download?.bytes ?? 0) : 0;
}

/** How far an image's layers are downloaded, in compressed bytes and layers. */
export function imageProgress(layers: readonly LayerView[]): {
  done: number;
  total: number;
  percent: number;
  local: number;
} {
  const total = layers.reduce((sum, layer) => sum + layer.size, 0);
  const done = layers.reduce((sum, layer) => sum + bytesDone(layer), 0);
  const local = layers.filter((layer) => layer.state === 'local').length;
  const all = local === layers.length;
  return { done, total, percent: all ? 100 : Math.min(99, percent(done, total)), local };
}

/** `downloading 45%`, `downloading (queued)`, `local`, `failed`, `streamed`, `attached`. */
export function layerStateText(layer: LayerView): string {
  if (layer.state !== 'downloading') return layer.state;
  if (layer.download?.phase === 'queued') return 'downloading (queued)';
  if (layer.download === undefined) return 'downloading';
  return `downloading ${percent(layer.download.bytes, layer.download.size)}%`;
}

/** Why a layer is not what it should be: its download given up, its index impossible. */
export function layerNote(layer: LayerView): string {
  const notes: string[] = [];
  if (layer.downloadFailure) {
    const code = layer.downloadFailure.code ? `${layer.downloadFailure.code}: ` : '';
    notes.push(`download failed: ${code}${layer.downloadFailure.reason}`);
  }
  if (layer.indexFailure) notes.push(`cfsd cannot index it: ${layer.indexFailure}`);
  return notes.join('; ');
}

/** One word for the whole image: failed, local, downloading N%, attached or streamed. */
export function imageStateText(image: ImageView, progress = imageProgress(image.layers)): string {
  const failed = image.layers.filter((layer) => layer.state === 'failed').length;
  if (failed > 0) return `failed (${failed} of ${image.layers.length} layers)`;
  if (progress.local === image.layers.length) return 'local';
  if (image.layers.some((layer) => layer.state === 'downloading')) return `downloading ${progress.percent}%`;
  if (image.layers.some((layer) => layer.state === 'attached')) return 'attached';
  return 'streamed';
}
