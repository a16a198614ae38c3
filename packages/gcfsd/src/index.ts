export * from './daemon/index.js';
export * from './flags.js';
