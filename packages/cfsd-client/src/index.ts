export * from './block-fetcher.js';
export * from './blocks.js';
export * from './client.js';
export * from './events.js';
export * from './retry.js';
export * from './session.js';
export * from './status.js';
export type { TlsOptions } from './transport.js';
