import { Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { SERVICE_CODE_KEY } from '../src/status.js';

/** A failure as grpc-js reports it, optionally with cfsd's stable code in the trailer. */
export function serviceError(code: status, details: string, serviceCode?: string): ServiceError {
  const metadata = new Metadata();
  if (serviceCode !== undefined) metadata.set(SERVICE_CODE_KEY, serviceCode);
  return Object.assign(new Error(`${code} ${status[code]}: ${details}`), { code, details, metadata });
}
