// Lookups over the informer caches that every reconcile would otherwise build by scanning a whole
// cache (thousands of slots, claims and pods at scale). The informers keep each index up to date as
// events arrive (Informer.byIndex), so a lookup costs the size of its answer, not of the cache; what
// is derived from an index's group is memoized on that group (derived.ts). Read-only for callers.
import type * as k8s from "@kubernetes/client-node";
import { parseClaim, parsePool, parseStorageService, type ContingencyPool } from "../api/index.ts";
import type { ServiceHeadView } from "../decisions/failover-capacity.ts";
import type { ClaimView, NodeView, Resources } from "../decisions/types.ts";
import type { Indexer } from "../kube/informer.ts";
import type { Cache, ControllerContext } from "./context.ts";
import { perObject, perObjectWith } from "./derived.ts";
import { annotations, labels } from "./labels.ts";
import { tenantPodClaim, tenantPodName } from "./pods.ts";
import { primaryZoneOf } from "./storage-service/names.ts";
import { admit, requestedByNode, toClaimView, toHeadPlacementRule, toNodeView } from "./views.ts";

/** The API parsers over cached objects: a schema check is done once per object version. */
export const parsedClaim = perObject(parseClaim);
export const parsedPool = perObject(parsePool);
export const parsedStorageService = perObject(parseStorageService);

/**
 * A lookup of a cache's objects by `keyOf` (objects without a key left out): the informer's index,
 * or a scan of a cache that keeps none (hand-made caches in tests).
 */
function indexBy<T>(
  name: string,
  keyOf: (item: T) => string | undefined,
): (cache: Cache<T>, value: string) => readonly T[] {
  const indexer: Indexer<T> = { name, keyOf };
  return (cache, value) =>
    cache.byIndex ? cache.byIndex(indexer, value) : cache.list().filter((item) => keyOf(item) === value);
}

const slotLeasesByHolder = indexBy<k8s.V1Lease>("holder", (l) => l.spec?.holderIdentity ?? undefined);
const slotLeasesByPool = indexBy<k8s.V1Lease>("pool", (l) => l.metadata?.labels?.[labels.pool]);
const podsByService = indexBy<k8s.V1Pod>("service", (p) => {
  const service = p.metadata?.labels?.[labels.service];
  return service === undefined ? undefined : `${p.metadata?.namespace}/${service}`;
});
const slotLeasesByRevokedClaim = indexBy<k8s.V1Lease>(
  "revoked-claim",
  (l) => l.metadata?.annotations?.[annotations.revokedClaim],
);
const podsByPool = indexBy<k8s.V1Pod>("pool", (p) => p.metadata?.labels?.[labels.pool]);
const podsByNode = indexBy<k8s.V1Pod>("node", (p) => p.spec?.nodeName);
const claimsByPool = indexBy<k8s.KubernetesObject>(
  "pool",
  (c) => (c as { spec?: { pool?: unknown } }).spec?.pool as string | undefined,
);
const servicesByPool = claimsByPool;
const podsByClaimLabel = indexBy<k8s.V1Pod>("claim-label", (p) => {
  const claim = p.metadata?.labels?.[labels.claim];
  return claim === undefined ? undefined : `${p.metadata?.namespace}/${claim}`;
});

/** Slot Leases naming `identity` as holder (see decisions/names.ts formatHolderIdentity). */
export const slotLeasesHeldBy = (ctx: ControllerContext, identity: string): readonly k8s.V1Lease[] =>
  slotLeasesByHolder(ctx.cache.slotLeases, identity);

/** The slot Leases of a pool. */
export const slotLeasesOfPool = (ctx: ControllerContext, pool: string): readonly k8s.V1Lease[] =>
  slotLeasesByPool(ctx.cache.slotLeases, pool);

/** Slot Leases whose annotation names `claim` ("namespace/name") as the claim revoked from them. */
export const slotLeasesRevokedFrom = (ctx: ControllerContext, claim: string): readonly k8s.V1Lease[] =>
  slotLeasesByRevokedClaim(ctx.cache.slotLeases, claim);

/** The pods a storage service owns (head and servers), by their service label. */
export const podsOfService = (
  ctx: ControllerContext,
  namespace: string,
  name: string,
): readonly k8s.V1Pod[] => podsByService(ctx.cache.pods, `${namespace}/${name}`);

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
  podsByClaimLabel(ctx.cache.pods, `${namespace}/${name}`).filter((pod) => tenantPodClaim(pod) === undefined);

/** The pods on a pool's slots (placeholders, tenants and heads), by their pool label. */
export const podsOfPool = (ctx: ControllerContext, pool: string): readonly k8s.V1Pod[] =>
  podsByPool(ctx.cache.pods, pool);

/** What the live pods bound to a node request, per group of the node index (it changes with them). */
const requestedOn = perObject(
  (pods: readonly k8s.V1Pod[]): Resources | undefined => [...requestedByNode(pods).values()][0],
);

/** A node's view, derived again only when the node, what its pods request or its heartbeat changes. */
const nodeView = perObjectWith(toNodeView);

/** Every node as the decisions see it: readiness, heartbeat, allocatable and what its pods request. */
export const observeNodes = (ctx: ControllerContext): NodeView[] =>
  ctx.cache.nodes.list().map((n) => {
    const name = n.metadata!.name!;
    return nodeView(
      n,
      requestedOn(podsByNode(ctx.cache.pods, name)),
      ctx.cache.nodeLeases.get(name, "kube-node-lease"),
    );
  });

/** A pool's claims as views, per group of the claim index, per pool object and name. */
const claimViews = perObjectWith(
  (claims: readonly k8s.KubernetesObject[], pool: ContingencyPool | undefined, name: string): ClaimView[] =>
    claims.flatMap((raw) => {
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
): ClaimView[] => [...claimViews(claimsByPool(ctx.cache.claims, name), pool, name)];

/**
 * The storage services drawing on a pool, each with the zone its head runs in now (its primary zone
 * before it has one) and where its head may run on the pool's slots.
 */
export const poolServiceHeads = (ctx: ControllerContext, pool: ContingencyPool): ServiceHeadView[] =>
  servicesByPool(ctx.cache.services, pool.metadata.name!).flatMap((raw) => {
    const parsed = parsedStorageService(raw);
    if (!parsed.ok || parsed.value.spec.pool !== pool.metadata.name) return [];
    const service = parsed.value;
    return [
      {
        namespace: service.metadata.namespace!,
        name: service.metadata.name!,
        zone: service.status?.head?.zone ?? primaryZoneOf(service),
        placement: toHeadPlacementRule(service, pool),
      },
    ];
  });
