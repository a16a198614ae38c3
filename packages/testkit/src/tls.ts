import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir } from './temp.js';

const execFileAsync = promisify(execFile);

export interface CertificateOptions {
  commonName: string;
  /** The subject's O, e.g. `system:nodes` for a kubelet's client certificate. */
  organization?: string;
  /** subjectAltName entries, e.g. `IP:127.0.0.1`, `DNS:localhost`. */
  altNames?: readonly string[];
}

/** An ES256 key and a self-signed certificate for it, made by the openssl CLI. */
export async function selfSignedCertificate(
  options: CertificateOptions,
): Promise<{ keyPem: string; certificatePem: string }> {
  const dir = await makeTempDir('gcfs-tls-');
  try {
    const keyFile = join(dir.path, 'key.pem');
    const certFile = join(dir.path, 'cert.pem');
    const san = options.altNames?.length ? ['-addext', `subjectAltName=${options.altNames.join(',')}`] : [];
    await execFileAsync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-subj',
      `${options.organization === undefined ? '' : `/O=${options.organization}`}/CN=${options.commonName}`,
      '-days',
      '2',
      ...san,
    ]);
    return { keyPem: await readFile(keyFile, 'utf8'), certificatePem: await readFile(certFile, 'utf8') };
  } finally {
    await dir.cleanup();
  }
}
