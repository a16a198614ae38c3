import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatHelp, parseFlags } from '@gcfs/cli';
import { GCFSD_COMMAND, GCFSD_FLAGS, layerCacheDir } from '../src/flags.js';

// MISSION.md's flag list, written out by hand: the table must match it exactly.
const MISSION_DEFAULTS = {
  add_pull_secret: '',
  addr: '',
  async_read: true,
  auth_refresh_period: 30 * 60_000,
  authimage_max_attempts: 3,
  authimage_retry_interval: 1_000,
  client_name: '',
  client_uid: '',
  client_version: '0.0',
  downloader: false,
  downloader_uds_path: '/run/gcfsd/downloader.sock',
  enable_prefetching: true,
  enable_pull_secret_keychain: false,
  event_reporter_type: 'k8s',
  fail_on_max_read_blocks: false,
  flatten_images: false,
  fuse_debug: false,
  gc_period: 3 * 60_000,
  ignore_fuse_intr_on_rpc: true,
  images_in_use_db_path: '',
  layer_cache_dir: '',
  log_formatter: 'text',
  log_level: 'info',
  max_content_cache_size_mb: 1024,
  max_large_files_cache_size_mb: 0,
  max_layer_downloads: 3,
  max_read_ahead: 1048576,
  max_read_blocks: 2,
  metrics_flavor: 'gke',
  port: 11253,
  mount_point: '/run/gcfsd/mnt',
  test_pull_secret: '',
  try_direct_path: true,
};

// Flags this project adds: for the snapshotter, the keychain's sockets and expiry, the
// downloader's registry access, metrics and pacing, and where events go.
const OUR_DEFAULTS = {
  keychain_uds_path: '/run/gcfsd/keychain.sock',
  containerd_address: '/run/containerd/containerd.sock',
  keychain_credential_ttl: 24 * 60 * 60_000,
  download_quiet_period: 2000,
  min_streamed_image_size_mb: 4,
  snapshotter_uds_path: '/run/containerd-gcfs-grpc/containerd-gcfs-grpc.sock',
  snapshotter_root: '/var/lib/containerd/io.containerd.snapshotter.v1.gcfs/snapshotter',
  registry_hosts_dir: '',
  insecure_registry: [],
  downloader_metrics_port: 0,
  downloader_niceness: 10,
  kubeconfig: '',
};

// GKE gcfsd's own `--help` (the seed): `-name=default` exactly as it prints them.
const SEED_HELP_DEFAULTS = [
  '-add_pull_secret=""',
  '-addr=""',
  '-async_read=true',
  '-auth_refresh_period=30m0s',
  '-authimage_max_attempts=3',
  '-authimage_retry_interval=1s',
  '-client_name=""',
  '-client_uid=""',
  '-client_version="0.0"',
  '-downloader=false',
  '-downloader_uds_path="/run/gcfsd/downloader.sock"',
  '-enable_prefetching=true',
  '-enable_pull_secret_keychain=false',
  '-event_reporter_type="k8s"',
  '-fail_on_max_read_blocks=false',
  '-flatten_images=false',
  '-fuse_debug=false',
  '-gc_period=3m0s',
  '-ignore_fuse_intr_on_rpc=true',
  '-images_in_use_db_path=""',
  '-layer_cache_dir=""',
  '-log_formatter="text"',
  '-log_level="info"',
  '-max_content_cache_size_mb=1024',
  '-max_large_files_cache_size_mb=0',
  '-max_layer_downloads=3',
  '-max_read_ahead=1048576',
  '-max_read_blocks=2',
  '-metrics_flavor="gke"',
  '-mount_point="/run/gcfsd/mnt"',
  '-port=11253',
  '-test_pull_secret=""',
  '-try_direct_path=true',
];

describe('gcfsd flag table', () => {
  it('has exactly the flags of MISSION.md plus ours, with the same defaults', () => {
    const result = parseFlags(GCFSD_FLAGS, []);
    assert.equal(result.action, 'run');
    assert.deepEqual(result.values, { ...MISSION_DEFAULTS, ...OUR_DEFAULTS });
  });

  it("marks only our own flags as extensions, and GKE's flags without effect here as compatibility-only", () => {
    const extensions = GCFSD_FLAGS.filter((f) => 'extension' in f && f.extension).map((f) => f.name);
    assert.deepEqual(extensions.sort(), Object.keys(OUR_DEFAULTS).sort());
    const compatibility = GCFSD_FLAGS.filter((f) => 'compatibility' in f && f.compatibility).map(
      (f) => f.name,
    );
    assert.deepEqual(compatibility.sort(), [
      'ignore_fuse_intr_on_rpc',
      'max_large_files_cache_size_mb',
      'metrics_flavor',
      'try_direct_path',
    ]);
  });

  it('prints every default in --help exactly as GKE gcfsd does', () => {
    const help = formatHelp(GCFSD_COMMAND);
    for (const seed of SEED_HELP_DEFAULTS) assert.ok(help.includes(`\n  ${seed} (`), `--help lacks ${seed}`);
  });

  it("parses GKE's node init command lines", () => {
    const server = parseFlags(GCFSD_FLAGS, [
      '--mount_point=/run/gcfsd/mnt',
      '--max_content_cache_size_mb=36',
      '--max_large_files_cache_size_mb=36',
      '--layer_cache_dir=/var/lib/containerd/io.containerd.snapshotter.v1.gcfs/snapshotter/layers',
      '--images_in_use_db_path=/var/lib/containerd/io.containerd.snapshotter.v1.gcfs/gcfsd/images_in_use.db',
      '--enable_pull_secret_keychain',
    ]);
    assert.equal(server.action, 'run');
    assert.equal(server.values.max_content_cache_size_mb, 36);
    assert.equal(server.values.enable_pull_secret_keychain, true);
    assert.equal(
      server.values.layer_cache_dir,
      '/var/lib/containerd/io.containerd.snapshotter.v1.gcfs/snapshotter/layers',
    );
    assert.deepEqual(
      server.compatibility.map((c) => c.flag),
      ['max_large_files_cache_size_mb'],
    );

    const downloader = parseFlags(GCFSD_FLAGS, ['-downloader', '-downloader_uds_path', '/tmp/d.sock']);
    assert.equal(downloader.action, 'run');
    assert.equal(downloader.values.downloader, true);
    assert.equal(downloader.values.downloader_uds_path, '/tmp/d.sock');
    // The downloader's line names no cache dir: its default must be the one the server is given.
    assert.equal(layerCacheDir(downloader.values), server.values.layer_cache_dir);
    // Nor does the server's name the snapshotter's socket: its default is containerd's
    // proxy_plugins address in GKE's config.toml (the seed).
    assert.equal(server.values.snapshotter_uds_path, '/run/containerd-gcfs-grpc/containerd-gcfs-grpc.sock');
  });

  it('rejects relative paths and out-of-range numbers', () => {
    assert.throws(
      () => parseFlags(GCFSD_FLAGS, ['--layer_cache_dir=layers']),
      /--layer_cache_dir: "layers" must be/,
    );
    assert.throws(() => parseFlags(GCFSD_FLAGS, ['--port=70000']), /--port: "70000" must be at most 65535/);
    assert.throws(() => parseFlags(GCFSD_FLAGS, ['--max_layer_downloads=0']), /--max_layer_downloads/);
  });
});
