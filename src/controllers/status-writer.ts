// Writing a custom object's status, for every controller: a merge patch of what changed, skipped
// when it changes nothing, optionally under the resourceVersion the change was decided on.
import { setCondition, type Condition, type ConditionInput } from "../api/index.ts";
import type { CustomObject } from "../kube/client.ts";
import type { ResourceRef } from "../kube/resources.ts";
import { isConflict, isNotFound } from "../kube/errors.ts";
import type { ControllerContext } from "./context.ts";
import { sameJson } from "./json-equal.ts";

/** What a status write did: written (the object as the API server returned it), or not. */
export type StatusWrite =
  { ok: true; object: CustomObject | undefined } | { ok: false; reason: "Conflict" | "Gone" };

/** An object whose status the writer reads to see what changes. */
interface WithStatus {
  metadata: { name?: string; namespace?: string; generation?: number; resourceVersion?: string };
  status?: object;
}

/**
 * The merge patch that sets `fields` (undefined clears one) and `conditions` (transition times kept
 * while a condition's status stays) on `status`, with the generation observed; undefined when the
 * status already says all of it.
 */
export function statusPatch(
  status: object | undefined,
  generation: number | undefined,
  fields: Record<string, unknown>,
  conditions: readonly ConditionInput[],
  now: Date,
): Record<string, unknown> | undefined {
  const current = (status ?? {}) as Record<string, unknown>;
  const patch: Record<string, unknown> = { observedGeneration: generation };
  for (const [k, v] of Object.entries(fields)) patch[k] = v === undefined ? null : v;
  if (conditions.length) {
    let next = (status as { conditions?: readonly Condition[] } | undefined)?.conditions ?? [];
    for (const c of conditions) next = setCondition(next, { ...c, observedGeneration: generation }, now);
    patch.conditions = next;
  }
  return Object.entries(patch).some(([k, v]) => !sameJson(current[k] ?? null, v ?? null)) ? patch : undefined;
}

/**
 * Merge-patches the object's status. With `lock`, the write carries the resourceVersion the patch
 * was decided on, so a decision made on a stale view fails (Conflict) instead of overwriting.
 */
export async function patchStatus(
  ctx: ControllerContext,
  resource: ResourceRef,
  object: WithStatus,
  patch: Record<string, unknown>,
  { lock }: { lock: boolean },
): Promise<StatusWrite> {
  try {
    const written = await ctx.client.patchCustomStatus(
      resource,
      object.metadata.name!,
      object.metadata.namespace,
      patch,
      lock ? object.metadata.resourceVersion : undefined,
    );
    return { ok: true, object: written };
  } catch (err) {
    if (isConflict(err)) return { ok: false, reason: "Conflict" };
    if (isNotFound(err)) return { ok: false, reason: "Gone" };
    throw err;
  }
}

/** Sets status fields and conditions (statusPatch), writing only when something changes. */
export async function writeStatus(
  ctx: ControllerContext,
  resource: ResourceRef,
  object: WithStatus,
  fields: Record<string, unknown>,
  conditions: readonly ConditionInput[],
  options: { lock: boolean },
): Promise<StatusWrite> {
  const patch = statusPatch(
    object.status,
    object.metadata.generation,
    fields,
    conditions,
    new Date(ctx.now()),
  );
  if (!patch) return { ok: true, object: undefined };
  return patchStatus(ctx, resource, object, patch, options);
}
