// Work-queue keys: `namespace/name` for namespaced objects, `name` for cluster-scoped ones (the
// form src/kube/informer.ts caches by), and the mapping from a watched object to its own key.
import type * as k8s from "@kubernetes/client-node";
import { objectKey } from "../kube/informer.ts";

export { objectKey };

export function parseKey(key: string): { namespace?: string; name: string } {
  const slash = key.indexOf("/");
  return slash < 0 ? { name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** Maps an object to the keys to enqueue for it. */
export type KeyMapper<T> = (object: T) => readonly string[];

/** The object's own key. */
export const ownKey = <T extends k8s.KubernetesObject>(object: T): readonly string[] => [objectKey(object)];
