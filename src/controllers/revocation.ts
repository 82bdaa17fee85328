// Telling a tenant its slot is gone. The ledger has already changed holder (the Lease was swapped or
// deleted) before anything here runs; this only informs the claim and stops its pod, so running it
// twice, or after a restart, does nothing new.
import type * as k8s from "@kubernetes/client-node";
import { CLAIM_PLURAL, GROUP, VERSION, CLAIM_KIND } from "../api/index.ts";
import { isNotFound } from "../kube/errors.ts";
import type { ResourceRef } from "../kube/resources.ts";
import type { ControllerContext } from "./context.ts";
import { annotations } from "./labels.ts";
import { tenantPodName } from "./pods.ts";

export const claimResource: ResourceRef = {
  group: GROUP,
  version: VERSION,
  plural: CLAIM_PLURAL,
  kind: CLAIM_KIND,
  namespaced: true,
};

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

/** Status, Event, pod annotation, then pod deletion with the grace period: in that order, so the tenant sees why before its pod goes. */
export async function noticeRevocation(ctx: ControllerContext, r: Revocation): Promise<void> {
  const now = ctx.now();
  const pod = ctx.cache.pods.get(tenantPodName(r.claim.name), r.claim.namespace);
  // What is told is what happens: a pod already stopping keeps the deadline it has.
  const stoppingSince = pod?.metadata?.deletionTimestamp;
  const deadline = stoppingSince
    ? new Date(
        new Date(stoppingSince).getTime() + (pod.metadata?.deletionGracePeriodSeconds ?? 0) * 1000,
      ).toISOString()
    : new Date(now + r.graceSeconds * 1000).toISOString();
  const outcome = !pod
    ? "no tenant pod was running"
    : stoppingSince
      ? `the tenant pod was already stopping and is gone by ${deadline}`
      : `the tenant pod stops within ${r.graceSeconds}s`;
  const claim = ctx.cache.claims.get(r.claim.name, r.claim.namespace);
  const status = (claim?.status ?? {}) as { phase?: string; revokedAt?: string };
  const already = (status.phase === "Revoking" || status.phase === "Expired") && status.revokedAt;
  if (claim && !already) {
    try {
      await ctx.client.patchCustomStatus(claimResource, r.claim.name, r.claim.namespace, {
        phase: r.phase,
        reason: r.reason,
        message: r.message,
        revokedAt: new Date(now).toISOString(),
        revokeDeadline: deadline,
        revokedBy: r.by,
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    ctx.events.warning(claim, r.reason, `${r.message}; ${outcome}`);
  }
  await stopTenantPod(
    ctx,
    r.claim.namespace,
    tenantPodName(r.claim.name),
    r.reason,
    deadline,
    r.graceSeconds,
  );
}

export async function stopTenantPod(
  ctx: ControllerContext,
  namespace: string,
  name: string,
  reason: string,
  deadline: string,
  graceSeconds: number,
): Promise<void> {
  const pod: k8s.V1Pod | undefined = ctx.cache.pods.get(name, namespace);
  if (pod?.metadata?.deletionTimestamp) return;
  try {
    if (!pod?.metadata?.annotations?.[annotations.revocationReason]) {
      await ctx.client.mergePatch(
        { apiVersion: "v1", kind: "Pod", metadata: { name, namespace } },
        {
          metadata: {
            annotations: {
              [annotations.revocationReason]: reason,
              [annotations.revocationDeadline]: deadline,
            },
          },
        },
      );
    }
    await ctx.client.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: graceSeconds });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}
