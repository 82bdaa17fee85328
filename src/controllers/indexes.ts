// Lookups over the informer caches that every reconcile would otherwise build by scanning a whole
// cache (thousands of slots, claims and pods at scale): built once per cache revision and shared by
// every reconcile until the cache changes (derived.ts). Read-only for callers.
import type * as k8s from "@kubernetes/client-node";
import { parseClaim, parsePool, parseStorageService, type ContingencyPool } from "../api/index.ts";
import type { ServiceHeadView } from "../decisions/failover-capacity.ts";
import type { ClaimView, NodeView } from "../decisions/types.ts";
import type { Cache, ControllerContext } from "./context.ts";
import { perObject, perRevision } from "./derived.ts";
import { annotations, labels } from "./labels.ts";
import { tenantPodClaim, tenantPodName } from "./pods.ts";
import { primaryZoneOf } from "./storage-service/names.ts";
import { admit, requestedByNode, toClaimView, toNodeView } from "./views.ts";

/** The API parsers over cached objects: a schema check is done once per object version. */
export const parsedClaim = perObject(parseClaim);
export const parsedPool = perObject(parsePool);
export const parsedStorageService = perObject(parseStorageService);

function groupBy<T>(items: readonly T[], keyOf: (item: T) => string | undefined): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    if (key === undefined) continue;
    const group = out.get(key);
    if (group) group.push(item);
    else out.set(key, [item]);
  }
  return out;
}

const none: readonly never[] = [];

/** A lookup of a cache's objects by `keyOf` (objects without a key left out), rebuilt when the cache changes. */
function indexBy<T>(keyOf: (item: T) => string | undefined): (cache: Cache<T>) => Map<string, T[]> {
  return perRevision(
    (cache: Cache<T>) => [cache],
    () => [],
    () => "",
    (cache) => groupBy(cache.list(), keyOf),
  );
}

const slotLeasesByHolder = indexBy<k8s.V1Lease>((l) => l.spec?.holderIdentity ?? undefined);
const slotLeasesByPool = indexBy<k8s.V1Lease>((l) => l.metadata?.labels?.[labels.pool]);
const podsByService = indexBy<k8s.V1Pod>((p) => {
  const service = p.metadata?.labels?.[labels.service];
  return service === undefined ? undefined : `${p.metadata?.namespace}/${service}`;
});
const slotLeasesByRevokedClaim = indexBy<k8s.V1Lease>(
  (l) => l.metadata?.annotations?.[annotations.revokedClaim],
);
const podsByPool = indexBy<k8s.V1Pod>((p) => p.metadata?.labels?.[labels.pool]);
const podsByClaimLabel = indexBy<k8s.V1Pod>((p) => {
  const claim = p.metadata?.labels?.[labels.claim];
  return claim === undefined ? undefined : `${p.metadata?.namespace}/${claim}`;
});

/** Slot Leases naming `identity` as holder (see decisions/names.ts formatHolderIdentity). */
export const slotLeasesHeldBy = (ctx: ControllerContext, identity: string): readonly k8s.V1Lease[] =>
  slotLeasesByHolder(ctx.cache.slotLeases).get(identity) ?? none;

/** The slot Leases of a pool. */
export const slotLeasesOfPool = (ctx: ControllerContext, pool: string): readonly k8s.V1Lease[] =>
  slotLeasesByPool(ctx.cache.slotLeases).get(pool) ?? none;

/** Slot Leases whose annotation names `claim` ("namespace/name") as the claim revoked from them. */
export const slotLeasesRevokedFrom = (ctx: ControllerContext, claim: string): readonly k8s.V1Lease[] =>
  slotLeasesByRevokedClaim(ctx.cache.slotLeases).get(claim) ?? none;

/** The pods a storage service owns (head and servers), by their service label. */
export const podsOfService = (
  ctx: ControllerContext,
  namespace: string,
  name: string,
): readonly k8s.V1Pod[] => podsByService(ctx.cache.pods).get(`${namespace}/${name}`) ?? none;

/**
 * A claim's tenant pod: the pod named for it that the claim controls (see tenantPodClaim). A pod
 * someone else put under that name is not the claim's, and the operator neither runs nor stops it.
 */
export function ownedTenantPod(
  ctx: ControllerContext,
  claim: { namespace: string; name: string; uid?: string },
): k8s.V1Pod | undefined {
  const pod = ctx.cache.pods.get(tenantPodName(claim.name), claim.namespace);
  return pod && tenantPodClaim(pod, claim.uid) === `${claim.namespace}/${claim.name}` ? pod : undefined;
}

/**
 * A workload claim's pods: in its namespace, labelled with its name, and not an inline claim's pod
 * (those are the claim's only under its controller reference). The label is the tenant's to set on
 * its own pods, so it proves no more than that: a pod can only name a claim of its own namespace.
 */
export const workloadPodsOf = (ctx: ControllerContext, namespace: string, name: string): k8s.V1Pod[] =>
  (podsByClaimLabel(ctx.cache.pods).get(`${namespace}/${name}`) ?? none).filter(
    (pod) => tenantPodClaim(pod) === undefined,
  );

/** The pods on a pool's slots (placeholders, tenants and heads), by their pool label. */
export const podsOfPool = (ctx: ControllerContext, pool: string): readonly k8s.V1Pod[] =>
  podsByPool(ctx.cache.pods).get(pool) ?? none;

const nodeViews = perRevision(
  (state: ControllerContext["cache"]) => [state.nodes, state.pods, state.nodeLeases],
  () => [],
  () => "",
  (state) => {
    const requested = requestedByNode(state.pods.list());
    return state.nodes.list().map((n) => {
      const name = n.metadata!.name!;
      return toNodeView(n, requested.get(name), state.nodeLeases.get(name, "kube-node-lease"));
    });
  },
);

/** Every node as the decisions see it: readiness, heartbeat, allocatable and what its pods request. */
export const observeNodes = (ctx: ControllerContext): NodeView[] => [...nodeViews(ctx.cache)];

const claimViews = perRevision(
  (claims: Cache<k8s.KubernetesObject>, _pool: ContingencyPool | undefined, _name: string) => [claims],
  (_claims, pool) => [pool],
  (_claims, _pool, name) => name,
  (claims, pool, name): ClaimView[] =>
    claims.list().flatMap((raw) => {
      const parsed = parsedClaim(raw);
      if (!parsed.ok || parsed.value.spec.pool !== name || parsed.value.metadata.deletionTimestamp) return [];
      const claim = parsed.value;
      const verdict = admit(claim, pool);
      return [
        toClaimView(
          claim,
          verdict.admitted ? undefined : { reason: verdict.reason, message: verdict.message },
        ),
      ];
    }),
);

/** The pool's claims as views, each with its admission verdict (refused claims are never granted). */
export const poolClaims = (
  ctx: ControllerContext,
  pool: ContingencyPool | undefined,
  name: string,
): ClaimView[] => [...claimViews(ctx.cache.claims, pool, name)];

/** The storage services drawing on a pool, each with the zone its head runs in now (its primary zone before it has one). */
export const poolServiceHeads = (ctx: ControllerContext, pool: string): ServiceHeadView[] =>
  ctx.cache.services.list().flatMap((raw) => {
    const parsed = parsedStorageService(raw);
    if (!parsed.ok || parsed.value.spec.pool !== pool) return [];
    const service = parsed.value;
    return [
      {
        namespace: service.metadata.namespace!,
        name: service.metadata.name!,
        zone: service.status?.head?.zone ?? primaryZoneOf(service),
      },
    ];
  });
