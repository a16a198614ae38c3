// A DaemonSet's pod run through CRI the way kubelet runs it: the sandbox (host network,
// privileged when a container is, its PID mode), each container with the manifest's command,
// args, env, host-path mounts with their propagation and its privileges; exec probes and
// preStop hooks through ExecSync (CRI runs no hook itself: kubelet does, before StopContainer).
// Only host paths (moved under a test's directory), host ports (the node's network is shared
// with other tests) and gcfsd's --addr are substituted, so what runs is the manifest.

import { mkdir } from 'node:fs/promises';
import { cri } from '@gcfs/proto';
import type { CriClient, CriExecResult } from '@gcfs/testkit';
import type { IDaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import type { IContainer } from 'kubernetes-models/v1/Container';

export interface Substitutions {
  /** Manifest host path → the test's path; the longest matching prefix wins. */
  paths: ReadonlyArray<readonly [string, string]>;
  /** Manifest host port → the test's (in flags and in the preStop's URL). */
  ports: ReadonlyMap<number, number>;
  /** gcfsd's --addr. */
  cfsdAddress: string;
  /** The image every container runs (the manifests name a placeholder registry). */
  image: string;
  /** What the downward API gives for spec.nodeName. */
  nodeName: string;
  /** Where the containers' CRI logs go. */
  logDirectory: string;
}

const PROPAGATION: Record<string, cri.MountPropagation> = {
  None: cri.MountPropagation.PROPAGATION_PRIVATE,
  HostToContainer: cri.MountPropagation.PROPAGATION_HOST_TO_CONTAINER,
  Bidirectional: cri.MountPropagation.PROPAGATION_BIDIRECTIONAL,
};

/** `text` with every host path of `paths` (at a path boundary) replaced. */
export function substitutePaths(text: string, paths: Substitutions['paths']): string {
  const sorted = [...paths].sort(([a], [b]) => b.length - a.length);
  return text.replace(/\/[^\s=:'",;]*/g, (path) => {
    for (const [from, to] of sorted) {
      if (path === from || path.startsWith(`${from}/`)) return to + path.slice(from.length);
    }
    return path;
  });
}

/** `text` with paths substituted and every `=PORT` or `:PORT` of a mapped port replaced. */
export function substitute(text: string, s: Pick<Substitutions, 'paths' | 'ports'>): string {
  return substitutePaths(text, s.paths).replace(/(?<=[=:])(\d{2,5})(?!\d)/g, (port) =>
    String(s.ports.get(Number(port)) ?? port),
  );
}

function substituteArg(arg: string, s: Substitutions): string {
  return arg.startsWith('--addr=') ? `--addr=${s.cfsdAddress}` : substitute(arg, s);
}

function envOf(c: IContainer, s: Substitutions): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName') env[e.name] = s.nodeName;
    else throw new Error(`env ${e.name}: only values and spec.nodeName are translated`);
  }
  return env;
}

export interface RunningPod {
  podId: string;
  /** Container ids by name. */
  containers: Record<string, string>;
  /** CRI log files by container name. */
  logs: Record<string, string>;
  /** Run a container's preStop hook as kubelet does (ExecSync within the grace period). */
  preStop(name: string): Promise<CriExecResult | undefined>;
  /** Delete the pod as kubelet does: preStop hooks, StopContainer with the grace period, removal. */
  delete(): Promise<Record<string, number>>;
}

export async function runDaemonSetPod(
  client: CriClient,
  ds: IDaemonSet,
  s: Substitutions,
): Promise<RunningPod> {
  const spec = ds.spec?.template.spec;
  if (spec === undefined) throw new Error('the DaemonSet has no pod spec');
  if (spec.hostNetwork !== true) throw new Error('only host-network pods are translated');
  const grace = spec.terminationGracePeriodSeconds ?? 30;
  const volumes = new Map(spec.volumes?.map((v) => [v.name, v]));
  const pod = await client.runPodSandbox({
    name: ds.metadata?.name ?? 'daemonset',
    namespace: ds.metadata?.namespace ?? 'default',
    logDirectory: s.logDirectory,
    privileged: spec.containers.some((c) => c.securityContext?.privileged === true),
    pid: spec.hostPID
      ? cri.NamespaceMode.NODE
      : spec.shareProcessNamespace
        ? cri.NamespaceMode.POD
        : cri.NamespaceMode.CONTAINER,
  });
  const containers: Record<string, string> = {};
  const logFiles: Record<string, string> = {};
  for (const c of spec.containers) {
    const mounts = [];
    for (const m of c.volumeMounts ?? []) {
      const hostPath = volumes.get(m.name)?.hostPath;
      if (hostPath === undefined) throw new Error(`${c.name}: volume ${m.name} is not a hostPath`);
      const path = substitutePaths(hostPath.path, s.paths);
      // kubelet makes a DirectoryOrCreate volume's directory when it is missing.
      if (hostPath.type === 'DirectoryOrCreate') await mkdir(path, { recursive: true });
      mounts.push({
        containerPath: substitutePaths(m.mountPath, s.paths),
        hostPath: path,
        readonly: m.readOnly === true,
        propagation: PROPAGATION[m.mountPropagation ?? 'None'],
      });
    }
    const created = await client.createContainer(pod, {
      name: c.name,
      image: s.image,
      command: c.command ?? [],
      args: (c.args ?? []).map((arg) => substituteArg(arg, s)),
      env: envOf(c, s),
      mounts,
      securityContext: {
        privileged: c.securityContext?.privileged === true,
        capabilities: {
          addCapabilities: c.securityContext?.capabilities?.add ?? [],
          dropCapabilities: c.securityContext?.capabilities?.drop ?? [],
        },
      },
    });
    await client.startContainer(created.id);
    containers[c.name] = created.id;
    logFiles[c.name] = created.logFile;
  }
  const preStop = async (name: string) => {
    const command = spec.containers.find((c) => c.name === name)?.lifecycle?.preStop?.exec?.command;
    const id = containers[name];
    if (command === undefined || id === undefined) return undefined;
    return client.execSync(
      id,
      command.map((part) => substitute(part, s)),
      grace,
    );
  };
  return {
    podId: pod.id,
    containers,
    logs: logFiles,
    preStop,
    async delete() {
      await Promise.all(Object.keys(containers).map((name) => preStop(name)));
      await Promise.all(Object.values(containers).map((id) => client.stopContainer(id, grace)));
      const exitCodes: Record<string, number> = {};
      for (const [name, id] of Object.entries(containers)) {
        exitCodes[name] = (await client.containerStatus(id)).exitCode;
      }
      await client.removePod(pod.id);
      return exitCodes;
    },
  };
}
