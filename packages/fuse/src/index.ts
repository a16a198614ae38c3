export * from './content.js';
export * from './events.js';
export * from './layer-tree.js';
export * from './mount.js';
export * from './stat.js';
export * from './tree.js';
