export * from './tree-writer.js';
export * from './untar.js';
