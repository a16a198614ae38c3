import { ERROR_CODE_TRAILER } from '@gcfs/serving';
import { Metadata, type ServiceError, status } from '@grpc/grpc-js';

/** A failure as grpc-js reports it, optionally with cfsd's stable code in the trailer. */
export function serviceError(code: status, details: string, serviceCode?: string): ServiceError {
  const metadata = new Metadata();
  if (serviceCode !== undefined) metadata.set(ERROR_CODE_TRAILER, serviceCode);
  return Object.assign(new Error(`${code} ${status[code]}: ${details}`), { code, details, metadata });
}
