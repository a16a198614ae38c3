export * from './filters.js';
export * from './remote.js';
export * from './service.js';
export * from './snapshotter.js';
