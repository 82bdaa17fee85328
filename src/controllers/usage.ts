// Recording a claim's usage in its status (src/decisions/usage.ts decides the record) and counting
// it in the metrics, by pool, namespace and revocation reason: label sets bounded by the pools and
// the namespaces they admit, never by claim.
import { claimResource, type PoolClaim } from "../api/index.ts";
import { formatHolderIdentity } from "../decisions/names.ts";
import {
  accountUsage,
  usageRecordOf,
  usageStatusOf,
  type UsageLeaseView,
  type UsageRecord,
  type UsageStatus,
} from "../decisions/usage.ts";
import { isConflict, isNotFound } from "../kube/errors.ts";
import type { ControllerContext } from "./context.ts";
import { slotLeasesHeldBy } from "./indexes.ts";
import { sameJson } from "./json-equal.ts";
import { annotations } from "./labels.ts";
import { time } from "./views.ts";

/** The claim's next usage record, from the ledger as observed, and whether it changed. */
export function nextUsage(
  ctx: ControllerContext,
  claim: PoolClaim,
  wanting: boolean,
): { previous: UsageRecord; next: UsageRecord; status: UsageStatus; changed: boolean } {
  const { namespace, name } = claim.metadata as { namespace: string; name: string };
  const previous = usageRecordOf(claim.status?.usage);
  const identity = formatHolderIdentity({ kind: "claim", namespace, name });
  const names = new Set([
    ...slotLeasesHeldBy(ctx, identity).map((l) => l.metadata!.name!),
    ...previous.held.map((h) => h.leaseName),
  ]);
  const leases = [...names].flatMap((leaseName): UsageLeaseView[] => {
    const lease = ctx.cache.slotLeases.get(leaseName, ctx.namespace);
    if (!lease) return [];
    const a = lease.metadata?.annotations ?? {};
    return [
      {
        leaseName,
        heldByClaim: lease.spec?.holderIdentity === identity,
        acquiredAt: time(lease.spec?.acquireTime as unknown as string),
        revokedFromClaim:
          a[annotations.revokedClaim] === `${namespace}/${name}`
            ? a[annotations.revocationReason]
            : undefined,
      },
    ];
  });
  const next = accountUsage(previous, { now: ctx.now(), leases, wanting });
  const status = usageStatusOf(next);
  return { previous, next, status, changed: !claim.status?.usage || !sameJson(claim.status.usage, status) };
}

/** The status patch of a usage record: a wait that ended clears its start (a merge patch keeps absent keys). */
export const usagePatch = (status: UsageStatus, stored: UsageStatus | undefined) =>
  stored?.waitingSince && !status.waitingSince ? { ...status, waitingSince: null } : status;

/** Counts what a written record added in the metrics: per pool, namespace and reason, never per claim. */
export function countUsage(
  ctx: ControllerContext,
  claim: PoolClaim,
  previous: UsageRecord,
  next: UsageRecord,
): void {
  const pool = claim.spec.pool;
  const namespace = claim.metadata.namespace!;
  ctx.metrics?.tenantUsage(pool, namespace, {
    slotSeconds: next.slotSeconds - previous.slotSeconds,
    waitingSeconds: next.waitingSeconds - previous.waitingSeconds,
  });
  for (const [reason, count] of Object.entries(next.revocations))
    for (let i = previous.revocations[reason] ?? 0; i < count; i++)
      ctx.metrics?.tenantRevoked(pool, namespace, reason);
}

/**
 * Brings an inline claim's usage record up to the ledger. Returns true when it wrote (the caller
 * decides again on fresher caches): the write carries the claim's resourceVersion, so a record is
 * never built twice on the same old one.
 */
export async function recordUsage(
  ctx: ControllerContext,
  claim: PoolClaim,
  wanting: boolean,
): Promise<boolean> {
  const { previous, next, status, changed } = nextUsage(ctx, claim, wanting);
  if (!changed) return false;
  try {
    await ctx.client.patchCustomStatus(
      claimResource,
      claim.metadata.name!,
      claim.metadata.namespace,
      { usage: usagePatch(status, claim.status?.usage) },
      claim.metadata.resourceVersion,
    );
  } catch (err) {
    if (isConflict(err) || isNotFound(err)) return true;
    throw err;
  }
  countUsage(ctx, claim, previous, next);
  return true;
}
