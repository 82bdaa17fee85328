// What the storage service controller observes, as the decisions' views: the head's health, the
// pool's slots, nodes and claims, and the pods a failover creates and removes. Reads come from the
// informer caches, overlaid with what this reconcile itself just wrote (read-your-writes: the
// caches hear of our own writes a moment later, and the decisions must not act twice meanwhile).
import type * as k8s from "@kubernetes/client-node";
import { poolServesNamespace, type ContingencyPool, type StorageService } from "../../api/index.ts";
import {
  tenantSlotsMissing,
  type FailoverObserved,
  type FailoverPoolObservation,
  type FailoverRecord,
} from "../../decisions/failover-steps.ts";
import { failoverPause, type FailoverPause } from "../../decisions/failover-pause.ts";
import { assessHeadHealth, type HeadHealth, type HeadPodView } from "../../decisions/head-health.ts";
import { headPodName, refKey } from "../../decisions/names.ts";
import type {
  ClaimRef,
  NodeView,
  PodPhase,
  PodPresence,
  ServiceRef,
  SlotView,
} from "../../decisions/types.ts";
import type { ControllerContext } from "../context.ts";
import { labels, roles } from "../labels.ts";
import { placeholderName, tenantPodName } from "../pods.ts";
import { observeNodes, parsedPool, poolClaims, slotLeasesOfPool, workloadPodsOf } from "../indexes.ts";
import { time, toHeadPlacementRule, toSlotView } from "../views.ts";
import { routedEpochOf } from "./manifests.ts";
import { headServiceName, serviceIdentity, serviceRef } from "./names.ts";

/** The controller's context (ctx.probes carries the head prober's records). */
export type StorageServiceContext = ControllerContext;

/** How long a Lease swap is remembered for a cache that does not show it (a missed watch event is relisted well before). */
const SWAP_MEMORY_MS = 10_000;

/** How long another failover's slot choice is passed over (it takes the slot well within this, or gave up). */
const SLOT_CHOICE_MEMORY_MS = 30_000;

/** Objects this reconcile wrote, seen before the caches have them. */
export class Known {
  readonly leases = new Map<string, k8s.V1Lease>();
  /** `namespace/name` → the pod as written, or null once deleted for good. */
  readonly pods = new Map<string, k8s.V1Pod | null>();
  /** Claims this reconcile told of their revocation. */
  readonly notified = new Set<string>();
  /** The epoch the head Service selects, as last read or written by this reconcile (or its cache). */
  routedEpoch: number | undefined;
  /** routedEpoch was read from the API server or written by this reconcile, not taken from a cache. */
  routedKnown = false;
  readonly ctx: ControllerContext;

  constructor(ctx: ControllerContext) {
    this.ctx = ctx;
  }

  pod(namespace: string, name: string): k8s.V1Pod | undefined {
    const key = `${namespace}/${name}`;
    if (this.pods.has(key)) return this.pods.get(key) ?? undefined;
    return this.ctx.cache.pods.get(name, namespace);
  }

  lease(name: string): k8s.V1Lease | undefined {
    const cached = this.ctx.cache.slotLeases.get(name, this.ctx.namespace);
    return this.leases.get(name) ?? (cached && this.swapped(cached)) ?? cached;
  }

  /** Slot Leases of a pool, with this reconcile's own changes and earlier swaps the cache does not show yet. */
  poolLeases(pool: string): k8s.V1Lease[] {
    const cached = slotLeasesOfPool(this.ctx, pool);
    const names = new Set(cached.map((l) => l.metadata!.name!));
    const own = [...this.leases.values()].filter(
      (l) => l.metadata?.labels?.[labels.pool] === pool && !names.has(l.metadata!.name!),
    );
    return [...cached.map((l) => this.leases.get(l.metadata!.name!) ?? this.swapped(l) ?? l), ...own];
  }

  /** The operator's own swap of a cached Lease while the cache still shows the version it replaced. */
  private swapped(cached: k8s.V1Lease): k8s.V1Lease | undefined {
    const swaps = this.ctx.writes.slotSwaps;
    const name = cached.metadata!.name!;
    const swap = swaps.get(name);
    if (!swap) return undefined;
    if (cached.metadata?.resourceVersion === swap.replaced && this.ctx.now() - swap.at < SWAP_MEMORY_MS)
      return swap.lease;
    swaps.delete(name);
    return undefined;
  }
}

export const isPodReady = (pod: k8s.V1Pod | undefined) =>
  !!pod &&
  pod.status?.phase === "Running" &&
  !!pod.status.conditions?.some((c) => c.type === "Ready" && c.status === "True");

export function presenceOf(pod: k8s.V1Pod | undefined): PodPresence {
  if (!pod) return "absent";
  return pod.metadata?.deletionTimestamp ? "terminating" : "present";
}

function headPodView(pod: k8s.V1Pod): HeadPodView {
  const ready = pod.status?.conditions?.find((c) => c.type === "Ready");
  const view: HeadPodView = {
    name: pod.metadata!.name!,
    phase: (pod.status?.phase ?? "Pending") as PodPhase,
    ready: isPodReady(pod),
    createdAt: time(pod.metadata?.creationTimestamp) ?? 0,
  };
  const transition = time(ready?.lastTransitionTime);
  if (transition !== undefined) view.readyTransitionAt = transition;
  const deletion = time(pod.metadata?.deletionTimestamp);
  if (deletion !== undefined) view.deletionTimestamp = deletion;
  if (pod.spec?.nodeName) view.node = pod.spec.nodeName;
  return view;
}

/** How long a new head may take to become Ready (it fences every partition first): spec.failover. */
export const headStartDeadlineMs = (service: StorageService) =>
  service.spec.failover.headStartDeadlineSeconds * 1000;

/**
 * How long a Running head may report not Ready before that is a failure: one probe period for a
 * head that has served (status.head.since is written once it is seen Ready), the start deadline for
 * one that has not yet.
 */
const notReadyGraceMs = (service: StorageService) =>
  service.status?.head?.since
    ? service.spec.failureDetection.probePeriodMilliseconds
    : headStartDeadlineMs(service);

export interface HeadAssessment {
  health: HeadHealth;
  pod: k8s.V1Pod | undefined;
  node: NodeView | undefined;
  /** A Running head that is not Ready but within its grace: look again after this long. */
  recheckAfterMs?: number;
}

/** The recorded head's health from its pod, its node (and node lease) and the operator's probe. */
export function assessHead(
  ctx: StorageServiceContext,
  service: StorageService,
  nodes: readonly NodeView[],
  known: Known,
): HeadAssessment {
  const now = ctx.now();
  const ref = serviceRef(service);
  const recorded = service.status?.head?.pod;
  const pod = recorded ? known.pod(ref.namespace, recorded) : undefined;
  const nodeName = pod?.spec?.nodeName;
  const node = nodeName ? nodes.find((n) => n.name === nodeName) : undefined;
  const probe = ctx.probes.record(ref.namespace, ref.name);
  const grace = notReadyGraceMs(service);
  const health = assessHeadHealth({
    now,
    ...(recorded !== undefined ? { recordedHead: recorded } : {}),
    pod: pod ? headPodView(pod) : undefined,
    node,
    // A record of an earlier head pod says nothing about this one.
    ...(probe && probe.pod === recorded ? { probe } : {}),
    notReadyGraceMs: grace,
  });
  const assessment: HeadAssessment = { health, pod, node };
  if (health.healthy && pod && pod.status?.phase === "Running" && !isPodReady(pod)) {
    const view = headPodView(pod);
    const since = view.readyTransitionAt ?? view.createdAt;
    assessment.recheckAfterMs = Math.max(10, since + grace - now);
  }
  return assessment;
}

/** Whether automatic failover is paused for the service, by its own spec or its pool's. */
export function pauseOf(service: StorageService, pool: PoolSnapshot | undefined): FailoverPause | undefined {
  return failoverPause(
    service.spec.failover.paused,
    pool && { name: service.spec.pool, failoverPaused: pool.pool.spec.failoverPaused },
  );
}

export interface PoolSnapshot {
  pool: ContingencyPool;
  slots: SlotView[];
  leases: Map<string, k8s.V1Lease>;
  nodes: NodeView[];
  observation: FailoverPoolObservation;
}

/**
 * Slots other failovers of this operator chose (WriteMemory.slotChoices) that no service holds yet.
 * Choices the ledger shows taken, or older than SLOT_CHOICE_MEMORY_MS, are forgotten.
 */
function slotsChosenElsewhere(
  ctx: ControllerContext,
  service: ServiceRef,
  slots: readonly SlotView[],
): { leaseName: string; service: ServiceRef }[] {
  const choices = ctx.writes.slotChoices;
  const holders = new Map(slots.map((s) => [s.leaseName, s.holder.kind]));
  const now = ctx.now();
  const elsewhere: { leaseName: string; service: ServiceRef }[] = [];
  for (const [leaseName, choice] of choices) {
    const holder = holders.get(leaseName);
    if (holder === "service" || now - choice.at > SLOT_CHOICE_MEMORY_MS) choices.delete(leaseName);
    // Slots of other pools (no holder here) are left to their own services' reconciles.
    else if (holder !== undefined && refKey(choice.service) !== refKey(service))
      elsewhere.push({ leaseName, service: choice.service });
  }
  return elsewhere;
}

export function observePool(
  ctx: ControllerContext,
  service: StorageService,
  nodes: NodeView[],
  known: Known,
): PoolSnapshot | undefined {
  const raw = ctx.cache.pools.get(service.spec.pool);
  if (!raw) return undefined;
  const parsed = parsedPool(raw);
  if (!parsed.ok) return undefined;
  const pool = parsed.value;
  const leases = new Map<string, k8s.V1Lease>();
  const slots: SlotView[] = [];
  for (const lease of known.poolLeases(service.spec.pool)) {
    const slot = toSlotView(lease);
    if (!slot) continue;
    slots.push(slot);
    leases.set(slot.leaseName, lease);
  }
  return {
    pool,
    slots,
    leases,
    nodes,
    observation: {
      slots,
      nodes,
      claims: poolClaims(ctx, pool, service.spec.pool),
      emergencyGraceSeconds: pool.spec.revocation.emergencyGraceSeconds,
      tenantSlotsMissing: tenantSlotsMissing(pool.spec.zones, slots),
      chosenElsewhere: slotsChosenElsewhere(ctx, serviceRef(service), slots),
      placement: toHeadPlacementRule(service, pool),
      ...(poolServesNamespace(pool.spec, service.metadata.namespace!)
        ? {}
        : {
            refusal: `pool ${pool.metadata.name} does not list namespace ${service.metadata.namespace} in allowedServiceNamespaces`,
          }),
    },
  };
}

/** Zones with a node that is not Ready: a failover avoids them when it can. */
export function troubledZones(nodes: readonly NodeView[]): string[] {
  return [...new Set(nodes.filter((n) => !n.ready && n.zone !== undefined).map((n) => n.zone!))].sort();
}

/**
 * The tenant pod of the victim on the chosen slot. A pod still terminating on a longer grace than
 * the pool's emergency grace (the claim controller may have begun with the planned one) counts as
 * present, so the failover deletes it again with the shorter grace.
 */
function tenantPresence(
  known: Known,
  record: FailoverRecord,
  emergencyGraceSeconds: number,
  now: number,
): PodPresence {
  if (!record.victim || !record.slot) return "absent";
  const pod = victimPod(known, record.victim, record.slot.leaseName);
  if (!pod) return "absent";
  const deadline = time(pod.metadata?.deletionTimestamp);
  if (deadline === undefined) return "present";
  if (deadline > now + (emergencyGraceSeconds + 1) * 1000) return "present";
  // Past its deadline and still there: its node did not confirm the end; the failover removes it.
  return tenantOverdue(pod, now) ? "present" : "terminating";
}

/**
 * The victim claim's pod on the slot: its inline pod (by name), or the one of its own workload pods
 * the operator pinned to that slot (the claim label and the slot label).
 */
export function victimPod(known: Known, claim: ClaimRef, leaseName: string): k8s.V1Pod | undefined {
  const onSlot = (pod: k8s.V1Pod | undefined) =>
    pod?.metadata?.labels?.[labels.slot] === leaseName && pod.metadata?.labels?.[labels.role] === roles.tenant
      ? pod
      : undefined;
  const inline = onSlot(known.pod(claim.namespace, tenantPodName(claim.name)));
  if (inline) return inline;
  for (const cached of workloadPodsOf(known.ctx, claim.namespace, claim.name)) {
    const pod = onSlot(known.pod(claim.namespace, cached.metadata!.name!));
    if (pod) return pod;
  }
  return undefined;
}

/** How long past its deletion deadline a tenant pod may linger before it is removed at once. */
const TENANT_OVERDUE_MS = 2000;

export function tenantOverdue(pod: k8s.V1Pod | undefined, now: number): boolean {
  const deadline = time(pod?.metadata?.deletionTimestamp);
  return deadline !== undefined && now > deadline + TENANT_OVERDUE_MS;
}

function victimClaimState(
  ctx: StorageServiceContext,
  service: StorageService,
  record: FailoverRecord,
  known: Known,
): FailoverObserved["victimClaim"] {
  if (!record.victim || !record.slot) return "absent";
  const claim = ctx.cache.claims.get(record.victim.name, record.victim.namespace);
  if (!claim || claim.metadata?.deletionTimestamp) return "absent";
  if (known.notified.has(refKey(record.victim))) return "notified";
  const status = (claim.status ?? {}) as { phase?: string; leaseName?: string; revokedBy?: string };
  if (status.revokedBy === serviceIdentity(serviceRef(service))) return "notified";
  if (status.phase === "Revoking" || status.phase === "Revoked" || status.phase === "Expired")
    return "notified";
  // A claim bound elsewhere (requeued and granted another slot) has nothing to be told about this one.
  if (status.phase === "Bound" && status.leaseName !== record.slot.leaseName) return "notified";
  return "unnotified";
}

export interface FailoverObservationInput {
  service: StorageService;
  record: FailoverRecord | undefined;
  health: HeadHealth;
  pool: PoolSnapshot | undefined;
  nodes: readonly NodeView[];
  known: Known;
}

/** Everything nextFailoverAction reads, for the record in progress. */
export function observeFailover(
  ctx: StorageServiceContext,
  input: FailoverObservationInput,
): FailoverObserved {
  const { service, record, known, nodes } = input;
  const ref = serviceRef(service);
  const now = ctx.now();
  const observed: FailoverObserved = {
    now,
    service: ref,
    epoch: service.status?.epoch ?? 0,
    health: record ? { healthy: true, starting: false } : input.health,
    slotPods: { placeholder: "absent", tenant: "absent" },
    victimClaim: "absent",
    newHead: { presence: "absent", ready: false },
    headStartDeadlineMs: headStartDeadlineMs(service),
    oldHead: { presence: "absent", nodeReady: false },
  };
  const head = service.status?.head;
  if (head?.pod) {
    // Where the head runs, as recorded, completed from its pod when it was recorded before it was scheduled.
    const nodeName = head.node ?? known.pod(ref.namespace, head.pod)?.spec?.nodeName;
    const zone = head.zone ?? nodes.find((n) => n.name === nodeName)?.zone;
    observed.head = { pod: head.pod };
    if (nodeName !== undefined) observed.head.node = nodeName;
    if (zone !== undefined) observed.head.zone = zone;
    if (head.leaseName !== undefined) observed.head.slot = head.leaseName;
  }
  if (input.pool) observed.pool = input.pool.observation;
  if (pauseOf(service, input.pool)) observed.paused = true;
  const troubled = troubledZones(nodes);
  if (troubled.length) observed.failedZones = troubled;
  // The cache's Service when this reconcile has not read or written it: it can only lag behind the
  // operator's own switch (no one else moves the selector), which costs a switch made again in each
  // reconcile until the cache shows it.
  const routed = known.routedKnown
    ? known.routedEpoch
    : routedEpochOf(ctx.cache.headServices.get(headServiceName(ref.name), ref.namespace));
  if (routed !== undefined) observed.routedEpoch = routed;
  if (!record) return observed;

  if (record.slot) {
    observed.slotPods.placeholder = presenceOf(
      known.pod(ctx.namespace, placeholderName(record.slot.leaseName)),
    );
    observed.slotPods.tenant = tenantPresence(
      known,
      record,
      input.pool?.pool.spec.revocation.emergencyGraceSeconds ?? 0,
      now,
    );
    observed.victimClaim = victimClaimState(ctx, service, record, known);
  }
  if (record.targetEpoch !== undefined) {
    const pod = known.pod(ref.namespace, headPodName(ref.name, record.targetEpoch));
    observed.newHead = { presence: presenceOf(pod), ready: isPodReady(pod) };
    if (pod?.status?.phase) observed.newHead.phase = pod.status.phase as PodPhase;
    if (pod?.metadata?.uid) observed.newHead.uid = pod.metadata.uid;
    if (pod?.spec?.nodeName) observed.newHead.node = pod.spec.nodeName;
    const slot = pod?.metadata?.labels?.[labels.slot];
    if (slot) observed.newHead.slot = slot;
  }
  if (record.oldHead) {
    const pod = known.pod(ref.namespace, record.oldHead.pod);
    const nodeName = pod?.spec?.nodeName ?? record.oldHead.node;
    const node = nodeName ? nodes.find((n) => n.name === nodeName) : undefined;
    observed.oldHead = { presence: presenceOf(pod), nodeReady: node?.ready ?? false };
  }
  return observed;
}

export function allNodes(ctx: ControllerContext): NodeView[] {
  return observeNodes(ctx);
}
