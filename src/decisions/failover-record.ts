// The failover record as StorageService.status.failover stores it (flat fields, RFC 3339 times) and
// back, so the controller writes and reads the step machine's state without losing a field.
import type { FailoverStatus } from "../api/storage-service.ts";
import type { ChosenSlot, FailoverRecord, FailoverTimelineEntry, HeadRef } from "./failover-steps.ts";
import { headPodName } from "./names.ts";

const iso = (ms: number): string => new Date(ms).toISOString();

function ms(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Date.parse(text);
  return Number.isNaN(value) ? undefined : value;
}

/** The record as `status.failover` (and `status.lastFailover`) fields; `service` names the head pod. */
export function toFailoverStatus(record: FailoverRecord, service: string): FailoverStatus {
  const status: FailoverStatus = {
    step: record.step,
    startedAt: iso(record.startedAt),
    reason: record.reason,
    fromEpoch: record.epochAtDetection,
    timeline: record.timeline.map((entry) => ({ ...entry, at: iso(entry.at) })),
  };
  if (record.message !== undefined) status.message = record.message;
  if (record.oldHead) {
    status.fromPod = record.oldHead.pod;
    if (record.oldHead.node !== undefined) status.fromNode = record.oldHead.node;
    if (record.oldHead.zone !== undefined) status.fromZone = record.oldHead.zone;
    if (record.oldHead.slot !== undefined) status.fromSlot = record.oldHead.slot;
  }
  if (record.targetEpoch !== undefined) {
    status.epoch = record.targetEpoch;
    status.headPod = headPodName(service, record.targetEpoch);
  }
  if (record.slot) {
    status.leaseName = record.slot.leaseName;
    if (record.slot.index !== undefined) status.slot = String(record.slot.index);
    status.toZone = record.slot.zone;
    status.toNode = record.slot.node;
  }
  if (record.victim) status.revokedClaim = `${record.victim.namespace}/${record.victim.name}`;
  if (record.abandonedSlots?.length) status.abandonedSlots = [...record.abandonedSlots];
  if (record.abandonedNodes?.length) status.abandonedNodes = [...record.abandonedNodes];
  if (record.replenishDeferred) status.replenishDeferred = true;
  return status;
}

/**
 * The record stored in `status.failover`, or undefined when it lacks what a run needs to resume (a
 * start time, the epoch it started from, or a complete chosen slot).
 */
export function fromFailoverStatus(status: FailoverStatus): FailoverRecord | undefined {
  const startedAt = ms(status.startedAt);
  const epochAtDetection = status.fromEpoch ?? (status.epoch !== undefined ? status.epoch - 1 : undefined);
  if (startedAt === undefined || epochAtDetection === undefined) return undefined;

  const record: FailoverRecord = {
    step: status.step,
    startedAt,
    reason: status.reason ?? "Unknown",
    epochAtDetection,
    timeline: (status.timeline ?? []).flatMap((entry) => {
      const at = ms(entry.at);
      if (at === undefined) return [];
      const read: FailoverTimelineEntry = { step: entry.step, at };
      if (entry.abandonedSlot !== undefined) read.abandonedSlot = entry.abandonedSlot;
      if (entry.reason !== undefined) read.reason = entry.reason;
      return [read];
    }),
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
  const anySlotField = [status.leaseName, status.slot, status.toZone, status.toNode].some(
    (f) => f !== undefined,
  );
  if (anySlotField) {
    const badIndex = status.slot !== undefined && !/^\d+$/.test(status.slot);
    if (
      status.leaseName === undefined ||
      status.toZone === undefined ||
      status.toNode === undefined ||
      badIndex
    ) {
      return undefined;
    }
    const slot: ChosenSlot = { leaseName: status.leaseName, zone: status.toZone, node: status.toNode };
    if (status.slot !== undefined) slot.index = Number(status.slot);
    record.slot = slot;
  }
  if (status.revokedClaim !== undefined) {
    const [namespace, name, ...rest] = status.revokedClaim.split("/");
    if (!namespace || !name || rest.length > 0) return undefined;
    record.victim = { namespace, name };
  }
  if (status.abandonedSlots?.length) record.abandonedSlots = [...status.abandonedSlots];
  if (status.abandonedNodes?.length) record.abandonedNodes = [...status.abandonedNodes];
  if (status.replenishDeferred) record.replenishDeferred = true;
  return record;
}
