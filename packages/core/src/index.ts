export * from './backoff.js';
export * from './descriptor.js';
export * from './digest.js';
export * from './errors.js';
export * from './logger.js';
export * from './media-types.js';
export * from './private-paths.js';
export * from './redact.js';
