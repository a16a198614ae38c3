// Every flag of cfsd. The parser, `cfsd --help` and docs/configuration.md are generated
// from this table.

import { type CommandSpec, defineFlags, emptyOrAbsolutePath } from '@gcfs/cli';
import { describeVersion, LOG_FORMATS, LOG_LEVELS } from '@gcfs/core';

const SERVING = 'Serving';
const STORAGE = 'Index and storage';
const REGISTRY = 'Registry access';
const MONITORING = 'Monitoring and logging';

const listenAddress = (value: string) =>
  /^(unix:\/.+|[^\s:]+:\d{1,5}|\[[0-9a-fA-F:]+\]:\d{1,5})$/.test(value)
    ? undefined
    : 'must be host:port or unix:/absolute/path';

export const CFSD_FLAGS = defineFlags([
  {
    name: 'listen',
    type: 'string',
    default: '127.0.0.1:7070',
    group: SERVING,
    validate: listenAddress,
    description: 'gRPC listen address: host:port, or unix:/path for a Unix socket',
  },
  {
    name: 'tls_cert_file',
    type: 'string',
    default: '',
    group: SERVING,
    validate: emptyOrAbsolutePath,
    description: 'PEM certificate chain; with --tls_key_file, serve gRPC over TLS',
  },
  {
    name: 'tls_key_file',
    type: 'string',
    default: '',
    group: SERVING,
    validate: emptyOrAbsolutePath,
    description: 'PEM private key of --tls_cert_file',
  },
  {
    name: 'tls_client_ca_file',
    type: 'string',
    default: '',
    group: SERVING,
    validate: emptyOrAbsolutePath,
    description: 'PEM CA bundle; when set, clients must present a certificate it signed (mutual TLS)',
  },
  {
    name: 'session_ttl',
    type: 'duration',
    default: 3_600_000,
    min: 1000,
    group: SERVING,
    description: 'Lifetime of the image session tokens AuthImage issues',
  },
  {
    name: 'session_key_file',
    type: 'string',
    default: '',
    group: SERVING,
    validate: emptyOrAbsolutePath,
    description:
      'File with at least 32 bytes of secret key for session tokens, shared by replicas; empty: a random key per start (sessions then end with the process)',
  },
  {
    name: 'max_blocks_per_read',
    type: 'int',
    default: 64,
    min: 1,
    max: 1024,
    group: SERVING,
    description: 'Most blocks one ReadBlocks call returns',
  },
  {
    name: 'store',
    type: 'string',
    default: 'file:///var/lib/cfsd',
    group: STORAGE,
    description:
      'Where layer indexes and blocks are kept: file:///absolute/dir, or memory://?max_bytes=N (lost at exit)',
  },
  {
    name: 'block_cache_size_mb',
    type: 'int',
    default: 256,
    min: 0,
    group: STORAGE,
    description: 'In-memory cache of hot blocks in front of the store, in MiB (0 disables)',
  },
  {
    name: 'block_size_kb',
    type: 'int',
    default: 256,
    min: 16,
    max: 2048,
    group: STORAGE,
    description: 'Size of the content blocks new layers are cut into, in KiB (indexed layers keep theirs)',
  },
  {
    name: 'index_concurrency',
    type: 'int',
    default: 4,
    min: 1,
    group: STORAGE,
    description: 'Layers fetched and indexed at the same time',
  },
  {
    name: 'compaction_quiet_period',
    type: 'duration',
    default: 3000,
    min: 0,
    group: STORAGE,
    description:
      'Layers are indexed with raw blocks and compressed in the background once no container start (AuthImage, GetLayerIndex, ReadBlocks) was served for this long',
  },
  {
    name: 'registry_hosts_dir',
    type: 'string',
    default: '',
    group: REGISTRY,
    validate: emptyOrAbsolutePath,
    description:
      'containerd-style hosts directory (<dir>/<host>/hosts.toml) with registry mirrors, e.g. /etc/containerd/certs.d',
  },
  {
    name: 'insecure_registry',
    type: 'list',
    default: [],
    group: REGISTRY,
    description: 'Registries (host or host:port) reached over plain HTTP; repeat or separate with commas',
  },
  {
    name: 'metrics_listen',
    type: 'string',
    default: '127.0.0.1:7071',
    group: MONITORING,
    description: 'host:port of the Prometheus /metrics and /healthz endpoint; empty disables it',
  },
  {
    name: 'log_level',
    type: 'enum',
    choices: LOG_LEVELS,
    default: 'info',
    group: MONITORING,
    description:
      'Logging level, as logrus names them (trace, debug, info, warn or warning, error, fatal, panic)',
  },
  {
    name: 'log_formatter',
    type: 'enum',
    choices: LOG_FORMATS,
    default: 'text',
    group: MONITORING,
    description: 'Log format: logrus-style text or JSON lines',
  },
]);

export const CFSD_COMMAND: CommandSpec<typeof CFSD_FLAGS> = {
  program: 'cfsd',
  version: describeVersion(),
  summary:
    'The Container File System content service: indexes unmodified OCI images on first request and serves their files block by block to gcfsd.',
  flags: CFSD_FLAGS,
};
