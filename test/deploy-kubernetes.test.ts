// deploy/kubernetes and deploy/containerd, checked without a cluster: every object against
// Kubernetes' API schemas, the flags against gcfsd's and cfsd's own flag tables, and the
// properties the node depends on (test/image-node.test.ts runs the DaemonSet for real).

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { CFSD_COMMAND } from '@gcfs/cfsd';
import { parseFlags } from '@gcfs/cli';
import { GCFSD_COMMAND } from '@gcfs/gcfsd';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import type { IService } from 'kubernetes-models/v1/Service';
import { parse as parseToml } from 'smol-toml';
import {
  CONTAINERD_DROP_IN,
  cfsdDeployment,
  container,
  findObject,
  flagValue,
  gcfsdDaemonSet,
  loadManifests,
  type ManifestObject,
  ROOT,
  validateObject,
} from './deploy-manifests.js';

const flagsOf = <T extends Parameters<typeof parseFlags>[0]>(flags: T, args: readonly string[] = []) => {
  const result = parseFlags(flags, args);
  assert.equal(result.action, 'run');
  return (result as { values: Record<string, unknown> }).values;
};

test('every document under deploy/kubernetes validates against the Kubernetes API schemas', async () => {
  const manifests = await loadManifests();
  const kinds = manifests.map((m) => `${m.object.kind}/${m.object.metadata.name}`).sort();
  assert.deepEqual(kinds, [
    'ClusterRole/gcfs:event-reporter',
    'DaemonSet/gcfsd',
    'Deployment/cfsd',
    'Namespace/gcfs-system',
    'PodDisruptionBudget/cfsd',
    'RoleBinding/gcfs:gcfsd-events',
    'Service/cfsd',
    'ServiceAccount/cfsd',
    'ServiceAccount/gcfsd',
  ]);
  for (const { file, object } of manifests) {
    await assert.doesNotReject(validateObject(object), `${file}: ${object.kind} ${object.metadata.name}`);
  }
  // The validation is real: a wrong type or a missing required field is refused.
  type Pod = { spec: { template: { spec: { containers: Array<Record<string, unknown>> } } } };
  const broken = structuredClone(gcfsdDaemonSet(manifests)) as unknown as Pod & ManifestObject;
  const first = broken.spec.template.spec.containers[0]!;
  first.securityContext = { privileged: 'yes' };
  await assert.rejects(validateObject(broken), /privileged must be boolean/);
  first.securityContext = {};
  delete first.name;
  await assert.rejects(validateObject(broken), /containers\/0 must have required property name/);
});

test('the gcfsd DaemonSet: privileged, Bidirectional mount point, GKE command lines, probes on the metrics port', async () => {
  const manifests = await loadManifests();
  const ds = gcfsdDaemonSet(manifests);
  const pod = ds.spec!.template;
  assert.deepEqual(
    pod.spec?.containers.map((c) => c.name),
    ['gcfsd', 'downloader'],
  );
  const gcfsd = container(pod, 'gcfsd');
  const downloader = container(pod, 'downloader');
  assert.equal(gcfsd.securityContext?.privileged, true);
  assert.equal(pod.spec?.hostNetwork, true);
  assert.deepEqual(ds.spec?.updateStrategy?.rollingUpdate, { maxUnavailable: 1, maxSurge: 0 });

  // gcfsd's command line is GKE's (the seed's ps line) plus what a cluster without Google needs.
  const gcfsdFlags = flagsOf(GCFSD_COMMAND.flags, gcfsd.args);
  assert.deepEqual(gcfsd.command, ['gcfsd']);
  assert.equal(gcfsdFlags.downloader, false);
  assert.equal(gcfsdFlags.mount_point, '/run/gcfsd/mnt');
  assert.equal(gcfsdFlags.max_content_cache_size_mb, 36);
  assert.equal(
    gcfsdFlags.layer_cache_dir,
    '/var/lib/containerd/io.containerd.snapshotter.v1.gcfs/snapshotter/layers',
  );
  assert.equal(
    gcfsdFlags.images_in_use_db_path,
    '/var/lib/containerd/io.containerd.snapshotter.v1.gcfs/gcfsd/images_in_use.db',
  );
  assert.equal(gcfsdFlags.enable_pull_secret_keychain, true);
  const downloaderFlags = flagsOf(GCFSD_COMMAND.flags, downloader.args);
  assert.deepEqual(downloader.command, ['gcfsd']);
  assert.equal(downloaderFlags.downloader, true);
  assert.equal(downloaderFlags.downloader_uds_path, gcfsdFlags.downloader_uds_path);
  assert.equal(downloaderFlags.downloader_uds_path, '/run/gcfsd/downloader.sock');
  assert.equal(downloaderFlags.layer_cache_dir, gcfsdFlags.layer_cache_dir);

  // The mount point's directory reaches the host (Bidirectional); the downloader only follows.
  const mountOf = (c: typeof gcfsd, path: string) => c.volumeMounts?.find((m) => m.mountPath === path);
  assert.equal(mountOf(gcfsd, '/run/gcfsd')?.mountPropagation, 'Bidirectional');
  assert.equal(mountOf(downloader, '/run/gcfsd')?.mountPropagation, 'HostToContainer');
  assert.equal((gcfsdFlags.mount_point as string).startsWith('/run/gcfsd/'), true);

  // Probes: liveness /healthz and readiness /readyz on --port; the downloader's on its port.
  assert.equal(gcfsdFlags.port, 11253);
  assert.deepEqual(gcfsd.livenessProbe?.httpGet, { path: '/healthz', port: 11253 });
  assert.deepEqual(gcfsd.readinessProbe?.httpGet, { path: '/readyz', port: 11253 });
  assert.deepEqual(gcfsd.startupProbe?.httpGet, { path: '/healthz', port: 11253 });
  assert.equal(downloaderFlags.downloader_metrics_port, 11254);
  assert.deepEqual(downloader.livenessProbe?.httpGet, { path: '/healthz', port: 11254 });
  // The preStop reads the same port, and leaves time for gcfsd's unmount in the grace period.
  const preStop = gcfsd.lifecycle?.preStop?.exec?.command ?? [];
  assert.equal(preStop[0], 'node');
  assert.match(preStop.at(-1) ?? '', /http:\/\/127\.0\.0\.1:11253\/metrics/);
  assert.match(preStop.at(-1) ?? '', /gcfsd_layer_downloads_in_flight/);
  assert.ok((pod.spec?.terminationGracePeriodSeconds ?? 30) >= 20 + 30);

  assert.ok(gcfsd.resources?.requests?.memory && gcfsd.resources.limits?.memory);
  assert.equal(gcfsd.resources?.limits?.cpu, undefined, 'no CPU limit on the FUSE server');
  assert.equal(
    gcfsd.env?.find((e) => e.name === 'NODE_NAME')?.valueFrom?.fieldRef?.fieldPath,
    'spec.nodeName',
  );
});

test('the DaemonSet mounts every host path at the same path, and every path gcfsd names lies in one', async () => {
  const ds = gcfsdDaemonSet(await loadManifests());
  const pod = ds.spec!.template.spec!;
  const hostPaths = new Map(pod.volumes?.map((v) => [v.name, v.hostPath?.path]));
  for (const c of pod.containers) {
    for (const mount of c.volumeMounts ?? []) {
      // containerd on the host resolves the paths gcfsd hands it: they must mean the same.
      assert.equal(hostPaths.get(mount.name), mount.mountPath, `${c.name}: ${mount.name}`);
    }
  }
  // Every path a process shares with the host is on a host path, and written out in its args:
  // a default would name the same path, but out of sight of whoever reads the volumes.
  const gcfsd = container(ds.spec!.template, 'gcfsd');
  const values = flagsOf(GCFSD_COMMAND.flags, gcfsd.args);
  const mounted = (path: string) =>
    gcfsd.volumeMounts?.some((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`)) ?? false;
  for (const flag of [
    'mount_point',
    'layer_cache_dir',
    'images_in_use_db_path',
    'downloader_uds_path',
    'snapshotter_uds_path',
    'snapshotter_root',
    'keychain_uds_path',
    'containerd_address',
    'registry_hosts_dir',
  ]) {
    assert.ok(mounted(values[flag] as string), `--${flag}=${values[flag]} is not on a host path`);
    assert.equal(flagValue(gcfsd, flag), values[flag], `--${flag} is not written out`);
  }
  const downloader = container(ds.spec!.template, 'downloader');
  for (const flag of ['downloader_uds_path', 'layer_cache_dir', 'registry_hosts_dir']) {
    assert.equal(flagValue(downloader, flag), values[flag], `the downloader's --${flag}`);
  }
  assert.equal(hostPaths.get('dev-fuse'), '/dev/fuse');
  assert.equal(pod.volumes?.find((v) => v.name === 'dev-fuse')?.hostPath?.type, 'CharDevice');
});

test('the containerd drop-in points at gcfsd snapshotter socket and replaces no plugin section', async () => {
  const dropIn = parseToml(await readFile(CONTAINERD_DROP_IN, 'utf8')) as Record<string, unknown>;
  const gcfsd = container(gcfsdDaemonSet(await loadManifests()).spec!.template, 'gcfsd');
  const socket = flagsOf(GCFSD_COMMAND.flags, gcfsd.args).snapshotter_uds_path;
  assert.deepEqual(JSON.parse(JSON.stringify(dropIn)), {
    version: 2,
    proxy_plugins: { gcfs: { type: 'snapshot', address: socket } },
  });
});

test('cfsd: its flags parse, the Service and the PodDisruptionBudget select its pods, gcfsd --addr names the Service', async () => {
  const manifests = await loadManifests();
  const deployment = cfsdDeployment(manifests);
  const cfsd = container(deployment.spec!.template, 'cfsd');
  const values = flagsOf(CFSD_COMMAND.flags, cfsd.args);
  assert.deepEqual(cfsd.command, ['cfsd']);
  const podLabels = deployment.spec?.template.metadata?.labels ?? {};
  const service = findObject<IService>(manifests, 'Service', 'cfsd');
  const pdb = findObject<IPodDisruptionBudget>(manifests, 'PodDisruptionBudget', 'cfsd');
  for (const selector of [service.spec?.selector ?? {}, pdb.spec?.selector?.matchLabels ?? {}]) {
    assert.ok(Object.keys(selector).length > 0);
    for (const [key, value] of Object.entries(selector)) assert.equal(podLabels[key], value);
  }
  assert.ok((deployment.spec?.replicas ?? 1) > (pdb.spec?.minAvailable as number));
  const grpcPort = Number((values.listen as string).split(':').at(-1));
  const port = service.spec?.ports?.find((p) => p.name === 'grpc');
  assert.equal(cfsd.ports?.find((p) => p.name === port?.targetPort)?.containerPort, grpcPort);
  const gcfsd = container(gcfsdDaemonSet(manifests).spec!.template, 'gcfsd');
  assert.equal(
    flagValue(gcfsd, 'addr'),
    `${service.metadata?.name}.${service.metadata?.namespace}.svc.cluster.local:${port?.port}`,
  );
  // The store is a directory cfsd makes itself inside the volume (it must own it to make it 0700).
  const storeMount = cfsd.volumeMounts?.find((m) => m.name === 'store')?.mountPath;
  assert.ok((values.store as string).startsWith(`file://${storeMount}/`));
  assert.equal(cfsd.securityContext?.readOnlyRootFilesystem, true);
});

test('the events RBAC lets gcfsd create Events where it posts them', async () => {
  const manifests = await loadManifests();
  const binding = findObject<IRoleBinding>(manifests, 'RoleBinding', 'gcfs:gcfsd-events');
  // packages/gcfsd/src/daemon/k8s-events.ts posts core/v1 Events in `default`.
  assert.equal(binding.metadata?.namespace, 'default');
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'gcfsd', namespace: 'gcfs-system' }]);
  const role = findObject<{ rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> }>(
    manifests,
    'ClusterRole',
    binding.roleRef.name,
  );
  assert.ok(
    role.rules.some(
      (r) => r.apiGroups.includes('') && r.resources.includes('events') && r.verbs.includes('create'),
    ),
  );
  assert.equal(gcfsdDaemonSet(manifests).spec?.template.spec?.serviceAccountName, 'gcfsd');
});

test('every image in deploy/kubernetes is gcfs at the version of package.json', async () => {
  const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const manifests = await loadManifests();
  const images = [gcfsdDaemonSet(manifests), cfsdDeployment(manifests)].flatMap(
    (workload) => workload.spec?.template.spec?.containers.map((c) => c.image) ?? [],
  );
  assert.equal(images.length, 3);
  for (const image of images) assert.equal(image, `REGISTRY/gcfs:${version}`);
});
