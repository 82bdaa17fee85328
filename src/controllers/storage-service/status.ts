// StorageService.status as the reconciler writes it: the summary of the last failover, the head,
// conditions, phase, and merge patches that replace nested objects whole. Pure functions. (The
// record in progress goes to and from status.failover through src/decisions/failover-record.ts.)
import {
  type ConditionInput,
  setCondition,
  type Condition,
  type HeadStatus,
  type LastFailover,
  type StorageServicePhase,
  type StorageServiceStatus,
} from "../../api/index.ts";
import { toFailoverStatus } from "../../decisions/failover-record.ts";
import type { FailoverRecord, FailoverSummary, HeadRef } from "../../decisions/failover-steps.ts";

/** Why a switchover's failover ran, in status.failover.reason and the metrics' reason label. */
export const MANUAL_REASON = "Manual";

/** status.lastFailover: the finished record with its end and duration. */
export function lastFailoverOf(
  record: FailoverRecord,
  summary: FailoverSummary,
  service: string,
): LastFailover {
  return {
    ...toFailoverStatus(record, service),
    finishedAt: new Date(summary.finishedAt).toISOString(),
    durationMilliseconds: Math.max(0, Math.round(summary.durationMilliseconds)),
  };
}

/** status.head from the decision's head, with the epoch, the slot's index when known, and when it took over. */
export function headStatusOf(head: HeadRef, epoch: number, since: number, slotIndex?: number): HeadStatus {
  const out: HeadStatus = { pod: head.pod, epoch, since: new Date(since).toISOString() };
  if (head.node !== undefined) out.node = head.node;
  if (head.zone !== undefined) out.zone = head.zone;
  if (head.slot !== undefined) {
    out.leaseName = head.slot;
    if (slotIndex !== undefined) out.slot = String(slotIndex);
  }
  return out;
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

export type { ConditionInput };

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
