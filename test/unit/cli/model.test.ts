import { describe, expect, it } from "vitest";
import { formatAge, formatDuration } from "../../../src/cli/format.ts";
import {
  statusReport,
  summarizeClaim,
  summarizePool,
  summarizeService,
  summarizeSlot,
} from "../../../src/cli/model.ts";
import { failoverIdentity, switchoverFinished, switchoverValue } from "../../../src/cli/switchover.ts";
import { claims, failingOver, newPool, pool, service } from "./fixtures.ts";

describe("pool summaries", () => {
  it("count slots by zone and state from status, and desired slots from the spec", () => {
    const s = summarizePool(pool);
    expect(s).toMatchObject({
      name: "contingency",
      desired: 5,
      slots: 5,
      free: 1,
      leased: 2,
      reserved: 1,
      pending: 1,
      hotSpares: 1,
    });
    expect(s.zones.map((z) => [z.name, z.desired, z.slots, z.free, z.leased, z.reserved, z.pending])).toEqual(
      [
        ["zone-a", 2, 2, 0, 1, 1, 0],
        ["zone-b", 2, 2, 1, 1, 0, 0],
        ["zone-c", 1, 1, 0, 0, 0, 1],
      ],
    );
    expect(s.ready).toEqual({
      status: "False",
      reason: "PlaceholdersPending",
      message: "1 slots not yet holding capacity",
    });
    expect(s.slotSize).toEqual({ cpu: "500m", memory: "512Mi" });
  });

  it("show a pool without status as desired slots with none placed yet", () => {
    const s = summarizePool(newPool);
    expect(s).toMatchObject({ desired: 3, slots: 0, free: 0, ready: undefined, allowedNamespaces: [] });
    expect(s.zones).toEqual([
      { name: "zone-a", desired: 3, slots: 0, free: 0, leased: 0, reserved: 0, pending: 0 },
    ]);
  });

  it("keep a zone the status still reports after it left the spec", () => {
    const shrunk = { ...pool, spec: { ...pool.spec, zones: [{ name: "zone-a", slots: 2 }] } };
    const zones = summarizePool(shrunk).zones;
    expect(zones.map((z) => [z.name, z.desired, z.slots])).toEqual([
      ["zone-a", 2, 2],
      ["zone-b", 0, 2],
      ["zone-c", 0, 1],
    ]);
  });
});

describe("slot summaries", () => {
  it("name the holder, or free", () => {
    const lease = (holder?: string) => ({
      metadata: {
        name: "slot-contingency-zone-a-0",
        labels: { "understudy.dev/pool": "contingency", "understudy.dev/zone": "zone-a" },
        annotations: { "understudy.dev/node": "node-a-1" },
      },
      spec: { holderIdentity: holder },
    });
    expect(summarizeSlot(lease("claim:tenants/batch-low"))).toEqual({
      lease: "slot-contingency-zone-a-0",
      pool: "contingency",
      zone: "zone-a",
      node: "node-a-1",
      holder: "claim:tenants/batch-low",
    });
    expect(summarizeSlot(lease("")).holder).toBe("free");
    expect(summarizeSlot(lease(undefined)).holder).toBe("free");
  });
});

describe("claim summaries", () => {
  it("carry phase, placement and reason; a claim without status is Pending", () => {
    const [revoked, bound, waiting] = claims.map(summarizeClaim);
    expect(revoked).toMatchObject({
      phase: "Revoked",
      reason: "Failover",
      revokedBy: "service:storage/kv",
      bid: 10,
    });
    expect(bound).toMatchObject({
      phase: "Bound",
      zone: "zone-b",
      node: "node-b-2",
      slot: "slot-contingency-zone-b-1",
    });
    expect(waiting).toMatchObject({ phase: "Pending", bid: 0, requestedZone: "zone-c", zone: undefined });
  });
});

describe("service summaries", () => {
  it("carry the head, epoch, server readiness and the last failover with offsets from detection", () => {
    const s = summarizeService(service);
    expect(s).toMatchObject({
      phase: "Ready",
      epoch: 4,
      head: { pod: "kv-head-4", zone: "zone-a", node: "node-a-1", slot: "slot-contingency-zone-a-0" },
      serversReady: 2,
      serversTotal: 3,
      failoverCount: 3,
      failingOver: undefined,
    });
    expect(s.lastFailover).toMatchObject({
      reason: "NodeNotReady",
      fromZone: "zone-b",
      toZone: "zone-a",
      durationMilliseconds: 1240,
    });
    expect(s.lastFailover!.timeline.map((t) => [t.step, t.offsetMilliseconds])).toEqual([
      ["Detected", 0],
      ["SlotChosen", 12],
      ["Revoked", 40],
      ["HeadStarted", 850],
      ["RoutingSwitched", 1100],
      ["Done", 1240],
    ]);
  });

  it("compute a finished failover's duration when status lacks it, and show one in progress", () => {
    const { durationMilliseconds: _, ...rest } = service.status!.lastFailover!;
    const s = summarizeService({ ...service, status: { ...service.status, lastFailover: rest } });
    expect(s.lastFailover!.durationMilliseconds).toBe(1240);
    const f = summarizeService(failingOver);
    expect(f.failingOver).toMatchObject({
      step: "Revoked",
      reason: "ProbeFailed",
      finishedAt: undefined,
      durationMilliseconds: undefined,
    });
    expect(f.servers).toEqual([]);
  });

  it("fall back to Pending and no epoch before the operator wrote status", () => {
    const s = summarizeService({ ...service, status: undefined });
    expect(s).toMatchObject({ phase: "Pending", epoch: undefined, head: undefined, failoverCount: 0 });
  });
});

describe("the status report", () => {
  it("sorts each list by namespace and name", () => {
    const report = statusReport({ services: [service, failingOver], pools: [pool, newPool], claims });
    expect(report.services.map((s) => s.name)).toEqual(["cache", "kv"]);
    expect(report.pools.map((p) => p.name)).toEqual(["contingency", "fresh"]);
    expect(report.claims.map((c) => `${c.namespace}/${c.name}`)).toEqual([
      "other/waiting",
      "tenants/batch-high",
      "tenants/batch-low",
    ]);
  });
});

describe("switchover", () => {
  const before = summarizeService(service).lastFailover;
  const request = "2026-03-01T12:00:00.000Z";
  const after = {
    ...before!,
    startedAt: "2026-03-01T12:00:00.200Z",
    finishedAt: "2026-03-01T12:00:01.100Z",
    epoch: 5,
  };

  it("asks with a value the annotation never had", () => {
    expect(switchoverValue(NOW_MS, undefined)).toBe(request);
    expect(switchoverValue(NOW_MS, request)).not.toBe(request);
  });

  it("is finished only when the operator handled this request and a new failover completed", () => {
    expect(switchoverFinished(request, before, { handledSwitchover: request, lastFailover: after })).toBe(
      true,
    );
    // Handled, but the failover it started is still running.
    expect(
      switchoverFinished(request, before, {
        handledSwitchover: request,
        lastFailover: before,
        failingOver: after,
      }),
    ).toBe(false);
    // A failover finished, but for an earlier request or a failure, not this one.
    expect(switchoverFinished(request, before, { handledSwitchover: "earlier", lastFailover: after })).toBe(
      false,
    );
    // Nothing new yet.
    expect(switchoverFinished(request, before, { handledSwitchover: request, lastFailover: before })).toBe(
      false,
    );
    expect(switchoverFinished(request, undefined, { handledSwitchover: request, lastFailover: after })).toBe(
      true,
    );
    expect(failoverIdentity(undefined)).toBeUndefined();
  });
});

const NOW_MS = Date.parse("2026-03-01T12:00:00Z");

describe("formatting", () => {
  it("shows ages as kubectl does", () => {
    expect(
      [
        0,
        42_000,
        119_000,
        125_000,
        600_000,
        3 * 3_600_000 + 5 * 60_000,
        30 * 3_600_000,
        3 * 86_400_000,
        20 * 86_400_000,
      ].map(formatAge),
    ).toEqual(["0s", "42s", "119s", "2m5s", "10m", "3h5m", "30h", "3d", "20d"]);
    expect(formatAge(-5)).toBe("0s");
  });

  it("shows failover durations to the precision that matters", () => {
    expect([undefined, 0, 850, 1240, 12_345, 65_000].map(formatDuration)).toEqual([
      undefined,
      "0ms",
      "850ms",
      "1.24s",
      "12.3s",
      "1m05s",
    ]);
  });
});
