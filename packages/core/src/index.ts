export * from './backoff.js';
export * from './descriptor.js';
export * from './digest.js';
export * from './errors.js';
export * from './limits.js';
export * from './logger.js';
export * from './media-types.js';
export * from './redact.js';
