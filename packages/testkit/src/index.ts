export * from './curl.js';
export * from './process.js';
export * as rawTar from './raw-tar.js';
export * from './redirect-front.js';
export * from './registry-server.js';
export * from './temp.js';
export * from './tls.js';
export * from './token-server.js';
export * from './tree.js';
