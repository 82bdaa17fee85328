// Failback: moving a head that runs on a pool slot back to normal capacity in the primary zone, and
// giving the slot back to the pool. A pure decision over the record in status.failback and what is
// observed, like the failover's: the record is written before its effects, every effect is guarded
// by what is observed, so a restarted operator finishes a failback without doing anything twice.
//
// Started (record written: target epoch = epoch + 1) -> a normal head of that epoch is scheduled in
// the primary zone -> once Ready, the head Service selects it -> RoutingSwitched (written with
// status.epoch and status.head) -> the head on the slot is removed -> the slot Lease goes back to
// free (compare-and-swap) -> done. A new head that is not Ready within the time allowed is removed and
// the failback abandoned: the head on the slot never stopped serving.
import {
  DEFAULT_HEAD_START_DEADLINE_SECONDS,
  type FailbackPolicy,
  type FailbackStatus,
  type LastFailback,
} from "../api/index.ts";
import type { HeadRef } from "./failover-steps.ts";
import { headPodName } from "./names.ts";
import type { PodPhase, PodPresence, ServiceRef } from "./types.ts";

export interface FailbackObserved {
  now: number;
  service: ServiceRef;
  /** status.epoch. */
  epoch: number;
  /** status.head; `slot` is set while the head runs on a pool slot. */
  head?: HeadRef;
  /** The head is healthy, Ready and selected by the head Service. */
  headServing: boolean;
  policy: FailbackPolicy;
  stableMs: number;
  /** The value of the failback annotation when it differs from the one last handled. */
  manualRequest?: string;
  lastFailoverFinishedAt?: number;
  /** When the last failback was abandoned, if it was: Automatic waits stableMs after it. */
  lastAbandonedAt?: number;
  primaryZone: string;
  /** Since when a Ready, schedulable node of the primary zone has been Ready; undefined when none is. */
  primaryReadySince?: number;
  /** The head pod of the record's epoch. */
  newHead: { presence: PodPresence; phase?: PodPhase; ready: boolean; node?: string };
  routedEpoch?: number;
  /** The head pod on the slot. */
  oldHead: { presence: PodPresence; nodeReady: boolean };
  /** The record's slot Lease, when the service still holds it. */
  heldSlot?: { leaseName: string; resourceVersion: string };
}

export type FailbackAction =
  | { kind: "idle"; recheckAfterMs?: number }
  /** A manual request that cannot be honoured now: record it as handled and say why. */
  | { kind: "refuse"; request: string; message: string }
  | { kind: "start"; record: FailbackStatus; handledRequest?: string }
  | { kind: "createHead"; podName: string; epoch: number; zone: string }
  | { kind: "deleteNewHead"; podName: string }
  | { kind: "switchService"; epoch: number }
  | { kind: "recordSwitched"; record: FailbackStatus; epoch: number; head: HeadRef }
  | { kind: "deleteOldHead"; podName: string; force: boolean }
  | { kind: "releaseSlot"; leaseName: string; expectedResourceVersion: string }
  | { kind: "finish"; last: LastFailback }
  | { kind: "wait"; message: string; requeueAfterMs: number };

export interface FailbackOptions {
  /** How long the new head may take to become Ready before the failback is abandoned (spec.failover.headStartDeadlineSeconds). */
  startTimeoutMs: number;
  pollMs: number;
  /** How often an Automatic service on a slot looks again while its primary zone has no Ready node. */
  idleRecheckMs: number;
}

const DEFAULT_FAILBACK_OPTIONS: FailbackOptions = {
  startTimeoutMs: DEFAULT_HEAD_START_DEADLINE_SECONDS * 1000,
  pollMs: 250,
  idleRecheckMs: 10_000,
};

export function nextFailbackAction(
  record: FailbackStatus | undefined,
  observed: FailbackObserved,
  options: Partial<FailbackOptions> = {},
): FailbackAction {
  const opts = { ...DEFAULT_FAILBACK_OPTIONS, ...options };
  if (!record) return consider(observed, opts);
  return record.step === "Started"
    ? startNewHead(record, observed, opts)
    : retireSlotHead(record, observed, opts);
}

function consider(observed: FailbackObserved, opts: FailbackOptions): FailbackAction {
  const onSlot = observed.head?.slot !== undefined;
  if (observed.manualRequest !== undefined) {
    const request = observed.manualRequest;
    if (!onSlot) return { kind: "refuse", request, message: "the head does not run on a pool slot" };
    if (observed.primaryReadySince === undefined)
      return {
        kind: "refuse",
        request,
        message: `no node of the primary zone ${observed.primaryZone} is Ready`,
      };
    if (!observed.headServing)
      return { kind: "refuse", request, message: "the head is not serving; a failover comes first" };
    return { kind: "start", record: startRecord(observed, "Manual"), handledRequest: request };
  }
  if (observed.policy !== "Automatic" || !onSlot || !observed.headServing) return { kind: "idle" };
  if (observed.primaryReadySince === undefined) return { kind: "idle", recheckAfterMs: opts.idleRecheckMs };
  const eligibleAt =
    Math.max(
      observed.lastFailoverFinishedAt ?? 0,
      observed.primaryReadySince,
      observed.lastAbandonedAt ?? 0,
    ) + observed.stableMs;
  if (observed.now < eligibleAt) return { kind: "idle", recheckAfterMs: eligibleAt - observed.now };
  return { kind: "start", record: startRecord(observed, "Automatic") };
}

function startRecord(observed: FailbackObserved, reason: FailbackPolicy): FailbackStatus {
  const epoch = observed.epoch + 1;
  const record: FailbackStatus = {
    step: "Started",
    startedAt: new Date(observed.now).toISOString(),
    reason,
    toZone: observed.primaryZone,
    epoch,
    headPod: headPodName(observed.service.name, epoch),
  };
  const head = observed.head;
  if (head) {
    record.fromPod = head.pod;
    if (head.node !== undefined) record.fromNode = head.node;
    if (head.zone !== undefined) record.fromZone = head.zone;
    if (head.slot !== undefined) record.fromSlot = head.slot;
  }
  return record;
}

function startNewHead(
  record: FailbackStatus,
  observed: FailbackObserved,
  opts: FailbackOptions,
): FailbackAction {
  const epoch = record.epoch!;
  const podName = record.headPod ?? headPodName(observed.service.name, epoch);
  // Once routed, the new head serves: never abandon, only record it.
  if (observed.routedEpoch === epoch) {
    const head: HeadRef = { pod: podName, zone: record.toZone! };
    if (observed.newHead.node !== undefined) head.node = observed.newHead.node;
    return { kind: "recordSwitched", record: { ...record, step: "RoutingSwitched" }, epoch, head };
  }
  const expired = observed.now - new Date(record.startedAt).getTime() > opts.startTimeoutMs;
  const pod = observed.newHead;
  if (pod.presence === "absent") {
    if (expired) return { kind: "finish", last: lastOf(record, observed.now, "Abandoned") };
    return { kind: "createHead", podName, epoch, zone: record.toZone! };
  }
  if (pod.presence === "terminating")
    return { kind: "wait", message: `head pod ${podName} is terminating`, requeueAfterMs: opts.pollMs };
  if (pod.phase === "Failed" || pod.phase === "Succeeded" || (expired && !pod.ready))
    return { kind: "deleteNewHead", podName };
  if (!pod.ready)
    return {
      kind: "wait",
      message: `waiting for head pod ${podName} to be Ready`,
      requeueAfterMs: opts.pollMs,
    };
  return { kind: "switchService", epoch };
}

function retireSlotHead(
  record: FailbackStatus,
  observed: FailbackObserved,
  opts: FailbackOptions,
): FailbackAction {
  const old = observed.oldHead;
  if (record.fromPod !== undefined) {
    if (old.presence === "present" || (old.presence === "terminating" && !old.nodeReady))
      return { kind: "deleteOldHead", podName: record.fromPod, force: !old.nodeReady };
    if (old.presence === "terminating")
      return {
        kind: "wait",
        message: `waiting for head pod ${record.fromPod} to terminate`,
        requeueAfterMs: opts.pollMs,
      };
  }
  if (observed.heldSlot)
    return {
      kind: "releaseSlot",
      leaseName: observed.heldSlot.leaseName,
      expectedResourceVersion: observed.heldSlot.resourceVersion,
    };
  return { kind: "finish", last: lastOf(record, observed.now, "Succeeded") };
}

function lastOf(record: FailbackStatus, now: number, outcome: "Succeeded" | "Abandoned"): LastFailback {
  return { ...record, finishedAt: new Date(now).toISOString(), outcome };
}
