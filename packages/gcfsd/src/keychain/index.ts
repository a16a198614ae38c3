export * from './cri-auth.js';
export * from './image-service-proxy.js';
export * from './keychain-server.js';
export * from './recorded-credentials.js';
