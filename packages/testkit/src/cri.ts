import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, GcfsError } from '@gcfs/core';
import { cri } from '@gcfs/proto';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';

const DEFAULT_DEADLINE_MS = 30_000;
const PULL_DEADLINE_MS = 120_000;

type Unary<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: { deadline: number },
  callback: (err: ServiceError | null, response: Res) => void,
) => unknown;

export interface PodOptions {
  /** Pod name; a random uid makes each sandbox distinct. */
  name: string;
  namespace?: string;
  /** Directory for the containers' CRI log files (created by containerd). */
  logDirectory: string;
  /** A pod with a privileged container must be privileged itself (kubelet does the same). */
  privileged?: boolean;
  /** The pod's PID namespace: POD (default, shared by its containers) or CONTAINER (kubelet's default). */
  pid?: cri.NamespaceMode;
}

export interface ContainerOptions {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: Record<string, string>;
  /** Relative to the pod's log directory; default `<name>.log`. */
  logPath?: string;
  /** Host paths bound into the container, with their propagation. */
  mounts?: Array<Partial<cri.Mount>>;
  /** Privileges and capabilities; namespaces follow the pod's (host network, its PID mode). */
  securityContext?: Pick<Partial<cri.LinuxContainerSecurityContext>, 'privileged' | 'capabilities'>;
}

export interface CriExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** What CreateContainer needs to know of its pod. */
export interface Pod {
  id: string;
  config: cri.PodSandboxConfig;
}

export interface CreatedContainer {
  id: string;
  /** Absolute path of its CRI log file. */
  logFile: string;
}

/**
 * A CRI runtime.v1 client over containerd's unix socket that calls what kubelet calls, the way
 * it does: host-network pods (NODE namespaces, empty hostname), containers logging to the pod's
 * log directory. Every call has a deadline.
 */
export class CriClient {
  readonly #runtime: cri.RuntimeServiceClient;
  readonly #images: cri.ImageServiceClient;
  readonly #deadlineMs: number;

  constructor(socketPath: string, options: { deadlineMs?: number } = {}) {
    const target = `unix://${socketPath}`;
    this.#runtime = new cri.RuntimeServiceClient(target, credentials.createInsecure());
    this.#images = new cri.ImageServiceClient(target, credentials.createInsecure());
    this.#deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
  }

  close(): void {
    this.#runtime.close();
    this.#images.close();
  }

  version(): Promise<cri.VersionResponse> {
    return this.#call('Version', this.#runtime.version.bind(this.#runtime), { version: 'v1' });
  }

  /**
   * Pull as kubelet does, with the pod's pull secret as `auth` when it has one; returns the
   * image ref (the image id, a config digest).
   */
  async pullImage(
    image: string,
    deadlineMs = PULL_DEADLINE_MS,
    auth?: Partial<cri.AuthConfig>,
  ): Promise<string> {
    const request = cri.PullImageRequest.fromPartial({ image: { image }, auth });
    return (await this.#call('PullImage', this.#images.pullImage.bind(this.#images), request, deadlineMs))
      .imageRef;
  }

  async imageStatus(image: string): Promise<cri.Image | undefined> {
    const request = cri.ImageStatusRequest.fromPartial({ image: { image } });
    return (await this.#call('ImageStatus', this.#images.imageStatus.bind(this.#images), request)).image;
  }

  async listImages(): Promise<cri.Image[]> {
    return (await this.#call('ListImages', this.#images.listImages.bind(this.#images), { filter: undefined }))
      .images;
  }

  imageFsInfo(): Promise<cri.ImageFsInfoResponse> {
    return this.#call('ImageFsInfo', this.#images.imageFsInfo.bind(this.#images), {});
  }

  async removeImage(image: string): Promise<void> {
    await this.#call(
      'RemoveImage',
      this.#images.removeImage.bind(this.#images),
      cri.RemoveImageRequest.fromPartial({ image: { image } }),
    );
  }

  async runPodSandbox(options: PodOptions): Promise<Pod> {
    const config = cri.PodSandboxConfig.fromPartial({
      metadata: { name: options.name, uid: randomUUID(), namespace: options.namespace ?? 'default' },
      // A host-network pod shares the host's UTS namespace: containerd refuses a hostname.
      hostname: '',
      logDirectory: options.logDirectory,
      linux: {
        securityContext: {
          namespaceOptions: { network: cri.NamespaceMode.NODE, pid: options.pid ?? cri.NamespaceMode.POD },
          privileged: options.privileged ?? false,
        },
      },
    });
    const response = await this.#call('RunPodSandbox', this.#runtime.runPodSandbox.bind(this.#runtime), {
      config,
      runtimeHandler: '',
    });
    return { id: response.podSandboxId, config };
  }

  async createContainer(pod: Pod, options: ContainerOptions): Promise<CreatedContainer> {
    const logPath = options.logPath ?? `${options.name}.log`;
    const config = cri.ContainerConfig.fromPartial({
      metadata: { name: options.name },
      image: { image: options.image },
      command: options.command ?? [],
      args: options.args ?? [],
      envs: Object.entries(options.env ?? {}).map(([key, value]) => ({ key, value })),
      mounts: options.mounts ?? [],
      logPath,
      linux: options.securityContext && {
        securityContext: {
          ...options.securityContext,
          namespaceOptions: pod.config.linux?.securityContext?.namespaceOptions,
        },
      },
    });
    const response = await this.#call('CreateContainer', this.#runtime.createContainer.bind(this.#runtime), {
      podSandboxId: pod.id,
      config,
      sandboxConfig: pod.config,
    });
    return { id: response.containerId, logFile: join(pod.config.logDirectory, logPath) };
  }

  async startContainer(id: string): Promise<void> {
    await this.#call('StartContainer', this.#runtime.startContainer.bind(this.#runtime), { containerId: id });
  }

  async containerStatus(id: string): Promise<cri.ContainerStatus> {
    const response = await this.#call('ContainerStatus', this.#runtime.containerStatus.bind(this.#runtime), {
      containerId: id,
      verbose: false,
    });
    if (!response.status) throw new GcfsError(ErrorCode.Internal, `CRI ContainerStatus ${id}: no status`);
    return response.status;
  }

  /** Poll ContainerStatus until the container has exited; its status then (exitCode, reason). */
  async waitForExit(id: string, timeoutMs = 60_000): Promise<cri.ContainerStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.containerStatus(id);
      if (status.state === cri.ContainerState.CONTAINER_EXITED) return status;
      if (Date.now() > deadline)
        throw new GcfsError(
          ErrorCode.Internal,
          `container ${id} still ${cri.ContainerState[status.state]} after ${timeoutMs} ms`,
        );
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /**
   * Run `cmd` in a running container, as kubelet runs exec probes and preStop hooks; its
   * exit code and output. `timeoutSeconds` 0: no timeout.
   */
  async execSync(id: string, cmd: string[], timeoutSeconds = 0): Promise<CriExecResult> {
    const response = await this.#call(
      'ExecSync',
      this.#runtime.execSync.bind(this.#runtime),
      { containerId: id, cmd, timeout: timeoutSeconds },
      timeoutSeconds > 0 ? timeoutSeconds * 1000 + DEFAULT_DEADLINE_MS : DEFAULT_DEADLINE_MS * 4,
    );
    return {
      exitCode: response.exitCode,
      stdout: Buffer.from(response.stdout).toString(),
      stderr: Buffer.from(response.stderr).toString(),
    };
  }

  /** Stop with a grace period in seconds (0: SIGKILL at once). */
  async stopContainer(id: string, timeoutSeconds = 0): Promise<void> {
    await this.#call(
      'StopContainer',
      this.#runtime.stopContainer.bind(this.#runtime),
      { containerId: id, timeout: timeoutSeconds },
      // The call lasts as long as the container takes to stop, up to the grace period.
      timeoutSeconds * 1000 + this.#deadlineMs,
    );
  }

  async removeContainer(id: string): Promise<void> {
    await this.#call('RemoveContainer', this.#runtime.removeContainer.bind(this.#runtime), {
      containerId: id,
    });
  }

  async stopPodSandbox(id: string): Promise<void> {
    await this.#call('StopPodSandbox', this.#runtime.stopPodSandbox.bind(this.#runtime), {
      podSandboxId: id,
    });
  }

  /** Removes its containers too. */
  async removePodSandbox(id: string): Promise<void> {
    await this.#call('RemovePodSandbox', this.#runtime.removePodSandbox.bind(this.#runtime), {
      podSandboxId: id,
    });
  }

  /** Stop and remove a pod with all its containers, as kubelet does when a pod goes. */
  async removePod(id: string): Promise<void> {
    await this.stopPodSandbox(id);
    await this.removePodSandbox(id);
  }

  #call<Req, Res>(
    name: string,
    method: Unary<Req, Res>,
    request: Req,
    deadlineMs = this.#deadlineMs,
  ): Promise<Res> {
    return new Promise((resolve, reject) => {
      method(request, new Metadata(), { deadline: Date.now() + deadlineMs }, (err, response) => {
        if (err)
          reject(
            new GcfsError(ErrorCode.Internal, `CRI ${name}: ${err.details || err.message}`, {
              cause: err,
              details: { grpcCode: err.code },
            }),
          );
        else resolve(response);
      });
    });
  }
}

/**
 * The messages of a CRI log file (`<RFC3339Nano> <stream> <P|F> <message>` per line), with
 * partial lines (P) joined to the line that completes them.
 */
export async function readCriLog(path: string): Promise<string[]> {
  const lines: string[] = [];
  let partial = '';
  for (const line of (await readFile(path, 'utf8')).split('\n')) {
    const match = /^\S+ (?:stdout|stderr) ([PF]) ?(.*)$/.exec(line);
    if (!match) continue;
    partial += match[2];
    if (match[1] === 'F') {
      lines.push(partial);
      partial = '';
    }
  }
  if (partial !== '') lines.push(partial);
  return lines;
}
