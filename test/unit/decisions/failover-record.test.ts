import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FailoverStatusSchema, SLOT_ABANDON_REASONS } from "../../../src/api/storage-service.ts";
import { fromFailoverStatus, toFailoverStatus } from "../../../src/decisions/failover-record.ts";
import { type FailoverRecord, FailoverStep } from "../../../src/decisions/failover-steps.ts";

const name = fc.stringMatching(/^[a-z]([-a-z0-9]{0,10}[a-z0-9])?$/);
const time = fc.integer({ min: 1_600_000_000_000, max: 2_000_000_000_000 });
const step = fc.constantFrom(...Object.values(FailoverStep));

const recordArb: fc.Arbitrary<FailoverRecord> = fc
  .record(
    {
      step,
      startedAt: time,
      reason: fc.constantFrom("NodeNotReady", "PodDeleted", "ProbeFailed", "Switchover"),
      message: fc.string({ maxLength: 20 }),
      epochAtDetection: fc.nat(1000),
      oldHead: fc.record({ pod: name, node: name, zone: name, slot: name }, { requiredKeys: ["pod"] }),
      slot: fc.record(
        { leaseName: name, index: fc.nat(50), zone: name, node: name },
        { requiredKeys: ["leaseName", "zone", "node"] },
      ),
      victim: fc.record({ namespace: name, name }),
      abandonedSlots: fc.array(name, { minLength: 1, maxLength: 4 }),
      abandonedNodes: fc.array(name, { minLength: 1, maxLength: 4 }),
      replenishDeferred: fc.constant(true),
      timeline: fc.array(
        fc.record(
          {
            step,
            at: time,
            abandonedSlot: name,
            reason: fc.constantFrom(...SLOT_ABANDON_REASONS),
          },
          { requiredKeys: ["step", "at"] },
        ),
        { maxLength: 16 },
      ),
    },
    { requiredKeys: ["step", "startedAt", "reason", "epochAtDetection", "timeline"] },
  )
  .map((r) => (r.slot ? { ...r, targetEpoch: r.epochAtDetection + 1 } : r));

describe("failover record in status", () => {
  it("round-trips through status fields that the StorageService schema accepts", () => {
    fc.assert(
      fc.property(recordArb, (record) => {
        const status = toFailoverStatus(record, "db");
        expect(FailoverStatusSchema.parse(status)).toEqual(status);
        expect(fromFailoverStatus(status)).toEqual(record);
      }),
    );
  });

  it("writes the flat fields the API documents", () => {
    const status = toFailoverStatus(
      {
        step: "RoutingSwitched",
        startedAt: Date.parse("2026-01-02T03:04:05.000Z"),
        reason: "NodeNotReady",
        epochAtDetection: 4,
        targetEpoch: 5,
        oldHead: { pod: "db-head-4", node: "a0", zone: "a" },
        slot: { leaseName: "slot-p-b-2", index: 2, zone: "b", node: "b1" },
        victim: { namespace: "t", name: "x" },
        timeline: [{ step: "Detected", at: Date.parse("2026-01-02T03:04:05.000Z") }],
      },
      "db",
    );
    expect(status).toEqual({
      step: "RoutingSwitched",
      startedAt: "2026-01-02T03:04:05.000Z",
      reason: "NodeNotReady",
      fromEpoch: 4,
      fromPod: "db-head-4",
      fromNode: "a0",
      fromZone: "a",
      epoch: 5,
      headPod: "db-head-5",
      leaseName: "slot-p-b-2",
      slot: "2",
      toZone: "b",
      toNode: "b1",
      revokedClaim: "t/x",
      timeline: [{ step: "Detected", at: "2026-01-02T03:04:05.000Z" }],
    });
  });

  it("refuses a record a run could not resume from", () => {
    const base = { step: "SlotChosen" as const, startedAt: "2026-01-02T03:04:05Z", fromEpoch: 1 };
    expect(fromFailoverStatus({ ...base, startedAt: "yesterday" })).toBeUndefined();
    expect(fromFailoverStatus({ step: "Detected", startedAt: "2026-01-02T03:04:05Z" })).toBeUndefined();
    expect(fromFailoverStatus({ ...base, leaseName: "slot-p-a-0" })).toBeUndefined();
    expect(
      fromFailoverStatus({ ...base, leaseName: "l", slot: "x", toZone: "a", toNode: "n" }),
    ).toBeUndefined();
    expect(fromFailoverStatus({ ...base, revokedClaim: "no-namespace" })).toBeUndefined();
    expect(
      fromFailoverStatus({ step: "Detected", startedAt: "2026-01-02T03:04:05Z", epoch: 3 }),
    ).toMatchObject({
      epochAtDetection: 2,
      targetEpoch: 3,
      reason: "Unknown",
    });
  });
});
