// gcfsctl's one-shot commands: status, images, layers, gc, unregister. Each prints a table (or
// a few aligned lines) for people, or with --json one JSON document for scripts.

import type { AdminClient, ImageView, LayerView, NodeStatusView } from '@gcfs/gcfsd/admin-client';
import {
  formatAge,
  formatBytes,
  imageProgress,
  imageStateText,
  layerNote,
  layerStateText,
  shortDigest,
  table,
} from './format.js';

export interface Output {
  json: boolean;
  write(text: string): void;
}

function printJson(out: Output, value: unknown): void {
  out.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** What needs attention; an empty list is a healthy node. */
export function problemsOf(status: NodeStatusView): string[] {
  const problems: string[] = [];
  if (!status.mounted) problems.push(`nothing is mounted at ${status.mountPoint}`);
  if (status.cfsd.address !== '' && !status.cfsd.reachable) problems.push('cfsd is unreachable');
  if (!status.downloader.reachable) problems.push('the downloader is unreachable');
  if (status.layerCache.error !== undefined) problems.push('the layer cache cannot be read');
  return problems;
}

function reachability(peer: { reachable: boolean; error?: string }): string {
  return peer.reachable ? 'reachable' : `UNREACHABLE (${peer.error ?? 'no answer'})`;
}

function statusLines(s: NodeStatusView, problems: readonly string[]): string {
  const layers = Object.entries(s.layers)
    .filter(([, count]) => count > 0)
    .map(([state, count]) => `${count} ${state}`);
  const layerTotal = Object.values(s.layers).reduce((sum, count) => sum + count, 0);
  const cache = s.layerCache;
  const rows: Array<[string, string]> = [
    ['gcfsd', `${s.version}, pid ${s.pid}, up ${formatAge(s.uptimeMs)}`],
    ['mount', `${s.mountPoint}: ${s.mounted ? 'mounted' : 'NOT MOUNTED'}`],
    [
      'cfsd',
      s.cfsd.address === ''
        ? `not configured (${s.cfsd.error})`
        : `${s.cfsd.address}: ${reachability(s.cfsd)}`,
    ],
    [
      'downloader',
      `${s.downloader.socket}: ${reachability(s.downloader)}` +
        (s.downloader.reachable
          ? `, ${s.downloader.inFlight} downloading, ${s.downloader.queued} queued`
          : ''),
    ],
    [
      'layer cache',
      cache.error !== undefined
        ? `${cache.dir}: cannot be read (${cache.error})`
        : `${cache.dir}: ${formatBytes(cache.bytes)} in ${cache.layers} layers, ${formatBytes(cache.freeBytes)} free of ${formatBytes(cache.sizeBytes)}`,
    ],
    [
      'content cache',
      `${formatBytes(s.contentCache.bytes)} in ${s.contentCache.blocks} blocks, of ${formatBytes(s.contentCache.limitBytes)}`,
    ],
    ['images', `${s.images} in use`],
    ['layers', layerTotal === 0 ? '0' : `${layerTotal}: ${layers.join(', ')}`],
    ['downloads', `${s.downloadsInFlight} under way`],
    ['health', problems.length === 0 ? 'healthy' : `NEEDS ATTENTION: ${problems.join('; ')}`],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}\n`).join('');
}

/** `gcfsctl status`: exit 1 when something needs attention. */
export async function status(admin: AdminClient, out: Output): Promise<number> {
  const s = await admin.status();
  const problems = problemsOf(s);
  if (out.json) printJson(out, { ...s, healthy: problems.length === 0, problems });
  else out.write(statusLines(s, problems));
  return problems.length === 0 ? 0 : 1;
}

function imageRows(images: readonly ImageView[], now: number): string[][] {
  return images.map((image) => {
    const progress = imageProgress(image.layers);
    return [
      imageStateText(image, progress),
      `${progress.local}/${image.layers.length}`,
      formatBytes(progress.total),
      `${formatAge(now - image.registeredAt)} ago`,
      image.name,
    ];
  });
}

export async function images(admin: AdminClient, out: Output): Promise<number> {
  const list = await admin.list();
  if (out.json) printJson(out, { images: list });
  else if (list.length === 0) out.write('no images in use\n');
  else out.write(table(['STATE', 'LOCAL', 'SIZE', 'REGISTERED', 'IMAGE'], imageRows(list, Date.now())));
  return 0;
}

function layerRow(layer: LayerView): string[] {
  return [shortDigest(layer.digest), layerStateText(layer), layer.index, formatBytes(layer.size)];
}

export async function layers(admin: AdminClient, out: Output, image: string | undefined): Promise<number> {
  const result = await admin.layers(image ?? '');
  if (out.json) {
    printJson(out, image === undefined ? { layers: result.layers } : result);
  } else if (image === undefined) {
    const rows = result.layers.map((layer) => [
      ...layerRow(layer),
      String(layer.images.length),
      layerNote(layer),
    ]);
    out.write(
      rows.length === 0
        ? 'no layers on this node\n'
        : table(['LAYER', 'STATE', 'INDEX', 'SIZE', 'IMAGES', 'NOTE'], rows),
    );
  } else {
    const rows = result.layers.map((layer, i) => [String(i), ...layerRow(layer), layerNote(layer)]);
    out.write(`image ${result.image}\n${table(['#', 'LAYER', 'STATE', 'INDEX', 'SIZE', 'NOTE'], rows)}`);
  }
  return 0;
}

export async function gc(admin: AdminClient, out: Output): Promise<number> {
  const result = await admin.collect();
  if (out.json) {
    printJson(out, result);
    return 0;
  }
  out.write(
    `removed ${result.images.length} images and ${result.layers.length} layers in ${Math.round(result.ms)} ms\n`,
  );
  for (const name of result.images) out.write(`  image ${name}\n`);
  for (const digest of result.layers) out.write(`  layer ${digest}\n`);
  return 0;
}

export async function unregister(admin: AdminClient, out: Output, image: string): Promise<number> {
  const name = await admin.unregister(image);
  if (out.json) printJson(out, { unregistered: name });
  else out.write(`unregistered ${name}: the next gc removes it (gcfsctl gc)\n`);
  return 0;
}
