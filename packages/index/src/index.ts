export * from './blocks.js';
export type { ChunkSource } from './byte-source.js';
export * from './indexer.js';
export * from './paths.js';
export * from './serialize.js';
export * from './tar-reader.js';
export * from './threaded-indexer.js';
export * from './toc.js';
export * from './whiteout.js';
