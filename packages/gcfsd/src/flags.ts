// Every flag of gcfsd: the names, defaults and meanings of GKE's gcfsd (see MISSION.md),
// so that its node init scripts run unchanged, plus the few this project adds (extension).
// The parser, `--help` and docs/configuration.md are all generated from this table.

import { join } from 'node:path';
import { absolutePath, type CommandSpec, defineFlags, emptyOrAbsolutePath, type FlagValues } from '@gcfs/cli';
import { describeVersion, LOG_FORMATS, LOG_LEVELS } from '@gcfs/core';

const FUSE = 'FUSE server';
const BACKEND = 'Content service backend';
const DOWNLOADER = 'Layer downloader';
const SNAPSHOTTER = 'Snapshotter';
const CREDENTIALS = 'Credentials';
const MONITORING = 'Monitoring and logging';

export const GCFSD_FLAGS = defineFlags([
  // FUSE server
  {
    name: 'mount_point',
    type: 'string',
    default: '/run/gcfsd/mnt',
    group: FUSE,
    validate: emptyOrAbsolutePath,
    description: 'Mount point of the Container File System FUSE filesystem',
  },
  {
    name: 'async_read',
    type: 'bool',
    default: true,
    group: FUSE,
    description: 'FUSE async-read mount option',
  },
  {
    name: 'max_read_ahead',
    type: 'int',
    default: 1048576,
    group: FUSE,
    description:
      "FUSE max read-ahead size mount option, in bytes (effective only for a positive flag value: 0 or less keeps the kernel's default)",
  },
  {
    name: 'fuse_debug',
    type: 'bool',
    default: false,
    group: FUSE,
    description: 'Enable verbose FUSE debugging',
  },
  {
    name: 'ignore_fuse_intr_on_rpc',
    type: 'bool',
    default: true,
    group: FUSE,
    compatibility:
      "gcfs never cancels a read on a FUSE interrupt (libfuse's intr mount option is off), which is what the default true asks for",
    description: 'Switch to ignore FUSE interrupts on RPCs',
  },
  {
    name: 'max_read_blocks',
    type: 'int',
    default: 2,
    min: 1,
    group: FUSE,
    description: 'Maximum number of backend blocks to read with a file content read request',
  },
  {
    name: 'fail_on_max_read_blocks',
    type: 'bool',
    default: false,
    group: FUSE,
    description: 'Switch to fail a read request that needs more blocks than max_read_blocks',
  },
  {
    name: 'max_content_cache_size_mb',
    type: 'int',
    default: 1024,
    min: 0,
    group: FUSE,
    description: 'Maximally allowed size (in MiB) of the in-memory content cache',
  },
  {
    name: 'max_large_files_cache_size_mb',
    type: 'int',
    default: 0,
    min: 0,
    group: FUSE,
    compatibility:
      'deprecated by GKE too: --max_content_cache_size_mb sizes the one in-memory content cache, large files included',
    description: 'Maximally allowed size (in MiB) of the former in-memory cache for large files',
  },
  {
    name: 'flatten_images',
    type: 'bool',
    default: false,
    group: FUSE,
    description: 'Switch to control whether to create/add a flattened dir for every image',
  },
  {
    name: 'enable_prefetching',
    type: 'bool',
    default: true,
    group: FUSE,
    description: 'Switch for the image content prefetching feature',
  },
  {
    name: 'gc_period',
    type: 'duration',
    default: 180_000,
    min: 0,
    group: FUSE,
    description: 'Garbage collection period for deleted layers/images (snapshot cleanup, 0 means disabled)',
  },
  {
    name: 'images_in_use_db_path',
    type: 'string',
    default: '',
    group: FUSE,
    validate: emptyOrAbsolutePath,
    description: 'Path of DB to persist names of images in use',
  },
  // Content service backend
  {
    name: 'addr',
    type: 'string',
    default: '',
    group: BACKEND,
    description:
      'Container File System (cfsd) gRPC endpoint address, e.g. `dns:///cfsd.example:443`; if empty (there is no regional default outside Google), nothing is streamed: gcfsd still serves the snapshotter, the keychain and the mount, and every image is pulled normally (fallback reason ERR_NO_BACKEND, once per image)',
  },
  {
    name: 'try_direct_path',
    type: 'bool',
    default: true,
    group: BACKEND,
    compatibility: "DirectPath is a network path to Google's own services; gcfsd dials --addr as given",
    description: 'Switch to decide whether to try a direct network path to the backend first, then fall back',
  },
  {
    name: 'authimage_max_attempts',
    type: 'int',
    default: 3,
    min: 1,
    group: BACKEND,
    description: 'Maximum number of AuthImage attempts on retryable failures',
  },
  {
    name: 'authimage_retry_interval',
    type: 'duration',
    default: 1_000,
    min: 0,
    group: BACKEND,
    description: 'Interval between AuthImage retries',
  },
  {
    name: 'auth_refresh_period',
    type: 'duration',
    default: 1_800_000,
    min: 0,
    group: BACKEND,
    description: 'Period to refresh image/layer authentication',
  },
  // Layer downloader
  {
    name: 'downloader',
    type: 'bool',
    default: false,
    group: DOWNLOADER,
    description: 'If true, starts the async layer downloader only, not the FUSE server',
  },
  {
    name: 'downloader_uds_path',
    type: 'string',
    default: '/run/gcfsd/downloader.sock',
    group: DOWNLOADER,
    validate: emptyOrAbsolutePath,
    description: '(Downloader only) Unix domain socket path for the downloader server/client communication',
  },
  {
    name: 'layer_cache_dir',
    type: 'string',
    default: '',
    group: DOWNLOADER,
    validate: emptyOrAbsolutePath,
    description: 'Directory path where downloaded/untarred layers are stored',
  },
  {
    name: 'download_quiet_period',
    type: 'duration',
    default: 2_000,
    min: 0,
    group: DOWNLOADER,
    extension: true,
    description:
      'Start the background downloads of a newly streamed image once its on-demand reads have paused this long (at most 30s after registration), so that they do not compete with the starting container for the link; 0 starts them at once',
  },
  {
    name: 'max_layer_downloads',
    type: 'int',
    default: 3,
    min: 1,
    group: DOWNLOADER,
    description: 'Maximum number of concurrent downloads for layer caching',
  },
  {
    name: 'registry_hosts_dir',
    type: 'string',
    default: '',
    group: DOWNLOADER,
    extension: true,
    validate: emptyOrAbsolutePath,
    description:
      '(Downloader only) containerd-style hosts directory (<dir>/<host>/hosts.toml) with registry mirrors, e.g. /etc/containerd/certs.d',
  },
  {
    name: 'insecure_registry',
    type: 'list',
    default: [],
    group: DOWNLOADER,
    extension: true,
    description:
      '(Downloader only) Registries (host or host:port) reached over plain HTTP; repeat or separate with commas',
  },
  {
    name: 'downloader_metrics_port',
    type: 'int',
    default: 0,
    min: 0,
    max: 65535,
    group: DOWNLOADER,
    extension: true,
    description:
      "(Downloader only) Port of the downloader's Prometheus /metrics endpoint (--port belongs to the FUSE server); 0 disables it",
  },
  {
    name: 'downloader_niceness',
    type: 'int',
    default: 10,
    min: 0,
    max: 19,
    group: DOWNLOADER,
    extension: true,
    description:
      "(Downloader only) Scheduling niceness of the downloader's threads: background downloads and untars yield the CPU to starting containers (and to cfsd on a shared machine); 0 keeps the default priority",
  },
  // Snapshotter (containerd proxy plugin): gcfsd's own socket is not a flag upstream.
  {
    name: 'snapshotter_uds_path',
    type: 'string',
    default: '/run/containerd-gcfs-grpc/containerd-gcfs-grpc.sock',
    group: SNAPSHOTTER,
    extension: true,
    validate: emptyOrAbsolutePath,
    description:
      "Unix domain socket of the containerd snapshotter service (containerd's proxy_plugins address)",
  },
  {
    name: 'snapshotter_root',
    type: 'string',
    default: '/var/lib/containerd/io.containerd.snapshotter.v1.gcfs/snapshotter',
    group: SNAPSHOTTER,
    extension: true,
    validate: emptyOrAbsolutePath,
    description: 'Directory where the snapshotter keeps its metadata and snapshot directories',
  },
  {
    name: 'min_streamed_image_size_mb',
    type: 'int',
    default: 4,
    min: 0,
    group: SNAPSHOTTER,
    extension: true,
    description:
      'Images whose layers add up to fewer compressed MiB are pulled normally (the pause image, busybox): a full pull of them is as fast as streaming (docs/benchmarks); gcfsd reads the size from the image manifest in the registry before asking cfsd; the fallback reason is ERR_IMAGE_TOO_SMALL. 0 streams every image',
  },
  // Credentials
  {
    name: 'add_pull_secret',
    type: 'string',
    default: '',
    group: CREDENTIALS,
    sensitive: true,
    description:
      'Pull secret in one of accepted formats: `<image>,[file:]oauth2accesstoken:*`, `<image>,[file:]_json_key:*`, `<image>,[file:]_json_key_base64:*`',
  },
  {
    name: 'enable_pull_secret_keychain',
    type: 'bool',
    default: false,
    group: CREDENTIALS,
    description:
      'Enable the pull secret keychain, needed for Kubernetes image pull secrets: gcfsd serves --keychain_uds_path, which kubelet uses as its --image-service-endpoint, and streams each private image with the pull secret of the pod that pulled it (docs/operations.md)',
  },
  {
    name: 'keychain_uds_path',
    type: 'string',
    default: '/run/gcfsd/keychain.sock',
    group: CREDENTIALS,
    extension: true,
    validate: absolutePath,
    description:
      "Unix domain socket of the keychain (with --enable_pull_secret_keychain): the UpdateCreds API and CRI's ImageService, proxied to --containerd_address",
  },
  {
    name: 'containerd_address',
    type: 'string',
    default: '/run/containerd/containerd.sock',
    group: CREDENTIALS,
    extension: true,
    validate: absolutePath,
    description: "containerd's socket, whose CRI ImageService the keychain socket proxies",
  },
  {
    name: 'keychain_credential_ttl',
    type: 'duration',
    default: 86_400_000,
    min: 1_000,
    group: CREDENTIALS,
    extension: true,
    description:
      "How long the keychain keeps a repository's pull secret after its last pull (a later pull renews it); an image already streaming keeps the secret it was registered with",
  },
  {
    name: 'test_pull_secret',
    type: 'string',
    default: '',
    group: CREDENTIALS,
    sensitive: true,
    description: '`{username}:{password}` image pull secret for manual testing purpose only',
  },
  // Monitoring and logging
  {
    name: 'client_name',
    type: 'string',
    default: '',
    group: MONITORING,
    description: 'Free form client name used for monitoring',
  },
  {
    name: 'client_uid',
    type: 'string',
    default: '',
    group: MONITORING,
    description: 'Unique client identifier; if empty, the machine id (/etc/machine-id) is used',
  },
  {
    name: 'client_version',
    type: 'string',
    default: '0.0',
    group: MONITORING,
    description: 'Free form client version used for monitoring',
  },
  {
    name: 'kubeconfig',
    type: 'string',
    default: '',
    group: MONITORING,
    extension: true,
    validate: emptyOrAbsolutePath,
    description:
      "kubeconfig whose current context gcfsd posts its Kubernetes events with (token, tokenFile or client certificate; no exec plugin), e.g. a ServiceAccount's; a bad one stops gcfsd at start. Empty: the in-cluster service account if there is one, else the kubelet's kubeconfig (/etc/kubernetes/kubelet.conf or /var/lib/kubelet/kubeconfig) if one exists, else events are only logged",
  },
  {
    name: 'event_reporter_type',
    type: 'enum',
    choices: ['none', 'k8s'],
    default: 'k8s',
    group: MONITORING,
    description: 'Event reporter type (Kubernetes Events about image streaming): none|k8s',
  },
  {
    name: 'metrics_flavor',
    type: 'string',
    default: 'gke',
    group: MONITORING,
    compatibility: 'gcfsd serves one set of Prometheus metrics on --port, whatever the flavor',
    description: 'Flavor of the metrics',
  },
  {
    name: 'port',
    type: 'int',
    default: 11253,
    min: 0,
    max: 65535,
    group: MONITORING,
    description: 'The port that gcfsd will listen to for Prometheus metrics',
  },
  {
    name: 'log_formatter',
    type: 'enum',
    choices: LOG_FORMATS,
    default: 'text',
    group: MONITORING,
    description: 'logrus log formatter (text, json)',
  },
  {
    name: 'log_level',
    type: 'enum',
    choices: LOG_LEVELS,
    default: 'info',
    group: MONITORING,
    description: 'logrus logging level (trace, debug, info, warn or warning, error, fatal, panic)',
  },
]);

export type GcfsdConfig = FlagValues<typeof GCFSD_FLAGS>;

/**
 * Where downloaded layers live: --layer_cache_dir, or when empty the `layers` dir of the
 * snapshotter root, as GKE's gcfsd does. Both processes must agree on it.
 */
export function layerCacheDir(config: Pick<GcfsdConfig, 'layer_cache_dir' | 'snapshotter_root'>): string {
  return config.layer_cache_dir || join(config.snapshotter_root, 'layers');
}

export const GCFSD_COMMAND: CommandSpec<typeof GCFSD_FLAGS> = {
  program: 'gcfsd',
  version: describeVersion(),
  summary:
    'The node daemon of gcfs image streaming: FUSE server and containerd snapshotter, or with --downloader the async layer downloader.',
  flags: GCFSD_FLAGS,
};
