// gcfsctl's command line, declared once: yargs parses it and prints --help from it, and
// docs/configuration.md's gcfsctl section is rendered from it (reference.ts).

import { describeVersion } from '@gcfs/core';
import { GCFSD_FLAGS } from '@gcfs/gcfsd/flags';
import type { Options, PositionalOptions } from 'yargs';

/** gcfsd's own default, so that gcfsctl finds the admin socket of a gcfsd run with defaults. */
export const DEFAULT_MOUNT_POINT = GCFSD_FLAGS.find((flag) => flag.name === 'mount_point')!.default as string;

export const GLOBAL_OPTIONS = {
  mount_point: {
    type: 'string',
    default: DEFAULT_MOUNT_POINT,
    describe: "gcfsd's --mount_point: its admin socket is admin.sock beside it",
  },
  socket: {
    type: 'string',
    describe: "gcfsd's admin socket, when it is not beside --mount_point",
    defaultDescription: '<dir of --mount_point>/admin.sock',
  },
  json: {
    type: 'boolean',
    default: false,
    describe: 'print JSON (one document) for scripts instead of tables',
  },
} as const satisfies Record<string, Options>;

export interface CommandSpec {
  /** As yargs takes it: `wait <image>`, `layers [image]`. */
  command: string;
  describe: string;
  positionals?: Record<string, PositionalOptions>;
  options?: Record<string, Options>;
}

const IMAGE: PositionalOptions = {
  type: 'string',
  describe:
    'an image in use: its name as `gcfsctl images` shows it, or any reference to its repository when one image of it is in use',
};

export const COMMANDS = [
  {
    command: 'status',
    describe:
      'the node at a glance: gcfsd, its mount, cfsd and the downloader, cache use, images, layers and downloads; exits 1 when something needs attention',
  },
  {
    command: 'images',
    describe: 'the images in use and their layers: streamed, downloading (with percent), local, failed',
  },
  {
    command: 'layers [image]',
    describe:
      "every layer on the node, or an image's layers in order, with state, index, size and why one failed",
    positionals: { image: IMAGE },
  },
  {
    command: 'gc',
    describe:
      "collect garbage now: images no longer in use and the layers no image in use needs (gcfsd's --gc_period pass)",
  },
  {
    command: 'unregister <image>',
    describe: 'mark an image unused (as removing its last snapshot does); the next gc removes it',
    positionals: { image: IMAGE },
  },
  {
    command: 'wait <image>',
    describe:
      'wait until every layer of the image is downloaded (local): a progress bar on a terminal, progress lines otherwise; exits 1 with the reason when a layer fails',
    positionals: { image: IMAGE },
    options: {
      timeout: {
        type: 'string',
        default: '10m',
        describe: 'give up after this long (Go duration: 90s, 10m, 1h); 0 waits as long as it takes',
      },
    },
  },
] as const satisfies readonly CommandSpec[];

export type CommandName = (typeof COMMANDS)[number]['command'] extends infer C
  ? C extends `${infer Name} ${string}`
    ? Name
    : C
  : never;

/** The version of gcfs (gcfsd's and cfsd's too) and the commit it was built from. */
export const VERSION = describeVersion();

export const SUMMARY = "Watch and steer a node's gcfsd over its admin socket (root only).";
