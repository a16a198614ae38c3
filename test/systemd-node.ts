// The node side of test/systemd-boot.test.ts: the booted machine's containerd configured as
// docs/operations.md says, a registry on the host that it reaches (described in the hosts
// directory as the docs say), and pods run in it through CRI from the host.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  CriClient,
  type RunningRegistry,
  readCriLog,
  type ShapedNetwork,
  type SystemdMachine,
  startRegistry,
  startShapedNetwork,
} from '@gcfs/testkit';
import { PAUSE_IMAGE, pushTestImage } from './cri-images.js';
import { retried, WORKLOAD, writeRegistryHosts } from './image-node.js';

/** Where the machine's containerd, gcfsd and cfsd read registry hosts (the flag files' --registry_hosts_dir). */
const HOSTS_DIR = '/etc/containerd/certs.d';
const LOGS = '/var/log/pods/gcfs-test';

/**
 * containerd's configuration: docs/operations.md's "containerd configuration" (the gcfs lines,
 * `config_path`) with the node's own settings: its pause image, no negative oom_score_adj.
 */
export function containerdConfig(sandboxImage: string): string {
  return `version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${sandboxImage}"
  restrict_oom_score_adj = true
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "${HOSTS_DIR}"
[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "gcfs"
  disable_snapshot_annotations = false
  discard_unpacked_layers = true
[proxy_plugins.gcfs]
  type = "snapshot"
  address = "/run/containerd-gcfs-grpc/containerd-gcfs-grpc.sock"
`;
}

export interface NodeNetwork {
  network: ShapedNetwork;
  registry: RunningRegistry;
  /** The pause and workload images, by reference. */
  pause: string;
  workload: string;
  stop(): Promise<void>;
}

/**
 * A network namespace for the machine joined to the host by a veth, and a registry on the
 * host's end of it holding the pause image and image-node's WORKLOAD (streamed: above 4 MiB).
 */
export async function nodeNetwork(): Promise<NodeNetwork> {
  const network = await startShapedNetwork();
  let registry: RunningRegistry | undefined;
  const stop = async () => {
    await registry?.stop();
    await network.stop();
  };
  try {
    registry = await startRegistry({ listenHost: network.hostAddress });
    const pause = await pushTestImage(registry.host, 'test/pause', PAUSE_IMAGE);
    const workload = await pushTestImage(registry.host, 'test/workload', WORKLOAD);
    return { network, registry, pause, workload, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The registry over plain HTTP for every reader of HOSTS_DIR, as containerd's hosts.toml. */
export function writeMachineRegistryHosts(machine: SystemdMachine, registryHost: string): Promise<void> {
  return writeRegistryHosts(join(machine.root, HOSTS_DIR), registryHost);
}

/** Kubelet's side of the machine's containerd: CRI over its socket, reached from the host. */
export class MachineCri {
  readonly client: CriClient;
  readonly #proc: string;
  readonly #pods: string[] = [];

  constructor(machine: SystemdMachine) {
    this.#proc = `/proc/${machine.pid}/root`;
    this.client = new CriClient(join(this.#proc, 'run/containerd/containerd.sock'));
  }

  /**
   * A pod with one container of `image` running `script`; retried on UNAVAILABLE as kubelet
   * retries (containerd dials a restarted snapshotter again with a backoff).
   */
  async start(name: string, image: string, script: string) {
    const pod = await retried(`pod ${name}`, () => this.client.runPodSandbox({ name, logDirectory: LOGS }));
    this.#pods.push(pod.id);
    const created = await retried(`container ${name}`, () =>
      this.client.createContainer(pod, { name, image, command: ['/bin/sh', '-c', script] }),
    );
    await this.client.startContainer(created.id);
    return { podId: pod.id, id: created.id, logFile: join(this.#proc, created.logFile) };
  }

  /** A container run to its end: its output lines. */
  async run(name: string, image: string, script: string): Promise<string[]> {
    const { id, logFile } = await this.start(name, image, script);
    const exited = await this.client.waitForExit(id);
    const lines = await readCriLog(logFile);
    assert.equal(exited.exitCode, 0, lines.join('\n'));
    return lines;
  }

  async cat(id: string, path: string): Promise<string> {
    const result = await this.client.execSync(id, ['/bin/cat', path], 30);
    assert.equal(result.exitCode, 0, result.stderr);
    return result.stdout;
  }

  /** Remove the pods (as a drain does) and close the client. */
  async drain(): Promise<void> {
    try {
      for (const id of this.#pods.splice(0)) await this.client.removePod(id);
    } finally {
      this.client.close();
    }
  }
}
