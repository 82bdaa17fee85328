// Work-queue keys: `namespace/name` for namespaced objects, `name` for cluster-scoped ones (the
// form src/kube/informer.ts caches by), and mappings from a watched object to the keys it concerns.
import type * as k8s from "@kubernetes/client-node";
import { objectKey } from "../kube/informer.ts";

export { objectKey };

export function parseKey(key: string): { namespace?: string; name: string } {
  const slash = key.indexOf("/");
  return slash < 0 ? { name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

export function makeKey(name: string, namespace?: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/** Maps an object to the keys to enqueue for it. */
export type KeyMapper<T> = (object: T) => readonly string[];

/** The object's own key. */
export const ownKey = <T extends k8s.KubernetesObject>(object: T): readonly string[] => [objectKey(object)];

/**
 * The keys of the object's owners of `kind` (and `apiGroup`, when given), e.g. a Pod event
 * enqueuing its PoolClaim. Owners of a namespaced object live in its namespace.
 */
export function ownerKeys<T extends k8s.KubernetesObject>(kind: string, apiGroup?: string): KeyMapper<T> {
  return (object) =>
    (object.metadata?.ownerReferences ?? [])
      .filter((ref) => ref.kind === kind && (apiGroup === undefined || groupOf(ref.apiVersion) === apiGroup))
      .map((ref) => makeKey(ref.name, object.metadata?.namespace));
}

/**
 * The key named by a label of the object: `labelValue` in the object's namespace, or in
 * `namespace` for a label that names a cluster-scoped or elsewhere-living object.
 */
export function labelKey<T extends k8s.KubernetesObject>(
  label: string,
  namespace?: (object: T) => string | undefined,
): KeyMapper<T> {
  return (object) => {
    const value = object.metadata?.labels?.[label];
    if (!value) return [];
    return [makeKey(value, namespace ? namespace(object) : object.metadata?.namespace)];
  };
}

const groupOf = (apiVersion: string) => (apiVersion.includes("/") ? apiVersion.split("/")[0] : "");
