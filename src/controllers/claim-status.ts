// Writing a PoolClaim's status: only what changed, under the resourceVersion it was decided on.
import { claimResource, type ConditionInput, type PoolClaim } from "../api/index.ts";
import type { ControllerContext } from "./context.ts";
import { writeStatus as writeObjectStatus } from "./status-writer.ts";

type ClaimStatus = NonNullable<PoolClaim["status"]>;

/** Sets the status fields given (undefined clears one) and the conditions; a stale read throws StaleRead. */
export async function writeStatus(
  ctx: ControllerContext,
  claim: PoolClaim,
  fields: Partial<Record<keyof ClaimStatus, unknown>>,
  ...conditions: ConditionInput[]
): Promise<void> {
  // Under an optimistic lock: a status decided on a stale read (the revoker wrote meanwhile) fails
  // with 409 and is decided again, instead of overwriting what the revoker wrote.
  const write = await writeObjectStatus(ctx, claimResource, claim, fields, conditions, { lock: true });
  if (!write.ok && write.reason === "Conflict") throw new StaleRead();
}

/** The caches were behind the API server; the reconcile is repeated shortly with fresher ones. */
export class StaleRead extends Error {}
