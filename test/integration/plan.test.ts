import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runVariant } from "../../bench/utilization.ts";
import {
  claimResource as claimRef,
  poolResource as poolRef,
  storageServiceResource as serviceRef,
} from "../../src/api/index.ts";
import { podRequests } from "../../src/controllers/views.ts";
import type { PlanReport } from "../../src/plan/plan.ts";
import { DEFAULTS, type SimParams } from "../../src/plan/simulate.ts";
import { cli } from "../support/cli.ts";
import { installCrds } from "../support/crds.ts";
import { deleteNamespace, freshNamespace, testClient } from "../support/kube.ts";
import { claimManifest, deletePool, poolManifest } from "../support/pools.ts";

// `understudy plan` against the real API server: the test sets up a pool, thirty storage services
// drawing on it and six claims (no operator runs: the planner reads specs, nodes and pods only),
// then runs the command as a user would.

const client = testClient("understudy-plan-test");
const run = Date.now().toString(36);
const poolName = `plan-${run}`;
const zones = ["zone-a", "zone-b", "zone-c"];
const SERVICES = 30;
let tenants: string;
let storage: string;

const plan = async (...args: string[]) =>
  JSON.parse(await cli("plan", poolName, "-o", "json", ...args)) as PlanReport;

/** Slots of a whole kwok node (8 cpu, 32Gi): a node has room for one only while its pods request nothing. */
async function expectedRoomPerZone(): Promise<number[]> {
  const [nodes, pods] = await Promise.all([
    client.core.listNode(),
    client.core.listPodForAllNamespaces({ fieldSelector: "spec.nodeName!=" }),
  ]);
  const busy = new Set(
    pods.items
      .filter((p) => p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed")
      .filter((p) => podRequests(p).cpuMillis > 0 || podRequests(p).memoryBytes > 0)
      .map((p) => p.spec!.nodeName!),
  );
  return zones.map(
    (zone) =>
      nodes.items.filter(
        (n) =>
          n.metadata?.labels?.["topology.kubernetes.io/zone"] === zone &&
          n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") &&
          !n.spec?.unschedulable &&
          !busy.has(n.metadata!.name!),
      ).length,
  );
}

beforeAll(async () => {
  await installCrds();
  tenants = await freshNamespace(client, "plan-tenants");
  storage = await freshNamespace(client, "plan-storage");
  const pool = poolManifest(poolName, { zones: { "zone-a": 2, "zone-b": 2, "zone-c": 2 } });
  await client.createCustom(poolRef, {
    ...pool,
    spec: { ...pool.spec, slotSize: { cpu: "8", memory: "32Gi" } },
  });
  for (let i = 0; i < SERVICES; i++)
    await client.createCustom(serviceRef, {
      metadata: { name: `kv-${i}`, namespace: storage },
      spec: {
        pool: poolName,
        zones,
        primaryZone: zones[i % zones.length],
        head: { image: "registry.example/understudy:0.1.0" },
        servers: { image: "registry.example/understudy:0.1.0", storage: { size: "1Gi" } },
      },
    });
  for (let i = 0; i < 6; i++)
    await client.createCustom(
      claimRef,
      claimManifest(tenants, `batch-${i}`, poolName, 10 + i, {
        ...(i < 2 ? { zone: zones[i] } : {}),
        requeueOnRevoke: i % 2 === 0,
      }),
    );
});

afterAll(async () => {
  await deletePool(client, poolName);
  for (const ns of [tenants, storage]) if (ns) await deleteNamespace(client, ns);
});

describe("understudy plan", () => {
  it("reads the pool, its services, claims and the room on its nodes, each with its source", async () => {
    const report = await plan("--target", "0.9");
    const a = report.assumptions;
    expect(a.zones).toMatchObject({ value: zones, source: "observed" });
    expect(a.slotsPerZone).toMatchObject({ value: 2, source: "observed" });
    expect(a.serviceZones.source).toBe("observed");
    expect(a.serviceZones.value.filter((z) => z === "zone-b")).toHaveLength(SERVICES / 3);
    expect(a.zonedShare).toMatchObject({ value: 2 / 6, source: "observed" });
    expect(a.requeueShare).toMatchObject({ value: 3 / 6, source: "observed" });
    // Six claims created within the last hour (the window's floor), at the peak of the daily curve.
    expect(a.peakArrivalsPerHour.source).toBe("observed");
    expect(a.peakArrivalsPerHour.value).toBeCloseTo(6 / 0.65, 6);
    expect(a.headroomPerZone).toMatchObject({
      value: Math.min(...(await expectedRoomPerZone())),
      source: "observed",
    });
    // No failover recorded: the failure rate is the default, and says so.
    expect(a.headMtbfHours).toMatchObject({ value: DEFAULTS.headMtbfHours, source: "default" });
    expect(report.simulation.note).toMatch(/^3 simulated days per pool size in 30 s steps/);
  });

  it("recommends a larger pool when the target is raised", async () => {
    const low = await plan("--target", "0.8");
    const high = await plan("--target", "0.999");
    expect(low.recommendation.met).toBe(true);
    expect(high.recommendation.met).toBe(true);
    expect(high.recommendation.slotsPerZone).toBeGreaterThan(low.recommendation.slotsPerZone);
    expect(high.recommended.foundAtOnceShare).toBeGreaterThanOrEqual(0.999);
    expect(low.recommended.foundAtOnceShare).toBeGreaterThanOrEqual(0.8);
    // The trade: the larger pool leases a smaller share of its slot-time to tenants.
    expect(high.recommended.leasedShare).toBeLessThan(low.recommended.leasedShare);
  });

  it("reports the figures bench/utilization.ts computes for the same inputs", async () => {
    const report = await plan("--days", "2");
    const a = report.assumptions;
    const params: SimParams = {
      seed: report.simulation.seed,
      zones: a.zones.value,
      serviceZones: a.serviceZones.value,
      slotsPerZone: 2,
      headroomPerZone: a.headroomPerZone.value,
      hotSpares: 0,
      tickSeconds: report.simulation.tickSeconds,
      headMtbfHours: a.headMtbfHours.value,
      meanRepairMinutes: a.meanRepairMinutes.value,
      zoneOutageMinutes: a.zoneOutageMinutes.value,
      peakArrivalsPerHour: a.peakArrivalsPerHour.value,
      meanTenantMinutes: a.meanTenantMinutes.value,
      patienceMinutes: a.patienceMinutes.value,
      zonedShare: a.zonedShare.value,
      requeueShare: a.requeueShare.value,
    };
    const { label: _label, ...bench } = runVariant("bench", params, 2);
    expect(report.current).toMatchObject(bench);
    expect(report.current.failovers).toBeGreaterThan(0);
  });

  it("lets flags override what it observed", async () => {
    const observed = await plan("--target", "0.95");
    const overridden = await plan(
      "--target",
      "0.95",
      "--services",
      "3",
      "--zoned-share",
      "0",
      "--headroom-per-zone",
      "4",
    );
    const a = overridden.assumptions;
    expect(a.serviceZones).toMatchObject({ value: zones, source: "flag", note: "--services 3" });
    expect(a.zonedShare).toMatchObject({ value: 0, source: "flag", note: "--zoned-share 0" });
    expect(a.headroomPerZone).toMatchObject({ value: 4, source: "flag" });
    expect(a.requeueShare.source).toBe("observed");
    // Three services with room to replenish need far less than thirty.
    expect(overridden.recommendation.slotsPerZone).toBe(1);
    expect(observed.recommendation.slotsPerZone).toBeGreaterThan(1);
  });

  it("prints the recommendation, the assumptions and the sizes as tables, and the chart with --svg", async () => {
    const svg = join(mkdtempSync(join(tmpdir(), "plan-")), "plan.svg");
    const text = await cli("plan", poolName, "--target", "0.9", "--svg", svg);
    const report = await plan("--target", "0.9");
    const { slotsPerZone, hotSpares } = report.recommendation;
    expect(text).toMatch(
      new RegExp(
        `^Recommendation: ${slotsPerZone} slots? per zone, ${hotSpares} hot spares? \\(now 2 slots per zone, 0 hot spares\\)$`,
        "m",
      ),
    );
    expect(text).toMatch(/^claims naming a zone +33\.3% +observed +--zoned-share +2 of 6 claims/m);
    expect(text).toMatch(/^mean time between head failures \(h\) +48 +default +--head-mtbf-hours /m);
    expect(text).toMatch(
      new RegExp(`^${slotsPerZone} +${hotSpares} +\\d+\\.\\d% .* recommended(, current)?$`, "m"),
    );
    const chart = readFileSync(svg, "utf8");
    expect(chart).toMatch(/^<svg /);
    expect(chart).toContain(`${poolName}: failovers that find capacity at once (target 90.0%)`);
    expect(chart).toContain(`${poolName}: slot-time leased to tenants`);
    expect(chart).toMatch(
      new RegExp(`>${slotsPerZone}/zone, ${hotSpares} hot spares \\(recommended(, current)?\\)<`),
    );
  });

  it("fails with a clear error for a bad flag or a pool that does not exist", async () => {
    const failure = (args: string[]) =>
      cli(...args).then(
        () => "exit 0",
        (err: { code: number; stderr: string }) => `${err.code} ${err.stderr.split("\n")[0]}`,
      );
    expect(await failure(["plan", poolName, "--target", "99.9"])).toBe(
      "1 error: option '--target <share>' argument '99.9' is invalid. It must be a share above 0 and at most 1 (for example 0.999).",
    );
    expect(await failure(["plan", poolName, "--requeue-share", "half"])).toBe(
      "1 error: option '--requeue-share <share>' argument 'half' is invalid. It must be a share from 0 to 1 (for example 0.25).",
    );
    expect(await failure(["plan", `${poolName}-absent`])).toBe(
      `1 error: contingency pool "${poolName}-absent" not found`,
    );
  });
});
