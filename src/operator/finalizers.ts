// Finalizers edited the way kube-rs's finalizer.rs does it: a JSON Patch whose `test` operation
// asserts what we read, so a concurrent change to the finalizers makes the patch fail instead of
// being overwritten. Works for built-in and custom objects alike.
import type * as k8s from "@kubernetes/client-node";
import type { KubeClient } from "../kube/client.ts";
import { statusCode } from "../kube/errors.ts";
import type { JsonPatchOperation, ObjectHeader } from "../kube/json-patch.ts";

/** The finalizers changed since the object was read; read it again and retry (a 409, like any lost CAS). */
export class FinalizerConflictError extends Error {
  readonly code = 409;
  constructor(object: ObjectHeader, finalizer: string) {
    super(
      `finalizers of ${object.kind} ${object.metadata.namespace ? `${object.metadata.namespace}/` : ""}${object.metadata.name} changed concurrently; not applying ${finalizer}`,
    );
    this.name = "FinalizerConflictError";
  }
}

export function hasFinalizer(object: k8s.KubernetesObject, finalizer: string): boolean {
  return object.metadata?.finalizers?.includes(finalizer) ?? false;
}

/**
 * Adds `finalizer` unless the object, as read, already has it. Fails with FinalizerConflictError
 * when the finalizers are no longer those of `object`. Returns the object as written.
 */
export async function addFinalizer<T extends k8s.KubernetesObject>(
  client: KubeClient,
  object: T,
  finalizer: string,
): Promise<T> {
  if (hasFinalizer(object, finalizer)) return object;
  const current = object.metadata?.finalizers ?? [];
  const operations: JsonPatchOperation[] =
    current.length === 0
      ? [
          // Absent: the API server omits an empty list. `null` tests for absence.
          { op: "test", path: "/metadata/finalizers", value: null },
          { op: "add", path: "/metadata/finalizers", value: [finalizer] },
        ]
      : [
          { op: "test", path: "/metadata/finalizers", value: current },
          { op: "add", path: "/metadata/finalizers/-", value: finalizer },
        ];
  return patchFinalizers(client, object, finalizer, operations);
}

/**
 * Removes `finalizer` if the object, as read, has it. Only the entry itself is tested: another
 * finalizer added meanwhile is kept, but a list that shifted under us fails with
 * FinalizerConflictError rather than removing the wrong entry.
 */
export async function removeFinalizer<T extends k8s.KubernetesObject>(
  client: KubeClient,
  object: T,
  finalizer: string,
): Promise<T> {
  const index = object.metadata?.finalizers?.indexOf(finalizer) ?? -1;
  if (index < 0) return object;
  return patchFinalizers(client, object, finalizer, [
    { op: "test", path: `/metadata/finalizers/${index}`, value: finalizer },
    { op: "remove", path: `/metadata/finalizers/${index}` },
  ]);
}

export interface FinalizerHandlers<T, R> {
  /** The object is live (and carries the finalizer): make the world match it. */
  apply(object: T): Promise<R>;
  /** The object is being deleted: undo what apply did; the finalizer is removed after. */
  cleanup(object: T): Promise<R>;
}

/**
 * kube-rs's `finalizer()`: guarantees cleanup runs before a deleted object goes away. A live
 * object without the finalizer gets it first; a deleted one is cleaned up, then released.
 * Returns what the handler returned, or undefined when there was nothing to do.
 */
export async function finalize<T extends k8s.KubernetesObject, R>(
  client: KubeClient,
  object: T,
  finalizer: string,
  handlers: FinalizerHandlers<T, R>,
): Promise<R | undefined> {
  const deleting = !!object.metadata?.deletionTimestamp;
  if (deleting) {
    if (!hasFinalizer(object, finalizer)) return undefined;
    const result = await handlers.cleanup(object);
    await removeFinalizer(client, object, finalizer);
    return result;
  }
  const guarded = await addFinalizer(client, object, finalizer);
  return handlers.apply(guarded);
}

async function patchFinalizers<T extends k8s.KubernetesObject>(
  client: KubeClient,
  object: T,
  finalizer: string,
  operations: JsonPatchOperation[],
): Promise<T> {
  const header = headerOf(object);
  try {
    return await client.jsonPatch<T>(header, operations);
  } catch (err) {
    // A failed `test` is answered 422 with no detail; so is an invalid finalizer name. Tell them
    // apart by looking: if the finalizers are no longer what we read, it was a concurrent change.
    if (statusCode(err) !== 422) throw err;
    const now = await client.objects.read(header);
    const before = object.metadata?.finalizers ?? [];
    const after = now.metadata?.finalizers ?? [];
    if (before.length !== after.length || before.some((f, i) => f !== after[i]))
      throw new FinalizerConflictError(header, finalizer);
    throw err;
  }
}

function headerOf(object: k8s.KubernetesObject): ObjectHeader {
  const name = object.metadata?.name;
  if (!object.apiVersion || !object.kind || !name)
    throw new Error("a finalizer can only be edited on an object with apiVersion, kind and metadata.name");
  return {
    apiVersion: object.apiVersion,
    kind: object.kind,
    metadata: { name, namespace: object.metadata?.namespace },
  };
}
