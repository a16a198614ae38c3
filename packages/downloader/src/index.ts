export * from './untar/index.js';
