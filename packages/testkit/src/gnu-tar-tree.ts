import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type GnuTarFormat = 'posix' | 'gnu';

/**
 * A real directory tree made with the system's own tools, carrying what layers carry:
 * long names, a hard link, a symlink, a fifo, a char device, binary
 * `security.capability` and `user.*` xattrs, odd owners and modes, sub-second mtimes
 * (soft: 1600000000.123456789, empty: 1500000000.999999999, sub: 1400000000.5).
 * `sub/data` is 300,000 bytes of 7s, `sub/random` 200,000 random bytes.
 */
export async function makeRealTree(src: string): Promise<void> {
  const deep = join(src, 'x'.repeat(120), 'y'.repeat(120));
  await mkdir(deep, { recursive: true });
  await writeFile(join(deep, 'z'.repeat(150)), 'long names');
  await mkdir(join(src, 'sub'), { mode: 0o705 });
  await writeFile(join(src, 'sub/data'), Buffer.alloc(300_000, 7));
  await writeFile(join(src, 'sub/random'), randomBytes(200_000));
  await writeFile(join(src, 'empty'), '');
  await run('ln', [join(src, 'sub/data'), join(src, 'hard')]);
  await run('ln', ['-s', 'sub/data', join(src, 'soft')]);
  await run('mkfifo', [join(src, 'fifo')]);
  await run('mknod', [join(src, 'null'), 'c', '1', '3']);
  await run('setfattr', [
    '-n',
    'security.capability',
    '-v',
    '0x01000002ffffffff00000000ffffffff00000000',
    join(src, 'sub/data'),
  ]);
  await run('setfattr', ['-n', 'user.text', '-v', 'hello', join(src, 'sub')]);
  await run('chown', ['1234:5678', join(src, 'empty')]);
  await run('chmod', ['2755', join(src, 'sub')]);
  await run('touch', ['-h', '-d', '@1600000000.123456789', join(src, 'soft')]);
  await run('touch', ['-d', '@1500000000.999999999', join(src, 'empty')]);
  await run('touch', ['-d', '@1400000000.5', join(src, 'sub')]);
}

/** GNU tar's archive of `src` (`-cpf`); xattrs only in the posix format, which has PAX records. */
export async function gnuTarCreate(src: string, tarPath: string, format: GnuTarFormat): Promise<void> {
  const xattrs = format === 'posix' ? ['--xattrs', '--xattrs-include=*'] : [];
  await run('tar', [...xattrs, `--format=${format}`, '-cpf', tarPath, '-C', src, '.']);
}
