export * from './daemon/index.js';
export * from './flags.js';
export * from './keychain/index.js';
