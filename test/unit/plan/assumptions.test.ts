import { describe, expect, it } from "vitest";
import { parsePool } from "../../../src/api/index.ts";
import type { ClaimObject, ServiceObject } from "../../../src/cli/model.ts";
import { toPoolView } from "../../../src/controllers/views.ts";
import type { NodeView } from "../../../src/decisions/types.ts";
import { applyOverrides, flagFor, observeAssumptions } from "../../../src/plan/assumptions.ts";
import { DEFAULTS } from "../../../src/plan/simulate.ts";
import { poolManifest } from "../../support/pools.ts";

// What the planner reads off a cluster, and what it falls back to when the cluster says too little.

const now = Date.parse("2026-03-01T12:00:00Z");
const hoursAgo = (h: number) => new Date(now - h * 3_600_000).toISOString();
const GiB = 1024 ** 3;

function pool(shape: Parameters<typeof poolManifest>[1] = {}) {
  const manifest = poolManifest("p", shape);
  const parsed = parsePool({
    ...manifest,
    metadata: { ...manifest.metadata, creationTimestamp: hoursAgo(48) },
  });
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.value;
}

function node(
  name: string,
  zone: string,
  requestedCpuMillis = 0,
  labels: Record<string, string> = {},
): NodeView {
  return {
    name,
    zone,
    ready: true,
    unschedulable: false,
    allocatable: { cpuMillis: 4000, memoryBytes: 16 * GiB, pods: 110 },
    requested: { cpuMillis: requestedCpuMillis, memoryBytes: 0, pods: 0 },
    labels: { "topology.kubernetes.io/zone": zone, ...labels },
    taints: [],
  };
}

const service = (
  name: string,
  spec: Record<string, unknown>,
  failoverCount = 0,
  ageHours = 100,
): ServiceObject => ({
  metadata: { name, namespace: "storage", creationTimestamp: hoursAgo(ageHours) as unknown as Date },
  spec: { pool: "p", zones: ["zone-a", "zone-b", "zone-c"], ...spec },
  status: { failoverCount },
});

const claim = (name: string, spec: Record<string, unknown>, ageHours = 1): ClaimObject => ({
  metadata: { name, namespace: "tenants", creationTimestamp: hoursAgo(ageHours) as unknown as Date },
  spec: { pool: "p", bid: 1, ...spec } as ClaimObject["spec"],
});

function observe(input: {
  services?: ServiceObject[];
  claims?: ClaimObject[];
  nodes?: NodeView[];
  shape?: Parameters<typeof poolManifest>[1];
}) {
  const p = pool(input.shape);
  return observeAssumptions({
    pool: p,
    poolView: toPoolView(p),
    services: input.services ?? [],
    claims: input.claims ?? [],
    nodes: input.nodes ?? [],
    now,
  });
}

describe("observeAssumptions", () => {
  it("reads zones, size and hot spares from the pool and the services' primary zones from their specs", () => {
    const a = observe({
      shape: { zones: { "zone-a": 3, "zone-b": 2, "zone-c": 4 }, hotSpares: 1 },
      services: [
        service("kv-1", { primaryZone: "zone-b" }),
        service("kv-2", {}),
        { ...service("elsewhere", {}), spec: { pool: "other", zones: ["zone-a"] } },
      ],
    });
    expect(a.zones.value).toEqual(["zone-a", "zone-b", "zone-c"]);
    // The smallest zone: an outage is only as covered as that.
    expect(a.slotsPerZone).toMatchObject({ value: 2, source: "observed" });
    expect(a.hotSpares).toMatchObject({ value: 1, source: "observed" });
    expect(a.serviceZones).toMatchObject({ value: ["zone-b", "zone-a"], source: "observed" });
  });

  it("falls back to the defaults, saying why, when the cluster shows no services, claims, failovers or nodes", () => {
    const a = observe({});
    expect(a.serviceZones).toMatchObject({ source: "default" });
    expect(a.serviceZones.value).toHaveLength(DEFAULTS.serviceZones.length);
    expect(a.serviceZones.note).toMatch(/no StorageService draws on p/);
    for (const key of [
      "headMtbfHours",
      "peakArrivalsPerHour",
      "zonedShare",
      "requeueShare",
      "headroomPerZone",
    ] as const)
      expect(a[key], key).toMatchObject({ value: DEFAULTS[key], source: "default" });
  });

  it("derives the failure rate from the services' failover counts and ages once there are enough failovers", () => {
    const few = observe({ services: [service("a", {}, 2, 100)] });
    expect(few.headMtbfHours).toMatchObject({ value: DEFAULTS.headMtbfHours, source: "default" });
    const enough = observe({ services: [service("a", {}, 3, 100), service("b", {}, 1, 20)] });
    expect(enough.headMtbfHours).toMatchObject({ value: 30, source: "observed" });
    expect(enough.headMtbfHours.note).toMatch(/^4 failovers .* in 120\.0 service-hours$/);
  });

  it("derives tenant demand from the pool's claims of the last day", () => {
    const a = observe({
      claims: [
        claim("a", { zone: "zone-a", requeueOnRevoke: true }, 1),
        claim("b", {}, 2),
        claim("c", {}, 30), // older than a day: not an arrival, still a claim's shape
        claim("d", { pool: "other" }, 1),
      ],
    });
    // Two arrivals in 24 h, at the peak of a curve averaging 65% of it.
    expect(a.peakArrivalsPerHour.value).toBeCloseTo(2 / 24 / 0.65, 6);
    expect(a.zonedShare).toMatchObject({ value: 1 / 3, source: "observed" });
    expect(a.requeueShare).toMatchObject({ value: 1 / 3, source: "observed" });
  });

  it("counts the room left on the Ready nodes the pool selects, in the tightest zone", () => {
    // Slots of 500m: a 4-cpu node holds 8, less what its pods request.
    const a = observe({
      shape: {},
      nodes: [
        node("a1", "zone-a", 1000),
        node("a2", "zone-a", 4000),
        node("b1", "zone-b"),
        node("c1", "zone-c", 3000),
        { ...node("c2", "zone-c"), ready: false },
      ],
    });
    expect(a.headroomPerZone).toMatchObject({ value: 2, source: "observed" });
    expect(a.headroomPerZone.note).toContain("zone-a 6, zone-b 8, zone-c 2");
  });
});

describe("applyOverrides", () => {
  it("replaces observed and default figures with the flags, naming the flag as the source", () => {
    const base = observe({ services: [service("a", {})] });
    const a = applyOverrides(base, { services: 9, headMtbfHours: 12, zonedShare: 0 });
    expect(a.serviceZones).toMatchObject({ source: "flag", note: "--services 9" });
    expect(a.serviceZones.value.filter((z) => z === "zone-c")).toHaveLength(3);
    expect(a.headMtbfHours).toMatchObject({ value: 12, source: "flag", note: "--head-mtbf-hours 12" });
    expect(a.zonedShare).toMatchObject({ value: 0, source: "flag" });
    expect(a.slotsPerZone).toEqual(base.slotsPerZone);
    expect(flagFor("peakArrivalsPerHour")).toBe("--peak-arrivals-per-hour");
    expect(flagFor("zones")).toBeUndefined();
  });
});
