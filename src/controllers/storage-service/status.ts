// StorageService.status as the failover state machine reads and writes it: the record in progress
// (status.failover) converted to and from the decision's FailoverRecord, the summary of the last
// one, conditions and phase. Pure functions: the reconciler writes what these return.
import {
  FAILOVER_STEPS,
  setCondition,
  type Condition,
  type FailoverStatus,
  type HeadStatus,
  type LastFailover,
  type StorageServicePhase,
  type StorageServiceStatus,
} from "../../api/index.ts";
import type {
  FailoverRecord,
  FailoverStep,
  FailoverSummary,
  HeadRef,
} from "../../decisions/failover-steps.ts";
import type { HeadFailureReason } from "../../decisions/head-health.ts";

/** Why a failover ran: a failure the operator detected, or a switchover asked for by hand. */
export type FailoverReason = HeadFailureReason | "Manual";

/** The API allows this many timeline entries; a run that chose slots again and again keeps its first and latest ones. */
export const MAX_TIMELINE = FAILOVER_STEPS.length * 2;

const iso = (ms: number) => new Date(ms).toISOString();
const ms = (text: string) => new Date(text).getTime();

function boundedTimeline(timeline: FailoverRecord["timeline"]): { step: FailoverStep; at: string }[] {
  const kept =
    timeline.length <= MAX_TIMELINE ? timeline : [timeline[0]!, ...timeline.slice(-(MAX_TIMELINE - 1))];
  return kept.map((entry) => ({ step: entry.step, at: iso(entry.at) }));
}

/** The record as written to status.failover. Optional fields are left out when unset. */
export function failoverStatusOf(record: FailoverRecord): FailoverStatus {
  const out: FailoverStatus = {
    step: record.step,
    startedAt: iso(record.startedAt),
    reason: record.reason,
    fromEpoch: record.epochAtDetection,
    timeline: boundedTimeline(record.timeline),
  };
  if (record.message !== undefined) out.message = record.message;
  if (record.oldHead) {
    out.fromPod = record.oldHead.pod;
    if (record.oldHead.node !== undefined) out.fromNode = record.oldHead.node;
    if (record.oldHead.zone !== undefined) out.fromZone = record.oldHead.zone;
    if (record.oldHead.slot !== undefined) out.fromSlot = record.oldHead.slot;
  }
  if (record.targetEpoch !== undefined) out.epoch = record.targetEpoch;
  if (record.slot) {
    out.leaseName = record.slot.leaseName;
    out.slot = record.slot.leaseName;
    out.toNode = record.slot.node;
    out.toZone = record.slot.zone;
  }
  if (record.victim) out.revokedClaim = `${record.victim.namespace}/${record.victim.name}`;
  if (record.abandonedSlots?.length) out.abandonedSlots = [...record.abandonedSlots];
  if (record.replenishDeferred) out.replenishDeferred = true;
  return out;
}

/** status.failover read back as the decision's record; undefined when no run is in progress. */
export function failoverRecordOf(status: FailoverStatus | undefined): FailoverRecord | undefined {
  if (!status) return undefined;
  const record: FailoverRecord = {
    step: status.step,
    startedAt: ms(status.startedAt),
    reason: (status.reason ?? "PodNotReady") as HeadFailureReason,
    epochAtDetection: status.fromEpoch ?? 0,
    timeline: (status.timeline ?? []).map((entry) => ({ step: entry.step, at: ms(entry.at) })),
  };
  if (status.message !== undefined) record.message = status.message;
  if (status.fromPod !== undefined) {
    const oldHead: HeadRef = { pod: status.fromPod };
    if (status.fromNode !== undefined) oldHead.node = status.fromNode;
    if (status.fromZone !== undefined) oldHead.zone = status.fromZone;
    if (status.fromSlot !== undefined) oldHead.slot = status.fromSlot;
    record.oldHead = oldHead;
  }
  if (status.epoch !== undefined) record.targetEpoch = status.epoch;
  if (status.leaseName !== undefined && status.toNode !== undefined && status.toZone !== undefined) {
    record.slot = { leaseName: status.leaseName, node: status.toNode, zone: status.toZone };
  }
  if (status.revokedClaim !== undefined) {
    const [namespace, name] = status.revokedClaim.split("/") as [string, string];
    record.victim = { namespace, name };
  }
  if (status.abandonedSlots?.length) record.abandonedSlots = [...status.abandonedSlots];
  if (status.replenishDeferred) record.replenishDeferred = true;
  return record;
}

/** status.lastFailover: the finished record with its end and duration. */
export function lastFailoverOf(record: FailoverRecord, summary: FailoverSummary): LastFailover {
  return {
    ...failoverStatusOf(record),
    finishedAt: iso(summary.finishedAt),
    durationMilliseconds: Math.max(0, Math.round(summary.durationMilliseconds)),
  };
}

/** status.head from the decision's head, with the epoch and when it took over. */
export function headStatusOf(head: HeadRef, epoch: number, since: number): HeadStatus {
  const out: HeadStatus = { pod: head.pod, epoch, since: iso(since) };
  if (head.node !== undefined) out.node = head.node;
  if (head.zone !== undefined) out.zone = head.zone;
  if (head.slot !== undefined) {
    out.leaseName = head.slot;
    out.slot = head.slot;
  }
  return out;
}

/** status.head as the decision's head reference. */
export function headRefOf(head: HeadStatus | undefined): HeadRef | undefined {
  if (!head?.pod) return undefined;
  const ref: HeadRef = { pod: head.pod };
  if (head.node !== undefined) ref.node = head.node;
  if (head.zone !== undefined) ref.zone = head.zone;
  if (head.leaseName !== undefined) ref.slot = head.leaseName;
  return ref;
}

/**
 * A JSON merge patch that makes `current` equal `next`: a merge patch merges nested objects, so a
 * field `next` lacks must be sent as null or the old value would stay.
 */
export function replacement(current: unknown, next: unknown): unknown {
  if (next === undefined) return null;
  if (!isPlainObject(next) || !isPlainObject(current)) return next;
  const patch: Record<string, unknown> = {};
  for (const key of Object.keys(current)) if (!(key in next)) patch[key] = null;
  for (const [key, value] of Object.entries(next)) patch[key] = replacement(current[key], value);
  return patch;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export type ConditionInput = Omit<Condition, "lastTransitionTime" | "observedGeneration">;

export function withConditions(
  current: readonly Condition[] | undefined,
  updates: readonly ConditionInput[],
  generation: number | undefined,
  now: number,
): Condition[] {
  let next = [...(current ?? [])];
  for (const update of updates) {
    const condition = generation === undefined ? update : { ...update, observedGeneration: generation };
    next = setCondition(next, condition, new Date(now));
  }
  return next;
}

export interface PhaseInput {
  failingOver: boolean;
  hasHead: boolean;
  headAvailable: boolean;
  serversReady: boolean;
  contingencyAvailable: boolean;
}

export function phaseOf(input: PhaseInput): StorageServicePhase {
  if (input.failingOver) return "FailingOver";
  if (!input.hasHead) return "Pending";
  if (input.headAvailable && input.serversReady && input.contingencyAvailable) return "Ready";
  if (!input.headAvailable && !input.contingencyAvailable) return "Failed";
  return "Degraded";
}

/** True when every zone has all its server replicas Ready. */
export function serversReady(servers: StorageServiceStatus["servers"], zones: readonly string[]): boolean {
  return zones.every((zone) => {
    const entry = servers?.find((s) => s.zone === zone);
    return entry !== undefined && (entry.replicas ?? 0) > 0 && entry.ready === entry.replicas;
  });
}
