// The pool and claim controllers as the runtime runs them: reconcile plus what wakes them.
import { parseHolderIdentity } from "../decisions/names.ts";
import { reconcileClaim } from "./claim-controller.ts";
import { objectKey, parseKey } from "../operator/keys.ts";
import type { ControllerContext, ControllerSpec } from "./context.ts";
import { annotations, labels, roles } from "./labels.ts";
import { claimNamedBy } from "./pods.ts";
import { reconcilePool } from "./pool-controller.ts";

const allPools: ControllerSpec["watches"]["nodes"] = (_node, ctx) => ctx.cache.pools.list().map(objectKey);

export const poolControllerSpec: ControllerSpec = {
  name: "pool",
  reconcile: (ctx, key) => reconcilePool(ctx, key),
  watches: {
    pools: (pool) => [objectKey(pool)],
    slotLeases: (lease) => {
      const pool = lease.metadata?.labels?.[labels.pool];
      return pool ? [pool] : [];
    },
    claims: (claim) => {
      const pool = (claim.spec as { pool?: string } | undefined)?.pool;
      return pool ? [pool] : [];
    },
    nodes: allPools,
    pods: (pod, ctx) => {
      const l = pod.metadata?.labels ?? {};
      if (l[labels.pool] && l[labels.role] === roles.placeholder) return [l[labels.pool]];
      // A tenant's own pod waiting for, taking or leaving a slot changes what its claim asks for.
      const claim = l[labels.claim]
        ? ctx.cache.claims.get(l[labels.claim], pod.metadata?.namespace)
        : undefined;
      const pool = (claim?.spec as { pool?: string; template?: unknown } | undefined) ?? undefined;
      return pool?.pool && pool.template === undefined ? [pool.pool] : [];
    },
    // A service's head moving zones changes the pool's failover capacity (status.failoverCapacity).
    services: (service) => {
      const pool = (service.spec as { pool?: string } | undefined)?.pool;
      return pool ? [pool] : [];
    },
  },
};

/**
 * The claim keys among `keys` this operator reconciles: a claim of a pool another operator manages
 * is dropped before it is queued (its reconcile would do nothing), so several installations, or
 * thousands of claims of other pools, cost no work here. A claim not in the cache yet is kept.
 */
function ownClaims(keys: readonly string[], ctx: ControllerContext): string[] {
  return keys.filter((key) => {
    const { namespace, name } = parseKey(key);
    const pool = (ctx.cache.claims.get(name, namespace)?.spec as { pool?: unknown } | undefined)?.pool;
    return typeof pool !== "string" || ctx.managesPool(pool);
  });
}

export const claimControllerSpec: ControllerSpec = {
  name: "claim",
  reconcile: (ctx, key) => {
    const { namespace, name } = parseKey(key);
    return reconcileClaim(ctx, namespace!, name);
  },
  watches: {
    claims: (claim, ctx) => ownClaims([objectKey(claim)], ctx),
    slotLeases: (lease) => {
      const keys: string[] = [];
      const holder = parseHolderIdentity(lease.spec?.holderIdentity);
      if (holder?.kind === "claim") keys.push(`${holder.namespace}/${holder.name}`);
      const revoked = lease.metadata?.annotations?.[annotations.revokedClaim];
      if (revoked) keys.push(revoked);
      return keys;
    },
    pods: (pod, ctx) => {
      // The claim's own pod or a tenant's own pod naming it, and any pod that takes its pod's name
      // (it blocks the claim until it goes).
      const claim = pod.metadata?.labels?.[labels.claim];
      const named = claimNamedBy(pod.metadata?.name);
      return ownClaims(
        [...new Set([claim, named].filter((c): c is string => !!c))].map(
          (c) => `${pod.metadata!.namespace}/${c}`,
        ),
        ctx,
      );
    },
    pools: (pool, ctx) =>
      ctx.cache.claims
        .list()
        .filter((c) => (c.spec as { pool?: string } | undefined)?.pool === pool.metadata?.name)
        .map(objectKey),
  },
  // A claim reads its pool's spec (admission, grace periods) and labels, never its status, which
  // changes with every grant: thousands of claims would be woken for nothing.
  ignoreStatusUpdates: ["pools"],
};
