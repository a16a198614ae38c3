// Raw tar bytes, for tests of what our writers never produce (malformed and hostile archives).

export interface RawMember {
  name: string;
  typeflag?: string;
  size?: number;
  mode?: number;
  uid?: number;
  mtime?: number;
  linkname?: string;
  format?: 'ustar' | 'gnu' | 'v7';
  /** Bytes written over the header at the given offsets, before the checksum. */
  patch?: Array<[number, Buffer | string]>;
  /** Store a wrong checksum. */
  badChecksum?: boolean;
}

function octal(block: Buffer, offset: number, width: number, value: number): void {
  block.write(`${value.toString(8).padStart(width - 1, '0')}\0`, offset, width, 'latin1');
}

export function header(m: RawMember): Buffer {
  const block = Buffer.alloc(512);
  Buffer.from(m.name).copy(block, 0, 0, 100);
  octal(block, 100, 8, m.mode ?? 0o644);
  octal(block, 108, 8, m.uid ?? 0);
  octal(block, 116, 8, 0);
  octal(block, 124, 12, m.size ?? 0);
  octal(block, 136, 12, m.mtime ?? 1_700_000_000);
  block.write(m.typeflag ?? '0', 156, 1, 'latin1');
  Buffer.from(m.linkname ?? '').copy(block, 157, 0, 100);
  const magic = { ustar: 'ustar\x0000', gnu: 'ustar  \0', v7: '' }[m.format ?? 'ustar'];
  block.write(magic, 257, 'latin1');
  for (const [offset, bytes] of m.patch ?? []) Buffer.from(bytes as string, 'latin1').copy(block, offset);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  if (m.badChecksum) sum += 1;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

export function data(content: Buffer | string): Buffer {
  const bytes = Buffer.from(content);
  return Buffer.concat([bytes, Buffer.alloc((512 - (bytes.length % 512)) % 512)]);
}

export function member(m: RawMember, content: Buffer | string = ''): Buffer {
  const bytes = Buffer.from(content);
  return Buffer.concat([header({ ...m, size: m.size ?? bytes.length }), data(bytes)]);
}

function record(key: string, value: Buffer | string): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value), Buffer.from('\n')]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return Buffer.concat([Buffer.from(String(length)), body]);
}

export function pax(records: Array<[string, Buffer | string]>, typeflag = 'x'): Buffer {
  const body = Buffer.concat(records.map(([k, v]) => record(k, v)));
  return member({ name: 'PaxHeaders/x', typeflag }, body);
}

export const END = Buffer.alloc(1024);

export const tar = (...parts: Buffer[]) => Buffer.concat(parts);
