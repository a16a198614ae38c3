export * from './docs.js';
export * from './flags.js';
