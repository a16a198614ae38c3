// `gcfsctl wait IMAGE`: polls the image's layers until every one is local. On a terminal one
// progress bar is redrawn in place; otherwise a line is printed whenever a layer lands or the
// download passes another tenth, so logs of scripts stay short. A failed layer ends the wait
// with its reason (exit 1), as does the timeout or the image leaving the node. gcfsd restarting
// (an upgrade) does not: the wait goes on once it answers again, within the same timeout.

import { ErrorCode, GcfsError, isErrorCode, isGcfsError, sleep } from '@gcfs/core';
import type { AdminClient, LayerView } from '@gcfs/gcfsd/admin-client';
import type { Output } from './commands.js';
import { formatAge, formatBytes, imageProgress } from './format.js';

export interface WaitOptions {
  image: string;
  /** 0: no timeout. */
  timeoutMs: number;
  /** Redraw one progress bar (stdout is a terminal). */
  tty: boolean;
  pollMs?: number;
}

const BAR_WIDTH = 30;

/** Draws the progress: a bar in place on a terminal, a line per step otherwise. */
class ProgressView {
  readonly #out: Output;
  readonly #tty: boolean;
  #last = '';
  #drawn = false;
  #down = false;

  constructor(out: Output, tty: boolean) {
    this.#out = out;
    this.#tty = tty;
  }

  update(image: string, layers: readonly LayerView[]): void {
    if (this.#out.json) return;
    const p = imageProgress(layers);
    const counts = `${p.local}/${layers.length} layers local`;
    if (this.#tty) {
      const filled = Math.round((p.percent / 100) * BAR_WIDTH);
      const bar = `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`;
      const sizes = `${formatBytes(p.done)}/${formatBytes(p.total)}`;
      this.#out.write(`\r\x1b[2K${bar} ${String(p.percent).padStart(3)}%  ${sizes}  ${counts}`);
      this.#drawn = true;
      return;
    }
    // A new line only when a layer landed or failed, or another tenth came down.
    const step = `${counts} ${Math.floor(p.percent / 10)} ${layers.map((layer) => layer.state).join()}`;
    if (step === this.#last) return;
    this.#last = step;
    this.#out.write(`${image}: ${counts}, ${p.percent}% of ${formatBytes(p.total)}\n`);
  }

  /** Says once per outage that gcfsd does not answer and the wait goes on. */
  unavailable(image: string, down: boolean): void {
    if (this.#out.json || down === this.#down) return;
    this.#down = down;
    if (!down) return;
    this.end();
    this.#out.write(`${image}: gcfsd does not answer (restarting?): still waiting\n`);
    this.#last = '';
  }

  /** Leave the bar's line before anything else is printed. */
  end(): void {
    if (this.#drawn) this.#out.write('\n');
    this.#drawn = false;
  }
}

function failure(image: string, layer: LayerView): GcfsError {
  const code = layer.downloadFailure?.code ?? '';
  return new GcfsError(
    isErrorCode(code) ? code : ErrorCode.Internal,
    `layer ${layer.digest} of ${image} failed to download: ${layer.downloadFailure?.reason ?? 'unknown'}`,
    {
      hint: `it stays streamed from cfsd; gcfsd downloads it again when the image is registered again or gcfsd restarts (gcfsctl layers ${image} shows every layer)`,
    },
  );
}

export async function wait(admin: AdminClient, out: Output, options: WaitOptions): Promise<number> {
  const started = Date.now();
  const deadline = options.timeoutMs > 0 ? started + options.timeoutMs : Number.POSITIVE_INFINITY;
  const view = new ProgressView(out, options.tty);
  let name: string | undefined;
  try {
    for (;;) {
      let answer: Awaited<ReturnType<AdminClient['layers']>>;
      try {
        answer = await admin.layers(name ?? options.image);
      } catch (err) {
        // Seen once, the image is waited for across a restart of gcfsd; at first, an unreachable
        // gcfsd is an error that names the fix.
        if (name !== undefined && isGcfsError(err, ErrorCode.GcfsdUnavailable) && Date.now() < deadline) {
          view.unavailable(name, true);
          await sleep(Math.min(options.pollMs ?? 500, deadline - Date.now()));
          continue;
        }
        if (name !== undefined && isGcfsError(err, ErrorCode.NotFound)) {
          throw new GcfsError(ErrorCode.NotFound, `image ${name} is no longer in use: nothing to wait for`, {
            cause: err,
          });
        }
        throw err;
      }
      name = answer.image;
      view.unavailable(name, false);
      const { layers } = answer;
      view.update(name, layers);
      const failed = layers.find((layer) => layer.state === 'failed');
      if (failed !== undefined) throw failure(name, failed);
      if (layers.every((layer) => layer.state === 'local')) {
        view.end();
        if (out.json) out.write(`${JSON.stringify({ image: name, layers }, null, 2)}\n`);
        else
          out.write(`${name}: all ${layers.length} layers local after ${formatAge(Date.now() - started)}\n`);
        return 0;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        const p = imageProgress(layers);
        throw new GcfsError(
          ErrorCode.Timeout,
          `${name} is not local after ${formatAge(options.timeoutMs)}: ${p.local}/${layers.length} layers local, ${p.percent}%`,
          {
            hint: 'wait longer (--timeout), and see gcfsctl layers and gcfsd --downloader for slow downloads',
          },
        );
      }
      await sleep(Math.min(options.pollMs ?? 500, left));
    }
  } finally {
    view.end();
  }
}
