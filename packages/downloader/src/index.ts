export * from './client.js';
export * from './download-request.js';
export * from './request-text.js';
export * from './service/layer-cache.js';
export * from './service/manager.js';
export * from './service/metrics.js';
export * from './service/server.js';
export type * from './types.js';
export * from './untar/index.js';
