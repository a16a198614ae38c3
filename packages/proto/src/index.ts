// Generated code lives in ./gen (npm run build regenerates it from proto/).
export * as snapshots from './gen/containerd/services/snapshots/v1/snapshots.js';
export * as containerdTypes from './gen/containerd/types/mount.js';
export * as containerfs from './gen/gcfs/containerfs/v1/containerfs.js';
export * as downloader from './gen/gcfs/downloader/v1/downloader.js';
export * as gcfsdAdmin from './gen/gcfs/gcfsd/v1/admin.js';
export * as gcfsdKeychain from './gen/gcfs/gcfsd/v1/keychain.js';
export * as health from './gen/grpc/health/v1/health.js';
export * as cri from './gen/k8s/cri/runtime/v1/api.js';
