// Usage accounting of one claim, kept in its status: slot-seconds held, revocations by reason, and
// time spent waiting for a slot. Derived from the ledger, not from the operator's own actions, so it
// counts whoever changed a slot's holder (a failover, the pool shrinking, the claim releasing) and
// survives operator restarts: the status holds the closed totals and the intervals still open.
//
// Times come from the Leases where they can: a slot's hold begins at its Lease's acquireTime, and
// ends at the acquireTime the Lease carries after it changed holder. Only when the Lease is gone
// does an interval end at the time it was noticed.

/** What a claim's status records (times in ms since the epoch). */
export interface UsageRecord {
  /** Slot-seconds of holds that ended. */
  slotSeconds: number;
  /** Seconds spent waiting for a slot, in waits that ended. */
  waitingSeconds: number;
  /** Slots taken from the claim, by the revoker's reason. A slot the claim gave back is not counted. */
  revocations: Record<string, number>;
  /** Holds still open: the slot and when it began. */
  held: { leaseName: string; since: number }[];
  /** When the wait now open began; undefined when the claim is not waiting. */
  waitingSince?: number;
}

export const EMPTY_USAGE: UsageRecord = { slotSeconds: 0, waitingSeconds: 0, revocations: {}, held: [] };

/** A slot Lease as the accounting reads it. */
export interface UsageLeaseView {
  leaseName: string;
  /** The Lease names this claim as holder. */
  heldByClaim: boolean;
  /** `spec.acquireTime`: when the current holder got it. */
  acquiredAt?: number;
  /** The revoker's reason, when the Lease says it was taken from this claim. */
  revokedFromClaim?: string;
}

export interface UsageObserved {
  now: number;
  /** Every Lease the claim holds, or held when the record was written (absent: deleted). */
  leases: readonly UsageLeaseView[];
  /** The claim asks for a slot it does not have: inline Pending and admitted, or a workload pod waiting. */
  wanting: boolean;
}

const seconds = (ms: number) => Math.max(0, ms) / 1000;
/** Millisecond precision, so a record survives a JSON round trip unchanged. */
const round = (s: number) => Math.round(s * 1000) / 1000;

/** The next record: open holds that ended are closed (and revocations counted), new holds opened. */
export function accountUsage(previous: UsageRecord, o: UsageObserved): UsageRecord {
  const byName = new Map(o.leases.map((l) => [l.leaseName, l]));
  let slotSeconds = previous.slotSeconds;
  const revocations = { ...previous.revocations };
  const held: UsageRecord["held"] = [];
  for (const hold of previous.held) {
    const lease = byName.get(hold.leaseName);
    const same = lease?.heldByClaim && (lease.acquiredAt === undefined || lease.acquiredAt <= hold.since);
    if (same) {
      held.push(hold);
      continue;
    }
    // Ended: when the Lease changed holder, if it says; else now.
    const end = lease?.acquiredAt !== undefined && lease.acquiredAt > hold.since ? lease.acquiredAt : o.now;
    slotSeconds += seconds(end - hold.since);
    const reason = lease?.revokedFromClaim;
    if (reason) revocations[reason] = (revocations[reason] ?? 0) + 1;
  }
  const open = new Set(held.map((h) => h.leaseName));
  let newest: number | undefined;
  for (const lease of o.leases) {
    if (!lease.heldByClaim || open.has(lease.leaseName)) continue;
    const since = lease.acquiredAt ?? o.now;
    held.push({ leaseName: lease.leaseName, since });
    newest = newest === undefined ? since : Math.max(newest, since);
  }
  held.sort((a, b) => (a.leaseName < b.leaseName ? -1 : a.leaseName > b.leaseName ? 1 : 0));

  // Waiting: opens when the claim wants a slot, ends at the grant that served it (else now).
  let waitingSeconds = previous.waitingSeconds;
  let waitingSince = previous.waitingSince;
  if (waitingSince !== undefined && (!o.wanting || newest !== undefined)) {
    const end = newest !== undefined && newest >= waitingSince ? newest : o.now;
    waitingSeconds += seconds(end - waitingSince);
    waitingSince = undefined;
  }
  if (waitingSince === undefined && o.wanting) waitingSince = o.now;
  return {
    slotSeconds: round(slotSeconds),
    waitingSeconds: round(waitingSeconds),
    revocations,
    held,
    ...(waitingSince === undefined ? {} : { waitingSince }),
  };
}

/** The record's totals as of `now`, open holds and wait included (what `understudy usage` shows). */
export function usageAsOf(record: UsageRecord, now: number): { slotSeconds: number; waitingSeconds: number } {
  return {
    slotSeconds: round(record.slotSeconds + record.held.reduce((sum, h) => sum + seconds(now - h.since), 0)),
    waitingSeconds: round(
      record.waitingSeconds + (record.waitingSince === undefined ? 0 : seconds(now - record.waitingSince)),
    ),
  };
}

/** The record as status carries it: times as RFC 3339 strings. */
export interface UsageStatus {
  slotSeconds: number;
  waitingSeconds: number;
  revocations: Record<string, number>;
  held: { leaseName: string; since: string }[];
  waitingSince?: string;
}

/** The record a status holds (none yet: the empty record). */
export function usageRecordOf(status: UsageStatus | undefined): UsageRecord {
  if (!status) return EMPTY_USAGE;
  return {
    slotSeconds: status.slotSeconds,
    waitingSeconds: status.waitingSeconds,
    revocations: { ...status.revocations },
    held: status.held.map((h) => ({ leaseName: h.leaseName, since: Date.parse(h.since) })),
    ...(status.waitingSince ? { waitingSince: Date.parse(status.waitingSince) } : {}),
  };
}

export function usageStatusOf(record: UsageRecord): UsageStatus {
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    slotSeconds: record.slotSeconds,
    waitingSeconds: record.waitingSeconds,
    revocations: record.revocations,
    held: record.held.map((h) => ({ leaseName: h.leaseName, since: iso(h.since) })),
    ...(record.waitingSince === undefined ? {} : { waitingSince: iso(record.waitingSince) }),
  };
}
