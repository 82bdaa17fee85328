import { describe, expect, it } from "vitest";
import { parseStorageService } from "../../../src/api/index.ts";
import { beginFailover, type FailoverRecord } from "../../../src/decisions/failover-steps.ts";
import {
  headStatusOf,
  lastFailoverOf,
  phaseOf,
  replacement,
  serversReady,
  withConditions,
} from "../../../src/controllers/storage-service/status.ts";

describe("replacement", () => {
  it("turns an object into a merge patch that removes the fields it no longer has", () => {
    const current = { step: "SlotChosen", leaseName: "slot-a", revokedClaim: "t/x", nested: { a: 1, b: 2 } };
    const next = { step: "Detected", abandonedSlots: ["slot-a"], nested: { a: 1 } };
    expect(replacement(current, next)).toEqual({
      step: "Detected",
      abandonedSlots: ["slot-a"],
      leaseName: null,
      revokedClaim: null,
      nested: { a: 1, b: null },
    });
  });

  it("replaces arrays whole, writes new objects as they are, and clears with null", () => {
    expect(replacement({ timeline: [1, 2, 3] }, { timeline: [1] })).toEqual({ timeline: [1] });
    expect(replacement(undefined, { a: 1 })).toEqual({ a: 1 });
    expect(replacement({ a: 1 }, undefined)).toBeNull();
  });
});

describe("the last failover", () => {
  it("is the finished record with its end and duration, valid against the schema", () => {
    const started = Date.parse("2026-01-02T03:04:05.000Z");
    let record: FailoverRecord = beginFailover({
      now: started,
      epoch: 4,
      reason: "NodeNotReady",
      message: "node a0 is not Ready",
      head: { pod: "kv-head-4", node: "a0", zone: "zone-a" },
    });
    record = {
      ...record,
      step: "Done",
      targetEpoch: 5,
      slot: { leaseName: "slot-p-zone-b-0", index: 0, zone: "zone-b", node: "b1" },
      victim: { namespace: "tenants", name: "batch" },
      timeline: [...record.timeline, { step: "Done", at: started + 1234 }],
    };
    const last = lastFailoverOf(
      record,
      {
        startedAt: started,
        finishedAt: started + 1234,
        durationMilliseconds: 1234,
        reason: "NodeNotReady",
        timeline: record.timeline,
      },
      "kv",
    );
    expect(last).toMatchObject({
      step: "Done",
      startedAt: "2026-01-02T03:04:05.000Z",
      finishedAt: "2026-01-02T03:04:06.234Z",
      durationMilliseconds: 1234,
      reason: "NodeNotReady",
      fromPod: "kv-head-4",
      fromZone: "zone-a",
      fromEpoch: 4,
      epoch: 5,
      headPod: "kv-head-5",
      toZone: "zone-b",
      leaseName: "slot-p-zone-b-0",
      revokedClaim: "tenants/batch",
    });
    const parsed = parseStorageService({
      apiVersion: "understudy.dev/v1alpha1",
      kind: "StorageService",
      metadata: { name: "kv", namespace: "storage" },
      spec: {
        pool: "p",
        zones: ["zone-a", "zone-b"],
        replicationFactor: 2,
        head: { image: "i" },
        servers: { image: "i", storage: { size: "1Gi" } },
      },
      status: {
        lastFailover: last,
        head: headStatusOf(
          { pod: "kv-head-5", node: "b1", zone: "zone-b", slot: "slot-p-zone-b-0" },
          5,
          started,
          0,
        ),
      },
    });
    expect(parsed.ok).toBe(true);
  });
});

describe("the head's status", () => {
  it("names the slot Lease and index when the head runs on a slot", () => {
    expect(
      headStatusOf({ pod: "kv-head-2", node: "b1", zone: "zone-b", slot: "slot-p-zone-b-3" }, 2, 0, 3),
    ).toEqual({
      pod: "kv-head-2",
      node: "b1",
      zone: "zone-b",
      epoch: 2,
      leaseName: "slot-p-zone-b-3",
      slot: "3",
      since: "1970-01-01T00:00:00.000Z",
    });
    expect(headStatusOf({ pod: "kv-head-3", zone: "zone-a" }, 3, 0)).toEqual({
      pod: "kv-head-3",
      zone: "zone-a",
      epoch: 3,
      since: "1970-01-01T00:00:00.000Z",
    });
  });
});

describe("conditions and phase", () => {
  it("keep a condition's transition time while its status stays", () => {
    const first = withConditions(
      undefined,
      [{ type: "Ready", status: "False", reason: "A", message: "" }],
      2,
      1000,
    );
    const same = withConditions(
      first,
      [{ type: "Ready", status: "False", reason: "B", message: "x" }],
      3,
      5000,
    );
    expect(same[0]).toMatchObject({
      reason: "B",
      observedGeneration: 3,
      lastTransitionTime: first[0]!.lastTransitionTime,
    });
    const flipped = withConditions(
      same,
      [{ type: "Ready", status: "True", reason: "C", message: "" }],
      3,
      9000,
    );
    expect(flipped[0]!.lastTransitionTime).toBe(new Date(9000).toISOString());
  });

  it("say FailingOver first, Pending without a head, Failed with neither head nor contingency", () => {
    const base = {
      failingOver: false,
      hasHead: true,
      headAvailable: true,
      serversReady: true,
      contingencyAvailable: true,
    };
    expect(phaseOf(base)).toBe("Ready");
    expect(phaseOf({ ...base, failingOver: true, headAvailable: false })).toBe("FailingOver");
    expect(phaseOf({ ...base, hasHead: false })).toBe("Pending");
    expect(phaseOf({ ...base, serversReady: false })).toBe("Degraded");
    expect(phaseOf({ ...base, contingencyAvailable: false })).toBe("Degraded");
    expect(phaseOf({ ...base, headAvailable: false })).toBe("Degraded");
    expect(phaseOf({ ...base, headAvailable: false, contingencyAvailable: false })).toBe("Failed");
  });

  it("count servers ready only when every zone has all its replicas Ready", () => {
    const zones = ["a", "b"];
    expect(
      serversReady(
        [
          { zone: "a", replicas: 1, ready: 1 },
          { zone: "b", replicas: 2, ready: 2 },
        ],
        zones,
      ),
    ).toBe(true);
    expect(
      serversReady(
        [
          { zone: "a", replicas: 1, ready: 1 },
          { zone: "b", replicas: 2, ready: 1 },
        ],
        zones,
      ),
    ).toBe(false);
    expect(serversReady([{ zone: "a", replicas: 1, ready: 1 }], zones)).toBe(false);
    expect(
      serversReady(
        [
          { zone: "a", replicas: 0, ready: 0 },
          { zone: "b", replicas: 1, ready: 1 },
        ],
        zones,
      ),
    ).toBe(false);
  });
});
