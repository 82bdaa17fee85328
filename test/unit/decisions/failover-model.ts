// A small model of the cluster a failover acts on: slot leases with resourceVersions, pods that
// take time to start and to terminate, claims, the head Service's selector and the service's
// status with its own resourceVersion. Applying a FailoverAction changes it the way the API server
// would (compare-and-swap, AlreadyExists, optimistic lock on status), so the step machine can be
// driven through crashes, lost actions and stale replays without a cluster.
import { FailoverStatusSchema } from "../../../src/api/storage-service.ts";
import { fromFailoverStatus, toFailoverStatus } from "../../../src/decisions/failover-record.ts";
import { assessHeadHealth } from "../../../src/decisions/head-health.ts";
import {
  type FailoverAction,
  type FailoverObserved,
  type FailoverRecord,
  type FailoverSummary,
  type HeadRef,
  nextFailoverAction,
} from "../../../src/decisions/failover-steps.ts";
import { formatHolderIdentity, headPodName, refKey, slotLeaseName } from "../../../src/decisions/names.ts";
import type { ClaimView, NodeView, PodPresence, SlotHolder, SlotView } from "../../../src/decisions/types.ts";
import { node } from "./fixtures.ts";

interface ModelPod {
  name: string;
  /** Unique per pod, as the API server's uid: a pod made again under the same name gets another. */
  uid: number;
  node: string;
  /** For head pods on a slot: the slot's lease (the pod's slot label). */
  slot?: string;
  kind: "head" | "tenant" | "placeholder";
  epoch?: number;
  /** For tenant pods: the claim; for placeholders: the lease. */
  owner?: string;
  phase: "Pending" | "Running" | "Failed";
  ready: boolean;
  /** Set while terminating: kubelet ticks left before the pod is gone. */
  terminating?: number;
}

interface LeaseChange {
  leaseName: string;
  from: string;
  to: string;
  by: "operator" | "tenant-grants";
}

export interface Model {
  now: number;
  service: { namespace: string; name: string };
  status: {
    resourceVersion: number;
    epoch: number;
    head?: HeadRef;
    failover?: FailoverRecord;
    lastFailover?: FailoverSummary;
    failoverCount: number;
  };
  slots: Map<string, SlotView>;
  nodes: NodeView[];
  claims: Map<string, { view: ClaimView; notified: boolean }>;
  pods: Map<string, ModelPod>;
  /** uids given out so far. */
  uids: number;
  /** Head pods removed so far, newest last: what a lagging cache may still show. */
  removedHeads: ModelPod[];
  routedEpoch?: number;
  replenished: boolean;
  emergencyGraceTicks: number;
  /** Nodes whose pods start but never become Ready (a head that cannot get Ready there). */
  neverReadyNodes: Set<string>;
  /** spec.failover.headStartDeadlineSeconds, in ms of model time. */
  headStartDeadlineMs: number;
  history: {
    headPodsCreated: string[];
    leaseChanges: LeaseChange[];
    epochWrites: number[];
    violations: string[];
  };
}

export interface ScenarioSpec {
  /** Holder of each zone's slot: free, or leased to a claim with this bid. */
  slots: { zone: "a" | "b" | "c"; bid?: number }[];
  failure: "node" | "pod";
  /** A Pending claim that the tenant grants may race the failover for a free slot. */
  pendingClaim: boolean;
  /** How long a new head may take to become Ready; by default longer than any run. */
  headStartDeadlineMs?: number;
}

/** Longer than any run of the model: no head misses it unless a test shortens it. */
const HEAD_START_DEADLINE_MS = 3_600_000;

export const SERVICE = { namespace: "s", name: "db" };

export function buildModel(spec: ScenarioSpec): Model {
  const model: Model = {
    now: 1_000_000,
    service: SERVICE,
    status: {
      resourceVersion: 1,
      epoch: 1,
      head: { pod: headPodName("db", 1), node: "a0", zone: "a" },
      failoverCount: 0,
    },
    slots: new Map(),
    nodes: ["a", "b", "c"].flatMap((zone) => [node(`${zone}0`, zone), node(`${zone}1`, zone)]),
    claims: new Map(),
    pods: new Map(),
    uids: 0,
    removedHeads: [],
    routedEpoch: 1,
    replenished: false,
    emergencyGraceTicks: 2,
    neverReadyNodes: new Set(),
    headStartDeadlineMs: spec.headStartDeadlineMs ?? HEAD_START_DEADLINE_MS,
    history: { headPodsCreated: [], leaseChanges: [], epochWrites: [], violations: [] },
  };
  addPod(model, {
    name: headPodName("db", 1),
    node: "a0",
    kind: "head",
    epoch: 1,
    phase: "Running",
    ready: true,
  });
  const perZone = new Map<string, number>();
  spec.slots.forEach((s, i) => {
    const index = perZone.get(s.zone) ?? 0;
    perZone.set(s.zone, index + 1);
    const leaseName = slotLeaseName("p", s.zone, index);
    let holder: SlotHolder = { kind: "free" };
    if (s.bid !== undefined) {
      const view: ClaimView = {
        namespace: "t",
        name: `c${i}`,
        pool: "p",
        bid: s.bid,
        createdAt: i,
        phase: "Bound",
        requeueOnRevoke: true,
      };
      model.claims.set(refKey(view), { view, notified: false });
      holder = { kind: "claim", namespace: "t", name: view.name };
      addPod(model, {
        name: `${view.name}-tenant`,
        node: `${s.zone}1`,
        kind: "tenant",
        owner: refKey(view),
        phase: "Running",
        ready: true,
      });
    } else {
      addPod(model, {
        name: `placeholder-${leaseName}`,
        node: `${s.zone}1`,
        kind: "placeholder",
        owner: leaseName,
        phase: "Running",
        ready: true,
      });
    }
    model.slots.set(leaseName, {
      leaseName,
      pool: "p",
      zone: s.zone,
      index,
      node: `${s.zone}1`,
      holder,
      acquiredAt: i,
      resourceVersion: "1",
    });
  });
  if (spec.pendingClaim) {
    const view: ClaimView = {
      namespace: "t",
      name: "late",
      pool: "p",
      bid: 1,
      createdAt: 99,
      phase: "Pending",
      requeueOnRevoke: false,
    };
    model.claims.set(refKey(view), { view, notified: false });
  }
  // The failure.
  if (spec.failure === "node")
    model.nodes = model.nodes.map((n) => (n.name === "a0" ? { ...n, ready: false } : n));
  else terminate(model, headPodName("db", 1), 1);
  return model;
}

function addPod(model: Model, pod: Omit<ModelPod, "uid">): void {
  model.pods.set(pod.name, { ...pod, uid: ++model.uids });
}

function removePod(model: Model, name: string): void {
  const pod = model.pods.get(name);
  if (pod?.kind === "head") model.removedHeads.push(pod);
  model.pods.delete(name);
}

function terminate(model: Model, name: string, ticks: number): void {
  const pod = model.pods.get(name);
  if (pod && pod.terminating === undefined) pod.terminating = ticks;
}

function presence(model: Model, name: string | undefined): PodPresence {
  const pod = name === undefined ? undefined : model.pods.get(name);
  if (!pod) return "absent";
  return pod.terminating === undefined ? "present" : "terminating";
}

function nodeReady(model: Model, name: string | undefined): boolean {
  return model.nodes.some((n) => n.name === name && n.ready);
}

/**
 * What a controller would observe; also returns the status resourceVersion it read. `stale`: its pod
 * cache still shows the last removed pod of the new head's name in place of what is there now.
 */
export function observe(model: Model, stale = false): { observed: FailoverObserved; statusVersion: number } {
  const state = model.status.failover;
  const headName = model.status.head?.pod;
  const headPod = headName ? model.pods.get(headName) : undefined;
  const health = assessHeadHealth({
    now: model.now,
    ...(headName !== undefined ? { recordedHead: headName } : {}),
    pod: headPod
      ? {
          name: headPod.name,
          phase: headPod.phase,
          ready: headPod.ready,
          createdAt: 0,
          node: headPod.node,
          ...(headPod.terminating !== undefined ? { deletionTimestamp: model.now } : {}),
        }
      : undefined,
    node: headPod ? model.nodes.find((n) => n.name === headPod.node) : undefined,
    notReadyGraceMs: 1000,
  });
  const victim = state?.victim ? refKey(state.victim) : undefined;
  const victimClaim = victim === undefined ? undefined : model.claims.get(victim);
  const newHeadName =
    state?.targetEpoch !== undefined ? headPodName(model.service.name, state.targetEpoch) : undefined;
  const removed = model.removedHeads.findLast((p) => p.name === newHeadName);
  const newHead = stale && removed ? removed : newHeadName ? model.pods.get(newHeadName) : undefined;
  const observed: FailoverObserved = {
    now: model.now,
    service: model.service,
    epoch: model.status.epoch,
    health,
    pool: {
      slots: [...model.slots.values()].map((s) => ({ ...s })),
      nodes: model.nodes,
      claims: [...model.claims.values()].map((c) => c.view),
      emergencyGraceSeconds: 2,
      // Until the pool replaces it, the zone of each slot the service took lacks one.
      tenantSlotsMissing: model.replenished ? {} : takenPerZone(model),
    },
    slotPods: {
      placeholder: presence(model, state?.slot ? `placeholder-${state.slot.leaseName}` : undefined),
      tenant: presence(model, state?.victim ? `${state.victim.name}-tenant` : undefined),
    },
    victimClaim: !victimClaim ? "absent" : victimClaim.notified ? "notified" : "unnotified",
    newHead: newHead
      ? {
          presence: newHead.terminating === undefined ? "present" : "terminating",
          phase: newHead.phase,
          ready: newHead.ready,
          uid: String(newHead.uid),
          node: newHead.node,
          ...(newHead.slot !== undefined ? { slot: newHead.slot } : {}),
        }
      : { presence: "absent", ready: false },
    headStartDeadlineMs: model.headStartDeadlineMs,
    oldHead: {
      presence: presence(model, state?.oldHead?.pod),
      nodeReady: nodeReady(model, state?.oldHead?.node),
    },
  };
  if (model.status.head) observed.head = { ...model.status.head };
  if (model.routedEpoch !== undefined) observed.routedEpoch = model.routedEpoch;
  return { observed, statusVersion: model.status.resourceVersion };
}

/**
 * One decision of the operator: observe (through a lagging pod cache when `lagging`), decide, and
 * apply, unless the action is `lost` (the operator crashed before it reached the API server); a
 * wait lets its requeue time pass. Of a record sent together with the Service switch, a crash may
 * lose either request: `lost` then lands the record alone (the switch alone is what the record's
 * conflict leaves). Returns the action and the status version it was decided on.
 */
export function operatorStep(
  model: Model,
  { lagging = false, lost = false } = {},
): { action: FailoverAction; statusVersion: number } {
  const { observed, statusVersion } = observe(model, lagging);
  const action = nextFailoverAction(model.status.failover, observed);
  if (!lost) apply(model, action, statusVersion);
  else if (action.kind === "recordStep" && action.switchService)
    apply(model, { ...action, switchService: false }, statusVersion);
  if (action.kind === "wait") model.now += action.requeueAfterMs;
  return { action, statusVersion };
}

/** Applies an action as the API server would; `statusVersion` is the status version it was decided on. */
export function apply(model: Model, action: FailoverAction, statusVersion: number): void {
  switch (action.kind) {
    case "idle":
    case "wait":
      return;
    case "recordStep": {
      // The switch is its own request, sent with the record: it lands whatever the record's fate.
      if (action.switchService && action.epoch !== undefined) model.routedEpoch = action.epoch;
      if (model.status.resourceVersion !== statusVersion) return; // 409 Conflict
      // Through the status fields and their schema, as a restarted operator would read it back.
      const stored = FailoverStatusSchema.parse(toFailoverStatus(action.record, model.service.name));
      const readBack = fromFailoverStatus(stored);
      if (!readBack) throw new Error(`record lost in status: ${JSON.stringify(stored)}`);
      model.status.failover = readBack;
      if (action.epoch !== undefined) {
        model.status.epoch = action.epoch;
        model.history.epochWrites.push(action.epoch);
      }
      if (action.head) model.status.head = { ...action.head };
      model.status.resourceVersion++;
      return;
    }
    case "finish": {
      if (model.status.resourceVersion !== statusVersion) return;
      delete model.status.failover;
      model.status.lastFailover = structuredClone(action.summary);
      model.status.failoverCount++;
      model.status.resourceVersion++;
      return;
    }
    case "casLease":
      casLease(model, action.leaseName, action.expectedResourceVersion, action.to, "operator");
      return;
    case "revokeClaim": {
      const claim = model.claims.get(refKey(action.claim));
      if (claim) {
        claim.notified = true;
        claim.view = { ...claim.view, phase: "Revoking" };
      }
      terminate(model, `${action.claim.name}-tenant`, model.emergencyGraceTicks);
      return;
    }
    case "deletePlaceholder":
      terminate(model, `placeholder-${action.leaseName}`, 1);
      return;
    case "createHead": {
      if (model.pods.has(action.podName)) return; // 409 AlreadyExists
      const lease = model.slots.get(action.slot);
      if (
        !lease ||
        formatHolderIdentity(lease.holder) !== `service:${model.service.namespace}/${model.service.name}`
      ) {
        model.history.violations.push(
          `head ${action.podName} created on ${action.slot} without holding its lease`,
        );
      }
      const victim = model.status.failover?.victim;
      for (const name of [`placeholder-${action.slot}`, ...(victim ? [`${victim.name}-tenant`] : [])]) {
        if (model.pods.has(name))
          model.history.violations.push(`head ${action.podName} created while ${name} is on its slot`);
      }
      model.history.headPodsCreated.push(action.podName);
      addPod(model, {
        name: action.podName,
        node: action.node,
        kind: "head",
        slot: action.slot,
        epoch: action.epoch,
        phase: "Pending",
        ready: false,
      });
      return;
    }
    case "deleteNewHead": {
      // A uid precondition that names another pod is refused: the pod there now stays.
      const pod = model.pods.get(action.podName);
      if (action.uid !== undefined && pod && String(pod.uid) !== action.uid) return;
      if (action.force) removePod(model, action.podName);
      else terminate(model, action.podName, 1);
      return;
    }
    case "switchService":
      model.routedEpoch = action.epoch;
      return;
    case "deleteOldHead":
      if (action.force) removePod(model, action.podName);
      else terminate(model, action.podName, 2);
      return;
  }
}

function casLease(
  model: Model,
  leaseName: string,
  expected: string,
  to: SlotHolder,
  by: LeaseChange["by"],
): boolean {
  const lease = model.slots.get(leaseName);
  if (!lease || lease.resourceVersion !== expected) return false; // 409 Conflict or 404
  model.history.leaseChanges.push({
    leaseName,
    from: formatHolderIdentity(lease.holder),
    to: formatHolderIdentity(to),
    by,
  });
  model.slots.set(leaseName, {
    ...lease,
    holder: to,
    acquiredAt: model.now,
    resourceVersion: String(Number(lease.resourceVersion) + 1),
  });
  return true;
}

/** The kubelet: terminating pods go away, pending pods on Ready nodes start, running ones turn Ready. */
export function kubeletTick(model: Model): void {
  for (const pod of [...model.pods.values()]) {
    if (pod.terminating !== undefined) {
      // A NotReady node never confirms a graceful deletion; only a forced one removes the pod.
      if (!nodeReady(model, pod.node)) continue;
      if (pod.terminating <= 0) removePod(model, pod.name);
      else pod.terminating--;
      continue;
    }
    if (!nodeReady(model, pod.node)) continue;
    if (pod.phase === "Pending") pod.phase = "Running";
    else if (pod.phase === "Running" && !model.neverReadyNodes.has(pod.node)) pod.ready = true;
  }
}

/** The tenant grant controller racing the failover: gives a free slot to a Pending claim. */
export function tenantGrantTick(model: Model): void {
  const pending = [...model.claims.values()].find((c) => c.view.phase === "Pending");
  const free = [...model.slots.values()].find((s) => s.holder.kind === "free" && nodeReady(model, s.node));
  if (!pending || !free) return;
  const claim = { kind: "claim" as const, namespace: pending.view.namespace, name: pending.view.name };
  if (casLease(model, free.leaseName, free.resourceVersion, claim, "tenant-grants")) {
    pending.view = { ...pending.view, phase: "Bound" };
    terminate(model, `placeholder-${free.leaseName}`, 0);
    // Its tenant pod starts once the placeholder is gone; the model starts it right away on the node.
    addPod(model, {
      name: `${pending.view.name}-tenant`,
      node: free.node,
      kind: "tenant",
      owner: refKey(pending.view),
      phase: "Running",
      ready: true,
    });
  }
}

function takenPerZone(model: Model): Record<string, number> {
  const taken: Record<string, number> = {};
  for (const slot of model.slots.values())
    if (slot.holder.kind === "service") taken[slot.zone] = (taken[slot.zone] ?? 0) + 1;
  return taken;
}

/** The pool controller: once the service took a slot, it eventually replaces it. */
export function poolTick(model: Model): void {
  const reserved = [...model.slots.values()].some((s) => s.holder.kind === "service");
  if (reserved) model.replenished = true;
}
