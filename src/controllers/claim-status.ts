// Writing a PoolClaim's status: only what changed, under the resourceVersion it was decided on.
import { claimResource, setCondition, type ConditionInput, type PoolClaim } from "../api/index.ts";
import { isConflict, isNotFound } from "../kube/errors.ts";
import type { ControllerContext } from "./context.ts";
import { sameJson } from "./json-equal.ts";

type ClaimStatus = NonNullable<PoolClaim["status"]>;

/** Merge-patches the status fields given (undefined clears one) and the conditions, skipping writes that change nothing. */
export async function writeStatus(
  ctx: ControllerContext,
  claim: PoolClaim,
  fields: Partial<Record<keyof ClaimStatus, unknown>>,
  ...conditions: ConditionInput[]
): Promise<void> {
  const current = (claim.status ?? {}) as Record<string, unknown>;
  const now = new Date(ctx.now());
  let next = claim.status?.conditions ?? [];
  for (const c of conditions)
    next = setCondition(next, { ...c, observedGeneration: claim.metadata.generation }, now);
  const patch: Record<string, unknown> = { observedGeneration: claim.metadata.generation };
  for (const [k, v] of Object.entries(fields)) patch[k] = v === undefined ? null : v;
  if (conditions.length) patch.conditions = next;
  const changed = Object.entries(patch).some(([k, v]) => !sameJson(current[k] ?? null, v));
  if (!changed) return;
  try {
    // Under an optimistic lock: a status decided on a stale read (the revoker wrote meanwhile) fails
    // with 409 and is decided again, instead of overwriting what the revoker wrote.
    await ctx.client.patchCustomStatus(
      claimResource,
      claim.metadata.name!,
      claim.metadata.namespace,
      patch,
      claim.metadata.resourceVersion,
    );
  } catch (err) {
    if (isConflict(err)) throw new StaleRead();
    if (!isNotFound(err)) throw err;
  }
}

/** The caches were behind the API server; the reconcile is repeated shortly with fresher ones. */
export class StaleRead extends Error {}
