export * from './cli.js';
export * from './reference.js';
export * from './spec.js';
