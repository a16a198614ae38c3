export * from './cached-store.js';
export * from './file-store.js';
export * from './layer-store.js';
export * from './memory-store.js';
export * from './open-store.js';
