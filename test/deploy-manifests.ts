// deploy/kubernetes as the tests read it: every YAML document of the directory, validated
// against Kubernetes' API schemas (kubernetes-models, generated from the OpenAPI spec), and
// typed lookups of the objects the tests look into.

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IDaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { parseAllDocuments } from 'yaml';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const KUBERNETES_DIR = join(ROOT, 'deploy/kubernetes');
export const CONTAINERD_DROP_IN = join(ROOT, 'deploy/containerd/gcfs.toml');

export interface ManifestObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

export interface LoadedManifest {
  file: string;
  object: ManifestObject;
}

/** Every document of every .yaml file under deploy/kubernetes, in file order; YAML errors throw. */
export async function loadManifests(): Promise<LoadedManifest[]> {
  const found: LoadedManifest[] = [];
  for (const name of (await readdir(KUBERNETES_DIR)).filter((n) => /\.ya?ml$/.test(n)).sort()) {
    const text = await readFile(join(KUBERNETES_DIR, name), 'utf8');
    for (const doc of parseAllDocuments(text)) {
      const problems = [...doc.errors, ...doc.warnings];
      if (problems.length > 0) throw new Error(`${name}: ${problems.map((p) => p.message).join('; ')}`);
      const object = doc.toJS() as ManifestObject | null;
      if (object !== null) found.push({ file: name, object });
    }
  }
  return found;
}

interface ModelClass {
  new (data: unknown): { validate(): void };
}

/**
 * Validate one object with the model of its apiVersion and kind (types, required fields,
 * enums and formats of the OpenAPI schema). Throws naming what is wrong; an apiVersion or
 * kind the schemas do not know throws too.
 */
export async function validateObject(object: ManifestObject): Promise<void> {
  const models = (await import(`kubernetes-models/${object.apiVersion}`).catch(() => ({}))) as Record<
    string,
    ModelClass | undefined
  >;
  const Model = models[object.kind];
  if (Model === undefined) throw new Error(`no schema for ${object.apiVersion} ${object.kind}`);
  new Model(object).validate();
}

export function findObject<T>(manifests: LoadedManifest[], kind: string, name: string): T {
  const found = manifests.find((m) => m.object.kind === kind && m.object.metadata.name === name);
  if (found === undefined) throw new Error(`deploy/kubernetes has no ${kind} ${name}`);
  return found.object as T;
}

export const gcfsdDaemonSet = (m: LoadedManifest[]) => findObject<IDaemonSet>(m, 'DaemonSet', 'gcfsd');
export const cfsdDeployment = (m: LoadedManifest[]) => findObject<IDeployment>(m, 'Deployment', 'cfsd');

export function container(pod: { spec?: { containers: IContainer[] } }, name: string): IContainer {
  const found = pod.spec?.containers.find((c) => c.name === name);
  if (found === undefined) throw new Error(`no container ${name}`);
  return found;
}

/** The value of `--name=value` in a container's args. */
export function flagValue(c: IContainer, name: string): string | undefined {
  const prefix = `--${name}=`;
  return c.args?.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}
