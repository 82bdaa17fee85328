import { describe, expect, it } from "vitest";
import {
  accountUsage,
  EMPTY_USAGE,
  usageAsOf,
  type UsageLeaseView,
  type UsageRecord,
} from "../../../src/decisions/usage.ts";

const held = (leaseName: string, acquiredAt: number): UsageLeaseView => ({
  leaseName,
  heldByClaim: true,
  acquiredAt,
});
const lost = (leaseName: string, acquiredAt: number, revokedFromClaim?: string): UsageLeaseView => ({
  leaseName,
  heldByClaim: false,
  acquiredAt,
  revokedFromClaim,
});

describe("accountUsage", () => {
  it("matches a hand computation over grants, revocations and completions", () => {
    // Script (ms): the claim waits from t=0; granted L1 at 1.5 s (seen at 2 s); a failover takes L1
    // at 9 s (seen at 10 s) and it waits again from 10 s; granted L2 at 11 s; a second workload pod
    // is granted L3 at 12 s while L2 runs; the pool shrinks L3 away at 14 s; the pod on L2
    // completes and the claim gives L2 back at 19.5 s.
    const steps: { now: number; leases: UsageLeaseView[]; wanting: boolean }[] = [
      { now: 0, leases: [], wanting: true },
      { now: 2_000, leases: [held("L1", 1_500)], wanting: false },
      { now: 10_000, leases: [lost("L1", 9_000, "Failover")], wanting: true },
      { now: 11_200, leases: [held("L2", 11_000)], wanting: false },
      { now: 12_100, leases: [held("L2", 11_000), held("L3", 12_000)], wanting: false },
      { now: 14_300, leases: [held("L2", 11_000), lost("L3", 14_000, "PoolShrunk")], wanting: false },
      { now: 20_000, leases: [lost("L2", 19_500)], wanting: false },
    ];
    let record: UsageRecord = EMPTY_USAGE;
    for (const step of steps) record = accountUsage(record, step);
    // Held: L1 1.5..9 = 7.5 s; L2 11..19.5 = 8.5 s; L3 12..14 = 2 s. Waited: 0..1.5 and 10..11 = 2.5 s.
    expect(record).toEqual({
      slotSeconds: 18,
      waitingSeconds: 2.5,
      revocations: { Failover: 1, PoolShrunk: 1 },
      held: [],
    });
  });

  it("counts open holds and an open wait up to now, without closing them", () => {
    let record = accountUsage(EMPTY_USAGE, { now: 0, leases: [held("L1", 0)], wanting: true });
    expect(record).toEqual({
      slotSeconds: 0,
      waitingSeconds: 0,
      revocations: {},
      held: [{ leaseName: "L1", since: 0 }],
      waitingSince: 0,
    });
    expect(usageAsOf(record, 4_000)).toEqual({ slotSeconds: 4, waitingSeconds: 4 });
    // The same observation again changes nothing: a record is written only when something happened.
    record = accountUsage(record, { now: 3_000, leases: [held("L1", 0)], wanting: true });
    expect(record.waitingSince).toBe(0);
    expect(record.held).toEqual([{ leaseName: "L1", since: 0 }]);
  });

  it("ends a hold whose Lease is gone when it is noticed, and counts no revocation for a release", () => {
    const record = accountUsage(
      { ...EMPTY_USAGE, held: [{ leaseName: "L1", since: 1_000 }] },
      { now: 6_000, leases: [], wanting: false },
    );
    expect(record).toEqual({ slotSeconds: 5, waitingSeconds: 0, revocations: {}, held: [] });
  });

  it("sees a slot lost and granted again between two looks as two holds", () => {
    const record = accountUsage(
      { ...EMPTY_USAGE, held: [{ leaseName: "L1", since: 1_000 }] },
      { now: 9_000, leases: [held("L1", 5_000)], wanting: false },
    );
    expect(record.slotSeconds).toBe(4);
    expect(record.held).toEqual([{ leaseName: "L1", since: 5_000 }]);
  });
});
