// The cold-start benchmark's three images (small, medium, large), built once and cached under
// /var/tmp/gcfs-workloads, each with its working set: the files its app really opens, measured
// once by running the image's command in a chroot under strace. That is the lower bound of what
// a streaming pull must fetch before the container is ready.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile, readlink, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { promisify } from 'node:util';
import { digestHex, ErrorCode, GcfsError } from '@gcfs/core';
import { buildDebianImage, buildImage, busyboxEntries } from '@gcfs/image-builder';

const execFileP = promisify(execFile);
export const WORKLOADS_DIR = '/var/tmp/gcfs-workloads';
/** Bump when the way a working set is measured changes: cached results are then recomputed. */
const WORKING_SET_FORMAT = 1;

const LARGE_APP = `import numpy as np
import pandas as pd
from scipy import stats
from sklearn.linear_model import LinearRegression

# A real small task touching all three libraries: fit y = 3x + 2 on noisy samples.
rng = np.random.default_rng(7)
x = rng.uniform(0, 10, 200)
df = pd.DataFrame({"x": x, "y": 3.0 * x + 2.0 + rng.normal(0, 0.5, 200)})
fit = stats.linregress(df["x"], df["y"])
model = LinearRegression().fit(df[["x"]], df["y"])
print(f"ready: slope {fit.slope:.2f} intercept {fit.intercept:.2f} "
      f"sklearn {model.coef_[0]:.2f} r2 {fit.rvalue ** 2:.3f}", flush=True)
`;

/** `spec` for buildImage or `debian` for buildDebianImage; medium is scripts/demo.mjs's WORKLOAD (one cache). */
export const WORKLOADS = {
  small: {
    readyLine: '^ready$',
    spec: {
      config: { env: ['PATH=/bin'], cmd: ['/bin/sh', '-c', 'echo ready'] },
      layers: [{ entries: busyboxEntries() }],
    },
  },
  medium: {
    readyLine: '^ready: numpy',
    debian: {
      name: 'python-numpy',
      packages: ['python3', 'python3-numpy'],
      app: {
        'app/main.py': {
          content:
            'import numpy\nprint("ready: numpy", numpy.__version__, "sum", numpy.arange(10).sum(), flush=True)\n',
        },
      },
      cmd: ['python3', '/app/main.py'],
    },
  },
  large: {
    readyLine: '^ready: slope',
    debian: {
      name: 'python-scipy-pandas',
      packages: ['python3', 'python3-scipy', 'python3-pandas', 'python3-sklearn'],
      app: { 'app/main.py': { content: LARGE_APP } },
      cmd: ['python3', '/app/main.py'],
    },
  },
};

async function run(cmd, args, what, options = {}) {
  try {
    return await execFileP(cmd, args, { maxBuffer: 64 * 1024 * 1024, ...options });
  } catch (err) {
    if (err.code === 'ENOENT') {
      throw new GcfsError(ErrorCode.FailedPrecondition, `${what}: ${cmd} is not installed`, {
        cause: err,
        hint: 'scripts/setup installs strace, tar and util-linux',
      });
    }
    const tail = `${err.stderr ?? ''}\n${err.stdout ?? ''}`.trim().split('\n').slice(-6).join(' | ');
    throw new GcfsError(ErrorCode.Internal, `${what} failed: ${tail}`, { cause: err });
  }
}

/** The small image: a few MB, so rebuilt only when its spec changes (a `done` file records which). */
async function buildSmall(spec, log) {
  const dir = join(WORKLOADS_DIR, 'small');
  const hash = createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16);
  const done = await readFile(join(dir, 'done'), 'utf8')
    .then(JSON.parse)
    .catch(() => undefined);
  if (done?.hash === hash) return done.built;
  log('building the small (busybox) image');
  const tmp = join(WORKLOADS_DIR, `.tmp-small-${process.pid}`);
  await run('rm', ['-rf', '--one-file-system', '--', tmp], `removing ${tmp}`);
  await mkdir(tmp, { recursive: true });
  const built = await buildImage(spec, { layoutDir: join(tmp, 'layout'), tag: 'small' });
  const result = { ...built, layoutDir: join(dir, 'layout') };
  await writeFile(join(tmp, 'done'), JSON.stringify({ hash, built: result }));
  await run('rm', ['-rf', '--one-file-system', '--', dir], `removing ${dir}`);
  await rename(tmp, dir);
  return result;
}

/** `path` as the chroot at `rootfs` sees it (symlinks followed inside it), as a host path. */
async function resolveIn(rootfs, path, hops = 0) {
  const parts = posix.normalize(`/${path}`).split('/').filter(Boolean);
  let resolved = '';
  for (const [i, part] of parts.entries()) {
    const st = await lstat(join(rootfs, resolved, part)).catch(() => undefined);
    if (!st?.isSymbolicLink()) {
      resolved = posix.join(resolved, part);
      continue;
    }
    if (hops > 40) return undefined; // a symlink loop
    const target = await readlink(join(rootfs, resolved, part));
    const rest = parts.slice(i + 1).join('/');
    const next = target.startsWith('/') ? target : posix.join('/', resolved, target);
    return resolveIn(rootfs, posix.join(next, rest), hops + 1);
  }
  return join(rootfs, resolved);
}

/**
 * What the kernel itself opens for an execve, with no open syscall for strace to see: a
 * script's `#!` interpreter, an ELF's PT_INTERP (the dynamic loader).
 */
async function execInterpreters(rootfs, file, found, depth = 0) {
  const bytes = await readFile(file).catch(() => undefined);
  if (!bytes || depth > 4) return;
  let interp;
  if (bytes.subarray(0, 2).toString() === '#!') {
    interp = bytes.subarray(2, 256).toString().split('\n')[0].trim().split(/\s+/)[0];
  } else if (bytes.length > 64 && bytes.readUInt32BE(0) === 0x7f454c46 && bytes[4] === 2 && bytes[5] === 1) {
    // ELF64 little-endian: program headers at e_phoff, e_phnum of e_phentsize bytes.
    const phoff = Number(bytes.readBigUInt64LE(0x20));
    const [size, count] = [bytes.readUInt16LE(0x36), bytes.readUInt16LE(0x38)];
    for (let i = 0; i < count; i++) {
      const ph = phoff + i * size;
      if (bytes.readUInt32LE(ph) !== 3) continue; // PT_INTERP
      const offset = Number(bytes.readBigUInt64LE(ph + 8));
      const length = Number(bytes.readBigUInt64LE(ph + 0x20));
      interp = bytes
        .subarray(offset, offset + length)
        .toString()
        .replace(/(?<!\0)\0+$/, '');
    }
  }
  const path = interp && (await resolveIn(rootfs, interp));
  if (!path || found.has(path)) return;
  found.add(path);
  await execInterpreters(rootfs, path, found, depth + 1);
}

// strace lines are parsed by hand and anchored patterns: the one-pattern forms of these
// (`open(at)?\(.*\) = \d+<(.*)>$`) backtrack in quadratic time on a long line.

/** The path of a successful open/openat as strace -y shows it: `openat(...) = 3</path>`. */
function openedPath(line) {
  const call = line.search(/\bopen(?:at)?\(/);
  const result = line.lastIndexOf(') = ');
  if (call < 0 || result < call) return undefined;
  return /^ = \d+<(.*)>$/.exec(line.slice(result + 1))?.[1];
}

/** The path of a successful execve: `execve("/bin/sh", [...], ...) = 0`. */
function executedPath(line) {
  const call = line.search(/\bexecve\("/);
  if (call < 0 || !line.endsWith(' = 0')) return undefined;
  const quoted = /^((?:[^"\\]|\\.)*)",/.exec(line.slice(call + 'execve("'.length));
  return quoted?.[1];
}

/**
 * Host paths of what the traced chroot opened successfully: open/openat results as strace -y
 * decorates them (kernel-resolved, so under `rootfs`), plus every executed file and what the
 * kernel loads for it. The first execve is chroot(8) itself, on the host.
 */
async function openedFiles(rootfs, trace) {
  const found = new Set();
  const pending = new Map(); // pid → start of a call strace split around another thread's
  let execs = 0;
  for (let line of trace.split('\n')) {
    const pid = line.match(/^(\d+) /)?.[1];
    if (line.endsWith(' <unfinished ...>')) {
      pending.set(pid, line.slice(0, -' <unfinished ...>'.length));
      continue;
    }
    const resumed = line.match(/^\d+ <\.\.\. \w+ resumed>(.*)$/);
    if (resumed) {
      line = `${pending.get(pid) ?? ''}${resumed[1]}`;
      pending.delete(pid);
    }
    const opened = openedPath(line);
    if (opened?.startsWith(`${rootfs}/`) && !/^\/(proc|sys|dev)\//.test(opened.slice(rootfs.length))) {
      found.add(opened);
    }
    const executed = executedPath(line);
    if (executed !== undefined && execs++ > 0) {
      const path = await resolveIn(rootfs, executed);
      if (path) {
        found.add(path);
        await execInterpreters(rootfs, path, found);
      }
    }
  }
  return found;
}

/**
 * Run the image's command in a chroot of its extracted layers under strace and return the
 * distinct regular files of the image it opened successfully, with their total size. The
 * chroot gets /proc, /sys and /dev (as a container has) in private mount and PID namespaces:
 * the mounts vanish with the process, and killing unshare (the timeout) kills everything.
 */
export async function measureWorkingSet(built, readyLine) {
  const config = JSON.parse(
    await readFile(join(built.layoutDir, 'blobs', 'sha256', digestHex(built.configDescriptor.digest))),
  ).config;
  const argv = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
  const env = Object.fromEntries(
    (config.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
  );
  const { stdout: tmpOut } = await run('mktemp', ['-d', '/var/tmp/gcfs-workingset-XXXXXX'], 'mktemp');
  const tmp = tmpOut.trim();
  const rootfs = join(tmp, 'rootfs');
  const trace = join(tmp, 'trace');
  try {
    await mkdir(rootfs);
    // In layer order, whiteouts not applied: these images have none, and their opaque dirs are
    // all new in their layer, so nothing below them is hidden.
    for (const layer of built.layers) {
      const blob = join(built.layoutDir, 'blobs', 'sha256', digestHex(layer.descriptor.digest));
      await run(
        'tar',
        ['-xf', blob, '-C', rootfs, '--numeric-owner'],
        `extracting ${layer.descriptor.digest}`,
      );
    }
    for (const d of ['proc', 'sys', 'dev']) await mkdir(join(rootfs, d), { recursive: true });
    // -y prints the path of each returned fd as the kernel resolved it (symlinks followed).
    const script =
      'set -e; r="$1"; t="$2"; shift 2; /bin/mount -t proc proc "$r/proc"; /bin/mount -t sysfs sysfs "$r/sys";' +
      ' /bin/mount --bind /dev "$r/dev"; exec /usr/bin/strace -f -qq -y -e trace=open,openat,execve -o "$t" /usr/sbin/chroot "$r" "$@"';
    const { stdout } = await run(
      '/usr/bin/unshare',
      [
        '--mount',
        '--pid',
        '--fork',
        '--kill-child',
        '--propagation',
        'private',
        '--',
        '/bin/sh',
        '-c',
        script,
        'sh',
        rootfs,
        trace,
        ...argv,
      ],
      `running ${argv.join(' ')} under strace`,
      { env: { HOME: '/root', ...env }, cwd: '/', timeout: 600_000 },
    );
    if (!stdout.split('\n').some((line) => new RegExp(readyLine).test(line))) {
      throw new GcfsError(
        ErrorCode.Internal,
        `the app printed no line matching /${readyLine}/: ${stdout.slice(0, 300)}`,
      );
    }
    const paths = await openedFiles(rootfs, await readFile(trace, 'utf8'));
    let files = 0;
    let bytes = 0;
    for (const path of paths) {
      const st = await stat(path).catch(() => undefined);
      if (!st?.isFile()) continue; // directories, and files the app deleted
      files++;
      bytes += st.size;
    }
    return { files, bytes };
  } finally {
    await run('rm', ['-rf', '--one-file-system', '--', tmp], `removing ${tmp}`);
  }
}

/** Working set cached beside the image, keyed by its manifest digest. */
async function workingSet(built, readyLine, log) {
  const file = join(
    dirname(built.layoutDir),
    `working-set-${digestHex(built.manifestDigest).slice(0, 16)}.json`,
  );
  const cached = await readFile(file, 'utf8')
    .then(JSON.parse)
    .catch(() => undefined);
  if (cached?.format === WORKING_SET_FORMAT && cached.manifestDigest === built.manifestDigest) {
    return { files: cached.files, bytes: cached.bytes };
  }
  log(`measuring the working set of ${built.manifestDigest} (strace in a chroot)`);
  const measured = await measureWorkingSet(built, readyLine);
  const body = { format: WORKING_SET_FORMAT, manifestDigest: built.manifestDigest, ...measured };
  await writeFile(`${file}.tmp`, JSON.stringify(body));
  await rename(`${file}.tmp`, file);
  return measured;
}

/**
 * Build (or reuse) a workload's image and its working set.
 * @returns {Promise<{name: string, built: import('@gcfs/image-builder').BuildResult, imageBytes: number,
 *   unpackedBytes: number, readyLine: string, ready: RegExp,
 *   workingSet: {files: number, bytes: number}}>}
 */
export async function buildWorkload(name, { log = () => {} } = {}) {
  const workload = WORKLOADS[name];
  if (!workload) {
    throw new GcfsError(
      ErrorCode.InvalidArgument,
      `unknown workload ${name}; known: ${Object.keys(WORKLOADS).join(', ')}`,
    );
  }
  const built = workload.debian
    ? await buildDebianImage(workload.debian, { cacheDir: WORKLOADS_DIR, log })
    : await buildSmall(workload.spec, log);
  return {
    name,
    built,
    // What a full pull downloads (layers, compressed) and what it unpacks (layer tars).
    imageBytes: built.layers.reduce((n, l) => n + l.descriptor.size, 0),
    unpackedBytes: built.layers.reduce((n, l) => n + l.uncompressedSize, 0),
    readyLine: workload.readyLine,
    // For the cold-start runner: the line to wait for.
    ready: new RegExp(workload.readyLine),
    workingSet: await workingSet(built, workload.readyLine, log),
  };
}
