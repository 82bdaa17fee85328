// Telling a tenant its slot is gone. The ledger has already changed holder (the Lease was swapped or
// deleted) before anything here runs; this only informs the claim and stops its pod, so running it
// twice, or after a restart, does nothing new.
import type * as k8s from "@kubernetes/client-node";
import { claimResource } from "../api/index.ts";
import { isNotFound } from "../kube/errors.ts";
import type { ControllerContext } from "./context.ts";
import { annotations } from "./labels.ts";
import { ownedTenantPod } from "./indexes.ts";

export interface Revocation {
  claim: { namespace: string; name: string };
  /** CamelCase reason: PoolShrunk, Expired, Failover, ... */
  reason: string;
  message: string;
  graceSeconds: number;
  /** service:<ns>/<name> for a failover, pool for the pool's own needs. */
  by: string;
  /** The phase the claim moves to: Revoking, or Expired for a claim that ran out its time. */
  phase: "Revoking" | "Expired";
}

/**
 * Status and Event, with the pod annotation at the same time, then pod deletion with the grace
 * period: the tenant sees why before its pod goes. Resolves to the pod as its deletion left it
 * (null: gone), or undefined when this notice deleted nothing.
 */
export async function noticeRevocation(ctx: ControllerContext, r: Revocation): Promise<StoppedPod> {
  const now = ctx.now();
  const claim = ctx.cache.claims.get(r.claim.name, r.claim.namespace);
  const ref = { ...r.claim, uid: claim?.metadata?.uid };
  const pod = ownedTenantPod(ctx, ref);
  // What is told is what happens: a pod already stopping sooner keeps its own deadline.
  const deadline = stopDeadline(pod, now, r.graceSeconds);
  const outcome = !pod
    ? "no tenant pod was running"
    : deadline < now + r.graceSeconds * 1000
      ? `the tenant pod was already stopping and is gone by ${new Date(deadline).toISOString()}`
      : `the tenant pod stops within ${r.graceSeconds}s`;
  const status = (claim?.status ?? {}) as { phase?: string; revokedAt?: string };
  const already = (status.phase === "Revoking" || status.phase === "Expired") && status.revokedAt;
  // A workload claim (no template) keeps its phase: it may hold other slots, and its pod on this
  // one is evicted by the claim controller, woken by the Lease, which says which slot went.
  const workload =
    claim !== undefined && (claim.spec as { template?: unknown } | undefined)?.template === undefined;
  if (workload) {
    // Who took a slot and when, without a phase: the claim may hold others.
    try {
      await ctx.client.patchCustomStatus(claimResource, r.claim.name, r.claim.namespace, {
        revokedAt: new Date(now).toISOString(),
        revokeDeadline: new Date(now + r.graceSeconds * 1000).toISOString(),
        revokedBy: r.by,
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    ctx.events.warning(
      claim,
      r.reason,
      `${r.message}; the pod on the slot is evicted within ${r.graceSeconds}s`,
    );
    return undefined;
  }
  const tell = async () => {
    try {
      await ctx.client.patchCustomStatus(claimResource, r.claim.name, r.claim.namespace, {
        phase: r.phase,
        reason: r.reason,
        message: r.message,
        revokedAt: new Date(now).toISOString(),
        revokeDeadline: new Date(deadline).toISOString(),
        revokedBy: r.by,
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    ctx.events.warning(claim!, r.reason, `${r.message}; ${outcome}`);
  };
  const told = claim && !already ? tell() : Promise.resolve();
  const [, stopped] = await Promise.all([told, stopTenantPod(ctx, ref, r.reason, r.graceSeconds, told)]);
  return stopped;
}

/** A tenant pod as a deletion left it (null: gone), or undefined when nothing was deleted. */
export type StoppedPod = k8s.V1Pod | null | undefined;

/** When a tenant pod is gone at the latest if it is stopped now with `graceSeconds`: a deletion under way may end sooner. */
function stopDeadline(pod: k8s.V1Pod | undefined, now: number, graceSeconds: number): number {
  const requested = now + graceSeconds * 1000;
  const stopping = pod?.metadata?.deletionTimestamp;
  return stopping ? Math.min(new Date(stopping).getTime(), requested) : requested;
}

/**
 * Stops a claim's tenant pod within `graceSeconds`: annotated with why and until when, then
 * deleted once `told` (the claim told, written meanwhile) is done. A deletion already under way is
 * shortened when it would end later (a tenant pod never outstays the notice it was given); a pod
 * the claim does not own is left alone. Resolves as noticeRevocation does.
 */
export async function stopTenantPod(
  ctx: ControllerContext,
  claim: { namespace: string; name: string; uid?: string },
  reason: string,
  graceSeconds: number,
  told: Promise<void> = Promise.resolve(),
): Promise<StoppedPod> {
  const pod = ownedTenantPod(ctx, claim);
  if (!pod) return undefined;
  const now = ctx.now();
  const deadline = stopDeadline(pod, now, graceSeconds);
  if (pod.metadata?.deletionTimestamp && deadline < now + graceSeconds * 1000) return undefined;
  const { name, namespace } = pod.metadata as { name: string; namespace: string };
  const annotate = async () => {
    if (pod.metadata?.annotations?.[annotations.revocationReason]) return;
    await ctx.client.mergePatch(
      { apiVersion: "v1", kind: "Pod", metadata: { name, namespace } },
      {
        metadata: {
          annotations: {
            [annotations.revocationReason]: reason,
            [annotations.revocationDeadline]: new Date(deadline).toISOString(),
          },
        },
      },
    );
  };
  try {
    await Promise.all([told, annotate()]);
    return (await ctx.client.core.deleteNamespacedPod({
      name,
      namespace,
      gracePeriodSeconds: graceSeconds,
    })) as k8s.V1Pod;
  } catch (err) {
    if (!isNotFound(err)) throw err;
    return null;
  }
}
