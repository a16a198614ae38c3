export * from './build-info.js';
export * from './grpc-errors.js';
export * from './grpc-server.js';
export * from './metrics-server.js';
