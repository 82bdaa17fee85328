// The failover of a storage service's head as a state machine recorded in StorageService.status.
//
// The reconciler observes, asks nextFailoverAction for ONE action, applies it, and asks again.
// Nothing lives in memory between two calls: the record in status plus the cluster are the whole
// state, so an operator killed after any action resumes from them. Each step's choice (slot, victim,
// target epoch) is recorded before its effects; every effect is guarded by what is observed, so
// applying an action twice, or one decided on a stale snapshot, changes nothing a second time:
// - the lease of a slot changes holder only by compare-and-swap, against the resourceVersion seen;
// - the head pod of an epoch has one name, so it cannot be created twice;
// - the epoch written to status and the Service selector is the recorded target, never "current + 1";
// - a record is written with the status resourceVersion it was decided on (optimistic lock).
import { FAILOVER_STEPS } from "../api/index.ts";
import type { SlotAbandonReason } from "../api/storage-service.ts";
import { asGoodSlot, chooseFailoverSlot } from "./failover-slot.ts";
import type { HeadHealth } from "./head-health.ts";
import type { HeadPlacementRule } from "./head-placement.ts";
import { headPodName } from "./names.ts";
import { compareStrings } from "./order.ts";
import type {
  ClaimRef,
  ClaimView,
  NodeView,
  PodPhase,
  PodPresence,
  ServiceRef,
  SlotHolder,
  SlotView,
} from "./types.ts";

/** The failover's steps by name (the order is FAILOVER_STEPS', in src/api). */
export const FailoverStep = Object.fromEntries(FAILOVER_STEPS.map((step) => [step, step])) as {
  readonly [K in (typeof FAILOVER_STEPS)[number]]: K;
};
export type FailoverStep = (typeof FailoverStep)[keyof typeof FailoverStep];

/** The head of a service as status records it. */
export interface HeadRef {
  pod: string;
  node?: string;
  zone?: string;
  /** The slot lease the head runs on, when it runs on contingency capacity. */
  slot?: string;
}

/** The slot a failover took, as recorded. */
export interface ChosenSlot {
  leaseName: string;
  /** The slot's index (its `understudy.dev/slot` label), when known. */
  index?: number;
  zone: string;
  node: string;
}

/** One step reached; when the run went back to Detected, the slot it gave up and why. */
export interface FailoverTimelineEntry {
  step: FailoverStep;
  at: number;
  abandonedSlot?: string;
  reason?: SlotAbandonReason;
}

/** `StorageService.status.failover`: the run in progress. Times in ms since the epoch. */
export interface FailoverRecord {
  /** The last step reached. */
  step: FailoverStep;
  startedAt: number;
  /** A HeadFailureReason, or the reason given by whoever started a planned move (e.g. a switchover). */
  reason: string;
  message?: string;
  /** `status.epoch` when the failure was detected. */
  epochAtDetection: number;
  /** The epoch of the new head: epochAtDetection + 1, fixed when the first slot is chosen. */
  targetEpoch?: number;
  /** The head that failed. */
  oldHead?: HeadRef;
  slot?: ChosenSlot;
  /** The claim whose lease the failover revokes; unset for a free slot. */
  victim?: ClaimRef;
  /** Slots given up during this run (node failed, lease lost, head not Ready in time); never chosen again. */
  abandonedSlots?: string[];
  /** Nodes where a head of this run was not Ready in time: avoided when choosing again. */
  abandonedNodes?: string[];
  /** Replenishing did not happen within the time allowed; the pool keeps trying on its own. */
  replenishDeferred?: boolean;
  timeline: FailoverTimelineEntry[];
}

export interface FailoverPoolObservation {
  /** The pool's slot leases. */
  slots: readonly SlotView[];
  nodes: readonly NodeView[];
  claims: readonly ClaimView[];
  emergencyGraceSeconds: number;
  /**
   * How many tenant slots (free or leased) each zone of the pool's spec has fewer than the spec
   * asks for; a zone missing none may be left out.
   */
  tenantSlotsMissing: Readonly<Record<string, number>>;
  /** Why the pool does not let this service take slots (its allowedServiceNamespaces); undefined when it does. */
  refusal?: string;
  /** The head's nodeSelector and tolerations on a slot of this pool. */
  placement?: HeadPlacementRule;
  /**
   * Slots other services' failovers chose and have not taken yet (Lease name and service): when the
   * best slot is one of them, an as-good slot chosen with them counted as those services' heads is
   * taken instead (chooseSlot).
   */
  chosenElsewhere?: readonly { leaseName: string; service: ServiceRef }[];
}

/** What the controller observed, read fresh before every call. */
export interface FailoverObserved {
  now: number;
  service: ServiceRef;
  /** `status.epoch`. */
  epoch: number;
  /** `status.head`: the head in service. */
  head?: HeadRef;
  /** The head's health; read only when no run is in progress. */
  health: HeadHealth;
  /** The service's pool; undefined when it does not exist. */
  pool?: FailoverPoolObservation;
  /** Zones the failure touched besides the head's own, avoided when choosing a slot. */
  failedZones?: readonly string[];
  /** Pods on the recorded slot: its placeholder and the victim's tenant pod ("absent" when none). */
  slotPods: { placeholder: PodPresence; tenant: PodPresence };
  /** The victim claim: gone, already told of the revocation, or not yet told. */
  victimClaim: "absent" | "notified" | "unnotified";
  /**
   * The head pod of the recorded target epoch: its uid, and the node and slot (label) it was
   * created for. Its name is the epoch's whatever the slot.
   */
  newHead: {
    presence: PodPresence;
    phase?: PodPhase;
    ready: boolean;
    uid?: string;
    node?: string;
    slot?: string;
  };
  /** spec.failover.headStartDeadlineSeconds in ms: how long after HeadStarted the new head may take to be Ready. */
  headStartDeadlineMs: number;
  /** The epoch the head Service selects; undefined when it selects none. */
  routedEpoch?: number;
  /** The head pod that failed, and whether its node exists and is Ready. */
  oldHead: { presence: PodPresence; nodeReady: boolean };
  /** Automatic failover is paused (the service's or its pool's spec): a failed head starts no run. */
  paused?: boolean;
}

export const FailoverWaitReason = {
  NoPool: "NoPool",
  NamespaceNotAllowed: "NamespaceNotAllowed",
  NoSlotAvailable: "NoSlotAvailable",
  SlotVacating: "SlotVacating",
  HeadTerminating: "HeadTerminating",
  HeadStarting: "HeadStarting",
  OldHeadTerminating: "OldHeadTerminating",
  Replenishing: "Replenishing",
} as const;
export type FailoverWaitReason = (typeof FailoverWaitReason)[keyof typeof FailoverWaitReason];

export interface FailoverSummary {
  startedAt: number;
  finishedAt: number;
  durationMilliseconds: number;
  reason: string;
  fromZone?: string;
  toZone?: string;
  slot?: string;
  revokedClaim?: ClaimRef;
  epoch?: number;
  timeline: FailoverTimelineEntry[];
}

export type FailoverAction =
  /** No failover in progress and the head is healthy. */
  | { kind: "idle" }
  /**
   * Write `status.failover = record` (and, when set, `status.epoch` and `status.head`) in one status
   * update guarded by the resourceVersion observed. With `switchService`, the head Service's
   * selector is pointed at `epoch` at the same time (two requests in flight at once, not one after
   * the other).
   */
  | {
      kind: "recordStep";
      step: FailoverStep;
      record: FailoverRecord;
      epoch?: number;
      head?: HeadRef;
      switchService?: boolean;
    }
  /** Update the lease's holderIdentity, guarded by expectedResourceVersion. */
  | { kind: "casLease"; leaseName: string; expectedResourceVersion: string; from: SlotHolder; to: SlotHolder }
  /**
   * Tell the claim (status Revoking, annotation, Event) unless told, and delete its tenant pod with
   * the emergency grace unless it is gone.
   */
  | { kind: "revokeClaim"; claim: ClaimRef; leaseName: string; node: string; graceSeconds: number }
  /** Delete the slot's placeholder pod with no grace: it only holds capacity. */
  | { kind: "deletePlaceholder"; leaseName: string; node: string }
  /** Create the head pod of `epoch`, pinned to `node` and labelled with the epoch. */
  | { kind: "createHead"; podName: string; epoch: number; node: string; zone: string; slot: string }
  /**
   * Delete a head pod of the target epoch that failed, sits on a failed node or belongs to another
   * slot; only the pod of `uid` when given (the name may already be another pod's).
   */
  | { kind: "deleteNewHead"; podName: string; force: boolean; uid?: string }
  /** Point the head Service's selector at `epoch`. */
  | { kind: "switchService"; epoch: number }
  /** Delete the failed head pod; force (grace 0) when its node is gone or NotReady. */
  | { kind: "deleteOldHead"; podName: string; force: boolean }
  | { kind: "wait"; reason: FailoverWaitReason; message: string; requeueAfterMs: number }
  /**
   * Clear `status.failover`, write `status.lastFailover = summary` and count the failover, in one
   * status update guarded by the resourceVersion observed.
   */
  | { kind: "finish"; record: FailoverRecord; summary: FailoverSummary };

export interface FailoverOptions {
  /** Requeue while pods start or terminate. */
  pollMs: number;
  /** Requeue while no slot can be had. */
  noSlotRetryMs: number;
  /** How long to wait for the pool to replace the slot before finishing without it. */
  replenishTimeoutMs: number;
}

/** Entries kept in a record's timeline (the status schema's bound). */
export const MAX_FAILOVER_TIMELINE = 16;
/** Abandoned slots kept in a record (the status schema's bound). */
const MAX_ABANDONED_SLOTS = 32;

export const DEFAULT_FAILOVER_OPTIONS: FailoverOptions = {
  pollMs: 250,
  noSlotRetryMs: 2000,
  replenishTimeoutMs: 60_000,
};

/**
 * The next action of a failover, from the record in status and the observed cluster.
 *
 * Steps (each recorded once its effects are observed, except SlotChosen which records the choice
 * before any effect):
 * - no run, head failing → record Detected (reason, epoch at detection, the old head), together
 *   with SlotChosen when a slot can be had at once: one status write before the first effect;
 * - Detected → choose a slot (chooseFailoverSlot, avoiding the old head's zone) and record SlotChosen
 *   with the slot, the victim and targetEpoch = epochAtDetection + 1;
 * - SlotChosen → compare-and-swap the lease to `service:<ns>/<name>`; if before that the lease changed
 *   holder, vanished or its node failed, choose again (nothing was taken yet); once held, revoke the
 *   victim and remove the placeholder, wait until both pods are gone, then create the head pod of the
 *   target epoch on the slot's node and record Revoked and HeadStarted together (a head pod found
 *   at SlotChosen is this run's: when the lease is lost it is removed at once, then the slot is
 *   taken again or another chosen, as before the swap);
 * - Revoked (recorded alone by earlier versions) → create the head pod, record HeadStarted;
 * - HeadStarted → wait until Ready, record RoutingSwitched together with status.epoch = targetEpoch
 *   and status.head while switching the Service to the target epoch (both requests at once); a head
 *   not Ready within headStartDeadlineMs of HeadStarted gives its slot up (below), its node avoided
 *   from then on;
 * - RoutingSwitched → switch the Service again unless it is seen routing to the target epoch, delete
 *   the old head (forced on a failed node), release its slot if it had one, record OldHeadFenced;
 * - OldHeadFenced → wait for the pool to replace the slot (at most replenishTimeoutMs), record
 *   Replenished;
 * - Replenished → release any other slot the service holds, then finish (Done).
 * Before routing switches, if the taken slot's node fails, the lease is lost or the head misses its
 * deadline, the run gives the slot up: it deletes the new head pod, records Detected with the slot as
 * abandoned (a timeline entry names it and the reason), releases the lease by compare-and-swap, and
 * chooses again, never that slot, keeping the target epoch. Until Detected is recorded the give-up is
 * decided again from the record at every call (a passed deadline stays passed), so a crash repeats
 * only the pod deletion, which is idempotent.
 */
export function nextFailoverAction(
  state: FailoverRecord | undefined,
  observed: FailoverObserved,
  options: Partial<FailoverOptions> = {},
): FailoverAction {
  const opts = { ...DEFAULT_FAILOVER_OPTIONS, ...options };
  if (!state || state.step === FailoverStep.Done) return detect(observed, opts);
  const needsSlot = [
    FailoverStep.SlotChosen,
    FailoverStep.Revoked,
    FailoverStep.HeadStarted,
  ] as FailoverStep[];
  if (needsSlot.includes(state.step) && (state.slot === undefined || state.targetEpoch === undefined)) {
    // A record missing its choice (edited by hand, or written by an older operator): choose again.
    return chooseSlot(state, observed, opts);
  }
  switch (state.step) {
    case FailoverStep.Detected:
      return chooseSlot(state, observed, opts);
    case FailoverStep.SlotChosen:
      return takeSlot(state, observed, opts);
    case FailoverStep.Revoked:
    case FailoverStep.HeadStarted:
      return startHead(state, observed, opts);
    case FailoverStep.RoutingSwitched:
      return fenceOldHead(state, observed, opts);
    case FailoverStep.OldHeadFenced:
      return replenish(state, observed, opts);
    case FailoverStep.Replenished:
      return finish(state, observed);
  }
}

function detect(observed: FailoverObserved, opts: FailoverOptions): FailoverAction {
  const { health } = observed;
  // Paused: the failed head is reported by the steady path, not replaced (a run in progress goes on).
  if (health.healthy || observed.paused) return { kind: "idle" };
  const record = beginFailover({
    now: observed.now,
    epoch: observed.epoch,
    reason: health.reason,
    message: health.message,
    ...(observed.head ? { head: observed.head } : {}),
  });
  return startFailover(record, observed, opts);
}

/**
 * The first write of a run that begins with `detected` (beginFailover's record): SlotChosen with
 * Detected before it in the timeline when a slot can be had now, so the run makes one status
 * write before its first effect; Detected alone when it must wait for one.
 */
export function startFailover(
  detected: FailoverRecord,
  observed: FailoverObserved,
  options: Partial<FailoverOptions> = {},
): Extract<FailoverAction, { kind: "recordStep" }> {
  const chosen = chooseSlot(detected, observed, { ...DEFAULT_FAILOVER_OPTIONS, ...options });
  return chosen.kind === "recordStep" && chosen.step === FailoverStep.SlotChosen
    ? chosen
    : { kind: "recordStep", step: FailoverStep.Detected, record: detected };
}

/**
 * The Detected record that starts a run. nextFailoverAction writes it when the head fails; a
 * controller may write it itself to move the head on purpose (a switchover), with its own reason.
 */
export function beginFailover(input: {
  now: number;
  /** `status.epoch`. */
  epoch: number;
  reason: string;
  message?: string;
  /** `status.head`: the head being replaced. */
  head?: HeadRef;
}): FailoverRecord {
  const record: FailoverRecord = {
    step: FailoverStep.Detected,
    startedAt: input.now,
    reason: input.reason,
    epochAtDetection: input.epoch,
    timeline: [{ step: FailoverStep.Detected, at: input.now }],
  };
  if (input.message !== undefined) record.message = input.message;
  if (input.head) record.oldHead = { ...input.head };
  return record;
}

function advance(
  state: FailoverRecord,
  step: FailoverStep,
  now: number,
  changes: Partial<FailoverRecord> = {},
  note: Omit<FailoverTimelineEntry, "step" | "at"> = {},
): FailoverRecord {
  const timeline = [...state.timeline, { step, at: now, ...note }];
  // Status keeps a bounded timeline: the first entry (detection) and the latest ones.
  if (timeline.length > MAX_FAILOVER_TIMELINE) timeline.splice(1, timeline.length - MAX_FAILOVER_TIMELINE);
  return { ...state, ...changes, step, timeline };
}

function recordStep(
  state: FailoverRecord,
  step: FailoverStep,
  now: number,
  changes: Partial<FailoverRecord> = {},
): FailoverAction {
  return { kind: "recordStep", step, record: advance(state, step, now, changes) };
}

function wait(reason: FailoverWaitReason, message: string, requeueAfterMs: number): FailoverAction {
  return { kind: "wait", reason, message, requeueAfterMs };
}

function serviceHolder(observed: FailoverObserved): SlotHolder {
  return { kind: "service", namespace: observed.service.namespace, name: observed.service.name };
}

function heldByService(slot: SlotView | undefined, observed: FailoverObserved): boolean {
  return (
    slot !== undefined &&
    slot.holder.kind === "service" &&
    slot.holder.namespace === observed.service.namespace &&
    slot.holder.name === observed.service.name
  );
}

function nodeReady(observed: FailoverObserved, name: string): boolean {
  return observed.pool?.nodes.some((node) => node.name === name && node.ready) ?? false;
}

function findSlot(observed: FailoverObserved, leaseName: string | undefined): SlotView | undefined {
  return leaseName === undefined
    ? undefined
    : observed.pool?.slots.find((slot) => slot.leaseName === leaseName);
}

/** Detected (or a slot given up): choose a slot and record it, with the target epoch, before any effect. */
function chooseSlot(
  state: FailoverRecord,
  observed: FailoverObserved,
  opts: FailoverOptions,
): FailoverAction {
  const pool = observed.pool;
  if (!pool) return wait(FailoverWaitReason.NoPool, "the service's pool does not exist", opts.noSlotRetryMs);
  // A slot given up goes back to the pool before another is taken (its head pod is already gone).
  const stillHeld = pool.slots
    .filter(
      (slot) =>
        state.abandonedSlots?.includes(slot.leaseName) &&
        slot.leaseName !== state.slot?.leaseName &&
        heldByService(slot, observed),
    )
    .sort((a, b) => compareStrings(a.leaseName, b.leaseName))[0];
  if (stillHeld) return giveBack(stillHeld);
  if (pool.refusal) return wait(FailoverWaitReason.NamespaceNotAllowed, pool.refusal, opts.noSlotRetryMs);
  const excluded = [...(state.abandonedSlots ?? [])];
  if (state.oldHead?.slot) excluded.push(state.oldHead.slot);
  const rules = {
    service: observed.service,
    nodes: pool.nodes,
    claims: pool.claims,
    ...(state.oldHead?.zone !== undefined ? { failedZone: state.oldHead.zone } : {}),
    ...(observed.failedZones ? { failedZones: observed.failedZones } : {}),
    exclude: excluded,
    ...(state.abandonedNodes?.length ? { avoidNodes: state.abandonedNodes } : {}),
    ...(pool.placement ? { placement: pool.placement } : {}),
  };
  // The best slot may be one another failover just chose (several workers decide from the same
  // ledger at once). Then the best slot with that failover's choices counted as its service's, if it
  // is as good: else both race for it, and the Lease's compare-and-swap decides.
  const plain = chooseFailoverSlot({ ...rules, slots: pool.slots });
  const elsewhere = new Map((pool.chosenElsewhere ?? []).map((c) => [c.leaseName, c.service]));
  let choice = plain;
  if (plain.kind === "slot" && elsewhere.has(plain.slot.leaseName)) {
    const promised = pool.slots.map((slot): SlotView => {
      const service = elsewhere.get(slot.leaseName);
      return service && slot.holder.kind !== "service"
        ? { ...slot, holder: { kind: "service", ...service } }
        : slot;
    });
    const alternative = chooseFailoverSlot({ ...rules, slots: promised });
    if (alternative.kind === "slot" && asGoodSlot(alternative, plain, rules)) choice = alternative;
  }
  if (choice.kind === "none")
    return wait(FailoverWaitReason.NoSlotAvailable, choice.message, opts.noSlotRetryMs);
  const { slot, victim } = choice;
  const changes: Partial<FailoverRecord> = {
    targetEpoch: state.targetEpoch ?? state.epochAtDetection + 1,
    slot: { leaseName: slot.leaseName, index: slot.index, zone: slot.zone, node: slot.node },
    victim: victim ? { namespace: victim.namespace, name: victim.name } : undefined,
  };
  const next = advance(state, FailoverStep.SlotChosen, observed.now, changes);
  if (next.victim === undefined) delete next.victim;
  return { kind: "recordStep", step: FailoverStep.SlotChosen, record: next };
}

/** SlotChosen: take the lease, then vacate the slot (victim and placeholder), then record Revoked. */
function takeSlot(state: FailoverRecord, observed: FailoverObserved, opts: FailoverOptions): FailoverAction {
  const chosen = state.slot!;
  if (!observed.pool)
    return wait(FailoverWaitReason.NoPool, "the service's pool does not exist", opts.noSlotRetryMs);
  const lease = findSlot(observed, chosen.leaseName);
  // The head pod is created before Revoked is recorded: one found here with the Lease no longer
  // held is this run's, on a slot it lost. It goes at once; then the run takes the slot again or
  // chooses again, as when the slot changed before it was taken.
  if (!heldByService(lease, observed) && observed.newHead.presence !== "absent")
    return {
      kind: "deleteNewHead",
      podName: headPodName(observed.service.name, state.targetEpoch!),
      force: true,
      ...uidOf(observed.newHead),
    };

  if (!heldByService(lease, observed)) {
    const expected: SlotHolder = state.victim ? { kind: "claim", ...state.victim } : { kind: "free" };
    const unchanged =
      lease !== undefined &&
      lease.node === chosen.node &&
      nodeReady(observed, chosen.node) &&
      lease.holder.kind === expected.kind &&
      (expected.kind === "free" ||
        (lease.holder.kind === "claim" &&
          lease.holder.namespace === expected.namespace &&
          lease.holder.name === expected.name));
    // Nothing was taken yet: when the slot changed under us, choose again on what is there now (the
    // new choice always differs from the record, since the recorded one no longer matches).
    if (!unchanged) return chooseSlot(state, observed, opts);
    return {
      kind: "casLease",
      leaseName: lease.leaseName,
      expectedResourceVersion: lease.resourceVersion,
      from: lease.holder,
      to: serviceHolder(observed),
    };
  }

  if (!nodeReady(observed, chosen.node)) return giveUpSlot(state, observed, "NodeNotReady", opts);
  if (state.victim) {
    if (observed.victimClaim === "unnotified" || observed.slotPods.tenant === "present") {
      return {
        kind: "revokeClaim",
        claim: state.victim,
        leaseName: chosen.leaseName,
        node: chosen.node,
        graceSeconds: observed.pool.emergencyGraceSeconds,
      };
    }
  }
  if (observed.slotPods.placeholder === "present") {
    return { kind: "deletePlaceholder", leaseName: chosen.leaseName, node: chosen.node };
  }
  if (observed.slotPods.tenant !== "absent" || observed.slotPods.placeholder !== "absent") {
    return wait(
      FailoverWaitReason.SlotVacating,
      `waiting for the pods on slot ${chosen.leaseName} to terminate`,
      opts.pollMs,
    );
  }
  // Vacated: start the head at once and record Revoked with HeadStarted, one status write.
  return startHead(advance(state, FailoverStep.Revoked, observed.now), observed, opts);
}

/** Whether the observed head pod was made for `slot`: its slot label and node, where known, are the slot's. */
function onSlot(head: FailoverObserved["newHead"], slot: ChosenSlot): boolean {
  return (head.slot ?? slot.leaseName) === slot.leaseName && (head.node ?? slot.node) === slot.node;
}

/** The observed pod's uid as a deletion's precondition, when known. */
function uidOf(head: FailoverObserved["newHead"]): { uid?: string } {
  return head.uid !== undefined ? { uid: head.uid } : {};
}

/** Revoked and HeadStarted: the head of the target epoch runs, becomes Ready, takes the routing. */
function startHead(state: FailoverRecord, observed: FailoverObserved, opts: FailoverOptions): FailoverAction {
  const chosen = state.slot!;
  const epoch = state.targetEpoch!;
  const podName = headPodName(observed.service.name, epoch);
  if (!observed.pool)
    return wait(FailoverWaitReason.NoPool, "the service's pool does not exist", opts.noSlotRetryMs);
  const head = observed.newHead;
  const lease = findSlot(observed, chosen.leaseName);
  // A pod of another slot or node is the head of a slot this run gave up (still in the cache, or its
  // removal failed): not this slot's head, so neither judged, recorded nor routed to as one. That
  // pod alone goes (by uid: the name may already be this slot's new head's); then this slot's is
  // created. One terminating waits below, as this slot's would.
  if (head.presence === "present" && !onSlot(head, chosen))
    return { kind: "deleteNewHead", podName, force: true, ...uidOf(head) };
  // Reasons in an order that does not change as the give-up proceeds: the deadline, once passed, stays
  // passed, and a failed node stays failed while the lease goes back; a lost lease comes last.
  if (state.step === FailoverStep.HeadStarted && !head.ready && headStartExpired(state, observed))
    return giveUpSlot(state, observed, "HeadNotReady", opts);
  if (!nodeReady(observed, chosen.node)) return giveUpSlot(state, observed, "NodeNotReady", opts);
  if (!heldByService(lease, observed)) return giveUpSlot(state, observed, "LeaseLost", opts);
  if (head.presence === "absent") {
    return {
      kind: "createHead",
      podName,
      epoch,
      node: chosen.node,
      zone: chosen.zone,
      slot: chosen.leaseName,
    };
  }
  if (head.presence === "terminating") {
    return wait(FailoverWaitReason.HeadTerminating, `head pod ${podName} is terminating`, opts.pollMs);
  }
  if (head.phase === "Failed" || head.phase === "Succeeded") {
    return { kind: "deleteNewHead", podName, force: false, ...uidOf(head) };
  }
  if (state.step === FailoverStep.Revoked) return recordStep(state, FailoverStep.HeadStarted, observed.now);
  if (!head.ready) {
    const left = headStartedAt(state) + observed.headStartDeadlineMs - observed.now;
    return wait(
      FailoverWaitReason.HeadStarting,
      `waiting for head pod ${podName} to be Ready (its slot is given up in ${Math.ceil(left / 1000)}s)`,
      Math.min(opts.pollMs, Math.max(left, 1)),
    );
  }
  // The Service is switched with the record, not before it: one round trip fewer before clients that
  // read status.head find the new head. Should the switch fail where the record lands,
  // RoutingSwitched switches again.
  return {
    kind: "recordStep",
    step: FailoverStep.RoutingSwitched,
    record: advance(state, FailoverStep.RoutingSwitched, observed.now),
    epoch,
    head: { pod: podName, node: chosen.node, zone: chosen.zone, slot: chosen.leaseName },
    ...(observed.routedEpoch !== epoch ? { switchService: true } : {}),
  };
}

/** When the current slot's head was recorded as started (the last HeadStarted entry). */
function headStartedAt(state: FailoverRecord): number {
  return (
    [...state.timeline].reverse().find((entry) => entry.step === FailoverStep.HeadStarted)?.at ??
    state.startedAt
  );
}

function headStartExpired(state: FailoverRecord, observed: FailoverObserved): boolean {
  return observed.now - headStartedAt(state) >= observed.headStartDeadlineMs;
}

/**
 * The taken slot is given up before routing switched: its node failed, its lease was lost, or its head
 * was not Ready in time. Remove the new head pod from it, then record Detected with the slot among the
 * abandoned ones (and a timeline entry naming it and the reason), keeping the target epoch; choosing
 * again gives the lease back before anything else. A head that missed its deadline on a Ready node is
 * deleted gracefully and waited for, so no pod of the service runs on the slot once the pool has it
 * back; on a failed node it is removed at once (the node cannot confirm).
 */
function giveUpSlot(
  state: FailoverRecord,
  observed: FailoverObserved,
  reason: SlotAbandonReason,
  opts: FailoverOptions,
): FailoverAction {
  const chosen = state.slot!;
  const podName = headPodName(observed.service.name, state.targetEpoch!);
  const head = observed.newHead;
  if (head.presence !== "absent") {
    const graceful = reason === "HeadNotReady" && nodeReady(observed, chosen.node);
    if (!graceful) return { kind: "deleteNewHead", podName, force: true, ...uidOf(head) };
    if (head.presence === "present") return { kind: "deleteNewHead", podName, force: false, ...uidOf(head) };
    return wait(
      FailoverWaitReason.HeadTerminating,
      `head pod ${podName} was not Ready in time; waiting for it to terminate before giving slot ${chosen.leaseName} back`,
      opts.pollMs,
    );
  }
  // Recorded while the service still holds the lease: choosing again releases it first.
  const changes: Partial<FailoverRecord> = {
    abandonedSlots: [...(state.abandonedSlots ?? []), chosen.leaseName].slice(-MAX_ABANDONED_SLOTS),
  };
  if (reason === "HeadNotReady" && !state.abandonedNodes?.includes(chosen.node))
    changes.abandonedNodes = [...(state.abandonedNodes ?? []), chosen.node].slice(-MAX_ABANDONED_SLOTS);
  const next = advance(state, FailoverStep.Detected, observed.now, changes, {
    abandonedSlot: chosen.leaseName,
    reason,
  });
  delete next.slot;
  delete next.victim;
  return { kind: "recordStep", step: FailoverStep.Detected, record: next };
}

/** RoutingSwitched: the old head goes (forced on a failed node) and its slot, if any, is released. */
function fenceOldHead(
  state: FailoverRecord,
  observed: FailoverObserved,
  opts: FailoverOptions,
): FailoverAction {
  // The switch went out with the RoutingSwitched record; a reconcile that cannot tell it landed (the
  // routing not read, or read otherwise) makes it again before the old head goes.
  // Only ever up: a Service already at a later epoch is not this run's to move.
  if (state.targetEpoch !== undefined && (observed.routedEpoch ?? 0) < state.targetEpoch)
    return { kind: "switchService", epoch: state.targetEpoch };
  const old = state.oldHead;
  if (old) {
    const pod = observed.oldHead;
    if (pod.presence === "present" || (pod.presence === "terminating" && !pod.nodeReady)) {
      return { kind: "deleteOldHead", podName: old.pod, force: !pod.nodeReady };
    }
    if (pod.presence === "terminating") {
      return wait(
        FailoverWaitReason.OldHeadTerminating,
        `waiting for old head pod ${old.pod} to terminate`,
        opts.pollMs,
      );
    }
    const oldSlot = findSlot(observed, old.slot);
    if (oldSlot && old.slot !== state.slot?.leaseName && heldByService(oldSlot, observed)) {
      return {
        kind: "casLease",
        leaseName: oldSlot.leaseName,
        expectedResourceVersion: oldSlot.resourceVersion,
        from: oldSlot.holder,
        to: { kind: "free" },
      };
    }
  }
  return recordStep(state, FailoverStep.OldHeadFenced, observed.now);
}

/** OldHeadFenced: give the pool a bounded time to replace the slot the failover took. */
function replenish(state: FailoverRecord, observed: FailoverObserved, opts: FailoverOptions): FailoverAction {
  // A second slot the service holds would count as an earlier take not yet replaced: it goes first.
  const stray = straySlot(state, observed);
  if (stray) return giveBack(stray);
  if (observed.pool && slotReplaced(observed.pool, findSlot(observed, state.slot?.leaseName)))
    return recordStep(state, FailoverStep.Replenished, observed.now);
  const fencedAt =
    [...state.timeline].reverse().find((entry) => entry.step === FailoverStep.OldHeadFenced)?.at ??
    observed.now;
  const left = fencedAt + opts.replenishTimeoutMs - observed.now;
  if (left <= 0)
    return recordStep(state, FailoverStep.Replenished, observed.now, { replenishDeferred: true });
  return wait(
    FailoverWaitReason.Replenishing,
    "waiting for the pool to replace the slot it lost",
    Math.min(left, opts.noSlotRetryMs),
  );
}

/**
 * Whether the pool has replaced `taken`, the slot a failover took: its zone lacks no more tenant
 * slots than services took there after it (by the Leases' acquireTime, then name), so the
 * replacements made so far count for the earliest takes first, and a shortage the zone had before
 * is served before them. Each failover of a zone outage finishes as its own slot is replaced, not
 * when the last one is. Without the slot or the time it was taken to go by, the pool must miss no
 * tenant slot at all.
 */
export function slotReplaced(pool: FailoverPoolObservation, taken: SlotView | undefined): boolean {
  if (taken?.acquiredAt === undefined)
    return Object.values(pool.tenantSlotsMissing).every((missing) => missing <= 0);
  const takenAfter = pool.slots.filter(
    (slot) => slot.zone === taken.zone && slot.holder.kind === "service" && takenLater(slot, taken),
  ).length;
  return (pool.tenantSlotsMissing[taken.zone] ?? 0) <= takenAfter;
}

/** How many tenant slots (free or leased) each zone of a pool lacks against its spec. */
export function tenantSlotsMissing(
  zones: readonly { name: string; slots: number }[],
  slots: readonly SlotView[],
): Record<string, number> {
  const tenant = new Map<string, number>();
  for (const slot of slots)
    if (slot.holder.kind !== "service") tenant.set(slot.zone, (tenant.get(slot.zone) ?? 0) + 1);
  return Object.fromEntries(
    zones.map((zone) => [zone.name, Math.max(0, zone.slots - (tenant.get(zone.name) ?? 0))]),
  );
}

function takenLater(slot: SlotView, than: SlotView): boolean {
  const [at, thanAt] = [slot.acquiredAt ?? 0, than.acquiredAt ?? 0];
  return at !== thanAt ? at > thanAt : compareStrings(slot.leaseName, than.leaseName) > 0;
}

/** A slot the service holds besides its new head's, the first by name. */
function straySlot(state: FailoverRecord, observed: FailoverObserved): SlotView | undefined {
  return observed.pool?.slots
    .filter((slot) => heldByService(slot, observed) && slot.leaseName !== state.slot?.leaseName)
    .sort((a, b) => compareStrings(a.leaseName, b.leaseName))[0];
}

/** Gives a slot the service holds back to the pool: a compare-and-swap on its Lease. */
function giveBack(slot: SlotView): FailoverAction {
  return {
    kind: "casLease",
    leaseName: slot.leaseName,
    expectedResourceVersion: slot.resourceVersion,
    from: slot.holder,
    to: { kind: "free" },
  };
}

/** Replenished: release any slot the service holds besides its head's, then finish. */
function finish(state: FailoverRecord, observed: FailoverObserved): FailoverAction {
  const stray = straySlot(state, observed);
  if (stray) return giveBack(stray);
  const done = advance(state, FailoverStep.Done, observed.now);
  const summary: FailoverSummary = {
    startedAt: state.startedAt,
    finishedAt: observed.now,
    durationMilliseconds: observed.now - state.startedAt,
    reason: state.reason,
    timeline: done.timeline,
  };
  if (state.oldHead?.zone !== undefined) summary.fromZone = state.oldHead.zone;
  if (state.slot) {
    summary.toZone = state.slot.zone;
    summary.slot = state.slot.leaseName;
  }
  if (state.victim) summary.revokedClaim = state.victim;
  if (state.targetEpoch !== undefined) summary.epoch = state.targetEpoch;
  return { kind: "finish", record: done, summary };
}
