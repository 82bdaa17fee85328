import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClaimSummary, PoolSummary, ServiceSummary, StatusReport } from "../../src/cli/model.ts";
import {
  claimResource as claimRef,
  poolResource as poolRef,
  serviceAnnotations,
  storageServiceResource as serviceRef,
} from "../../src/api/index.ts";
import type { CustomObject } from "../../src/kube/client.ts";
import type { ResourceRef } from "../../src/kube/resources.ts";
import { kubeconfigPath } from "../cluster/config.ts";
import { cli } from "../support/cli.ts";
import { installCrds } from "../support/crds.ts";
import { deleteNamespace, eventually, freshNamespace, testClient } from "../support/kube.ts";
import { claimManifest, deletePool, poolManifest } from "../support/pools.ts";

// The `understudy` command against the real API server: objects are created directly with the
// status the operator would write (through the status subresource), so the output does not depend
// on the controllers' timing. An operator started by another test on the same cluster could rewrite
// that status; each check therefore runs the command again until no object changed while it ran.

const root = join(import.meta.dirname, "../..");
const node = join(root, "node_modules/.bin/node");
const cliMain = join(root, "src/cli/main.ts");
const env = { ...process.env, KUBECONFIG: process.env.KUBECONFIG ?? kubeconfigPath, NO_COLOR: "1" };

const client = testClient("understudy-cli-test");
const run = Date.now().toString(36);
const poolName = `cli-${run}`;
let tenants: string;
let storage: string;

const iso = (offsetMs: number) => new Date(Date.parse("2026-03-01T11:50:00Z") + offsetMs).toISOString();
const condition = (type: string, status: string, reason: string, message = "") => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: iso(0),
});

interface Fixture {
  ref: ResourceRef;
  name: string;
  namespace?: string;
  status: Record<string, unknown>;
}

const fixtures = (): Fixture[] => [
  {
    ref: poolRef,
    name: poolName,
    status: {
      slots: 6,
      free: 2,
      leased: 2,
      reserved: 1,
      pending: 1,
      zones: [
        { name: "zone-a", slots: 2, free: 0, leased: 1, reserved: 1, pending: 0 },
        { name: "zone-b", slots: 2, free: 1, leased: 1, reserved: 0, pending: 0 },
        { name: "zone-c", slots: 2, free: 1, leased: 0, reserved: 0, pending: 1 },
      ],
      conditions: [condition("Ready", "False", "PlaceholdersPending", "1 slots not yet holding capacity")],
    },
  },
  {
    ref: claimRef,
    name: "batch-high",
    namespace: tenants,
    status: {
      phase: "Bound",
      zone: "zone-b",
      node: "kwok-zone-b-1",
      slot: `slot-${poolName}-zone-b-0`,
      boundAt: iso(0),
    },
  },
  {
    ref: claimRef,
    name: "batch-low",
    namespace: tenants,
    status: {
      phase: "Revoked",
      zone: "zone-a",
      node: "kwok-zone-a-1",
      slot: `slot-${poolName}-zone-a-0`,
      reason: "Failover",
      revokedBy: `service:${storage}/kv`,
    },
  },
  {
    ref: serviceRef,
    name: "kv",
    namespace: storage,
    status: {
      phase: "Ready",
      epoch: 4,
      head: {
        pod: "kv-head-4",
        node: "kwok-zone-a-1",
        zone: "zone-a",
        epoch: 4,
        slot: `slot-${poolName}-zone-a-0`,
      },
      servers: [
        { zone: "zone-a", ready: 1, replicas: 1 },
        { zone: "zone-b", ready: 1, replicas: 1 },
        { zone: "zone-c", ready: 0, replicas: 1 },
      ],
      failoverCount: 3,
      conditions: [condition("Ready", "True", "HeadAndServersReady")],
      lastFailover: {
        step: "Done",
        startedAt: iso(0),
        finishedAt: iso(1240),
        durationMilliseconds: 1240,
        reason: "NodeNotReady",
        fromPod: "kv-head-3",
        fromZone: "zone-b",
        fromEpoch: 3,
        epoch: 4,
        toZone: "zone-a",
        slot: `slot-${poolName}-zone-a-0`,
        revokedClaim: `${tenants}/batch-low`,
        headPod: "kv-head-4",
        timeline: [
          { step: "Detected", at: iso(0) },
          { step: "SlotChosen", at: iso(12) },
          { step: "Revoked", at: iso(40) },
          { step: "HeadStarted", at: iso(850) },
          { step: "RoutingSwitched", at: iso(1100) },
          { step: "Done", at: iso(1240) },
        ],
      },
    },
  },
];

async function writeStatus(f: Fixture): Promise<string> {
  const written = await client.patchCustomStatus(f.ref, f.name, f.namespace, f.status);
  return written.metadata!.resourceVersion!;
}

/**
 * Writes every fixture's status, runs `check` (which runs the command), and accepts its result
 * only if no fixture changed in between; otherwise writes the status again and retries.
 */
async function withFixtures<T>(check: () => Promise<T>): Promise<T> {
  return eventually(
    "the command's output over unchanged fixtures",
    async () => {
      const versions = await Promise.all(fixtures().map(writeStatus));
      const result = await check();
      const now = await Promise.all(
        fixtures().map(
          async (f) =>
            (await client.getCustom<CustomObject>(f.ref, f.name, f.namespace)).metadata!.resourceVersion,
        ),
      );
      return now.every((v, i) => v === versions[i]) ? { result } : undefined;
    },
    60_000,
    500,
  ).then((r) => r.result);
}

/** kubectl-style table rows as header -> cell maps. */
function rows(text: string): Record<string, string>[] {
  const [header, ...lines] = text.trimEnd().split("\n");
  const names = header!.split(/\s{2,}/);
  return lines.map((line) => Object.fromEntries(line.split(/\s{2,}/).map((cell, i) => [names[i], cell])));
}

/** The table under a section title of `status`. */
function section(text: string, title: string): string {
  const start = text.indexOf(`${title}\n`);
  expect(start, title).toBeGreaterThanOrEqual(0);
  const body = text.slice(start + title.length + 1);
  return body.slice(0, body.indexOf("\n\n") < 0 ? undefined : body.indexOf("\n\n"));
}

beforeAll(async () => {
  await installCrds();
  tenants = await freshNamespace(client, "cli-tenants");
  storage = await freshNamespace(client, "cli-storage");
  // No node carries this label: an operator from another test would place no slot of this pool.
  const pool = poolManifest(poolName, { allowedNamespaces: [tenants] });
  await client.createCustom(poolRef, {
    ...pool,
    spec: { ...pool.spec, nodeSelector: { "understudy.dev/cli-test": run } },
  });
  await client.createCustom(
    claimRef,
    claimManifest(tenants, "batch-high", poolName, 100, { zone: "zone-b" }),
  );
  await client.createCustom(claimRef, claimManifest(tenants, "batch-low", poolName, 10));
  await client.createCustom(serviceRef, {
    metadata: { name: "kv", namespace: storage },
    spec: {
      pool: poolName,
      zones: ["zone-a", "zone-b", "zone-c"],
      primaryZone: "zone-b",
      head: { image: "registry.example/understudy:0.1.0" },
      servers: { image: "registry.example/understudy:0.1.0", storage: { size: "1Gi" } },
    },
  });
  // Two slot Leases of the pool, as the operator keeps them (here in the tenants' namespace).
  for (const [zone, holder] of [
    ["zone-a", `service:${storage}/kv`],
    ["zone-b", `claim:${tenants}/batch-high`],
  ] as const) {
    await client.coordination.createNamespacedLease({
      namespace: tenants,
      body: {
        metadata: {
          name: `slot-${poolName}-${zone}-0`,
          labels: {
            "understudy.dev/pool": poolName,
            "understudy.dev/zone": zone,
            "understudy.dev/slot": `slot-${poolName}-${zone}-0`,
          },
          annotations: { "understudy.dev/node": `kwok-${zone}-1` },
        },
        spec: { holderIdentity: holder },
      },
    });
  }
});

afterAll(async () => {
  // Finalizers an operator of another test may have added must not hold the namespaces.
  for (const f of fixtures()) {
    await client
      .patchCustom(f.ref, f.name, f.namespace, { metadata: { finalizers: null } })
      .catch(() => undefined);
  }
  await deletePool(client, poolName);
  for (const ns of [tenants, storage]) if (ns) await deleteNamespace(client, ns);
});

describe("understudy status", () => {
  it("shows the service's phase, head and epoch, the pool's slots by zone, the claims and the last failover", async () => {
    const text = await withFixtures(() => cli("status", "-n", storage));
    expect(text).not.toContain("\x1b[");
    const [kv] = rows(section(text, "Storage services")).filter((r) => r.NAME === "kv");
    expect(kv).toMatchObject({
      NAMESPACE: storage,
      PHASE: "Ready",
      EPOCH: "4",
      HEAD: "kv-head-4",
      ZONE: "zone-a",
      NODE: "kwok-zone-a-1",
      SERVERS: "2/3",
      FAILOVERS: "3",
    });
    expect(kv!["LAST FAILOVER"]).toMatch(
      new RegExp(`^NodeNotReady, zone-b→zone-a, 1.24s, revoked ${tenants}/batch-low, `),
    );
    const pool = rows(section(text, "Contingency pools")).find((r) => r.NAME === poolName);
    expect(pool).toMatchObject({
      SLOTS: "6/6",
      FREE: "2",
      LEASED: "2",
      RESERVED: "1",
      PENDING: "1",
      READY: "False (PlaceholdersPending)",
    });
    const zones = rows(section(text, "Slots by zone")).filter((r) => r.POOL === poolName);
    expect(zones.map((z) => [z.ZONE, z.FREE, z.LEASED, z.RESERVED, z.PENDING])).toEqual([
      ["zone-a", "0", "1", "1", "0"],
      ["zone-b", "1", "1", "0", "0"],
      ["zone-c", "1", "0", "0", "1"],
    ]);
    // -n storage: the claims of other namespaces are not listed.
    expect(section(text, "Pool claims")).toBe("No pool claims found.");
    const lastFailover = text.slice(text.indexOf(`Last failover: ${storage}/kv\n`));
    expect(lastFailover).toMatch(/^Duration: +1.24s$/m);
    const timeline = rows(section(lastFailover, "Timeline"));
    expect(timeline.map((t) => [t.STEP, t["SINCE DETECTION"]])).toEqual([
      ["Detected", "+0ms"],
      ["SlotChosen", "+12ms"],
      ["Revoked", "+40ms"],
      ["HeadStarted", "+850ms"],
      ["RoutingSwitched", "+1.10s"],
      ["Done", "+1.24s"],
    ]);
  });

  it("prints the same facts as JSON across all namespaces", async () => {
    const report = JSON.parse(await withFixtures(() => cli("status", "-A", "-o", "json"))) as StatusReport;
    const kv = report.services.find((s) => s.namespace === storage && s.name === "kv")!;
    expect(kv).toMatchObject({
      phase: "Ready",
      epoch: 4,
      head: { pod: "kv-head-4", zone: "zone-a" },
      serversReady: 2,
      serversTotal: 3,
    });
    expect(kv.lastFailover).toMatchObject({
      reason: "NodeNotReady",
      durationMilliseconds: 1240,
      revokedClaim: `${tenants}/batch-low`,
    });
    const pool = report.pools.find((p) => p.name === poolName)!;
    expect(pool.zones.map((z) => [z.name, z.desired, z.free])).toEqual([
      ["zone-a", 2, 0],
      ["zone-b", 2, 1],
      ["zone-c", 2, 1],
    ]);
    const claims = report.claims.filter((c) => c.namespace === tenants);
    expect(claims.map((c) => [c.name, c.phase, c.bid])).toEqual([
      ["batch-high", "Bound", 100],
      ["batch-low", "Revoked", 10],
    ]);
  });
});

describe("understudy pool", () => {
  it("shows one pool's zones and its slot Leases with their holders", async () => {
    const text = await withFixtures(() => cli("pool", poolName));
    expect(text).toMatch(new RegExp(`^Pool: +${poolName}$`, "m"));
    expect(text).toMatch(/^Slots: +6 of 6 \(2 free, 2 leased, 1 reserved, 1 pending\)$/m);
    expect(rows(section(text, "Slots"))).toEqual([
      {
        SLOT: `slot-${poolName}-zone-a-0`,
        ZONE: "zone-a",
        NODE: "kwok-zone-a-1",
        HOLDER: `service:${storage}/kv`,
      },
      {
        SLOT: `slot-${poolName}-zone-b-0`,
        ZONE: "zone-b",
        NODE: "kwok-zone-b-1",
        HOLDER: `claim:${tenants}/batch-high`,
      },
    ]);
  });

  it("lists every pool, and as JSON", async () => {
    const pools = JSON.parse(await withFixtures(() => cli("pools", "-o", "json"))) as PoolSummary[];
    expect(pools.find((p) => p.name === poolName)).toMatchObject({
      slots: 6,
      free: 2,
      slotSize: { cpu: "500m", memory: "512Mi" },
    });
  });

  it("fails with a message for a pool that does not exist", async () => {
    const failed = await cli("pool", `${poolName}-absent`).then(
      () => "exit 0",
      (err: { code: number; stderr: string }) => `${err.code} ${err.stderr}`,
    );
    expect(failed).toBe(`1 error: contingency pool "${poolName}-absent" not found\n`);
  });
});

describe("understudy claims and services", () => {
  it("lists a namespace's claims without a namespace column", async () => {
    const text = await withFixtures(() => cli("claims", "-n", tenants));
    expect(
      rows(text).map((r) => [r.NAME, r.POOL, r.BID, r.PHASE, r.ZONE, r.NODE, r.REASON, r.NAMESPACE]),
    ).toEqual([
      ["batch-high", poolName, "100", "Bound", "zone-b", "kwok-zone-b-1", "-", undefined],
      ["batch-low", poolName, "10", "Revoked", "zone-a", "kwok-zone-a-1", "Failover", undefined],
    ]);
  });

  it("lists claims of every namespace with -A", async () => {
    const claims = JSON.parse(await withFixtures(() => cli("claims", "-A", "-o", "json"))) as ClaimSummary[];
    expect(claims.filter((c) => c.namespace === tenants).map((c) => c.slot)).toEqual([
      `slot-${poolName}-zone-b-0`,
      `slot-${poolName}-zone-a-0`,
    ]);
  });

  it("lists services as JSON", async () => {
    const services = JSON.parse(
      await withFixtures(() => cli("services", "-n", storage, "-o", "json")),
    ) as ServiceSummary[];
    expect(services.map((s) => [s.name, s.epoch, s.failoverCount, s.pool])).toEqual([["kv", 4, 3, poolName]]);
  });
});

describe("understudy failover", () => {
  it("requests a switchover by setting the annotation to a new value", async () => {
    const first = JSON.parse(await cli("failover", "kv", "-n", storage, "-o", "json")) as {
      switchover: string;
    };
    const stored = await client.getCustom<CustomObject>(serviceRef, "kv", storage);
    expect(stored.metadata!.annotations![serviceAnnotations.switchover]).toBe(first.switchover);
    const second = await cli("failover", "kv", "-n", storage);
    const value = stored.metadata!.annotations![serviceAnnotations.switchover]!;
    expect(second).toMatch(/^switchover requested for .+\/kv \(understudy\.dev\/switchover=(.+)\)\n$/);
    expect(second).not.toContain(`=${value})`);
  });

  it("with --wait, prints the timeline of the failover the operator ran for the request", async () => {
    const before = (await client.getCustom<CustomObject>(serviceRef, "kv", storage)).metadata!.annotations?.[
      serviceAnnotations.switchover
    ];
    const child = spawn(node, [cliMain, "failover", "kv", "-n", storage, "--wait", "--timeout", "60"], {
      env,
      cwd: root,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));

    // Play the operator: see the request, run a failover for it, record it as handled.
    const request = await eventually("the switchover annotation", async () => {
      const value = (await client.getCustom<CustomObject>(serviceRef, "kv", storage)).metadata!.annotations?.[
        serviceAnnotations.switchover
      ];
      return value !== before && value;
    });
    // Held back by the cooldown first: the command says why and until when.
    const cooldown = "switchover would revoke claim t/x; it starts at 2030-01-01T00:00:00.000Z";
    await client.patchCustomStatus(serviceRef, "kv", storage, {
      conditions: [condition("SwitchoverPending", "True", "Cooldown", cooldown)],
    });
    await eventually("the wait reported", () => stderr.includes(`waiting: ${cooldown}`));
    const start = Date.now();
    const at = (ms: number) => new Date(start + ms).toISOString();
    await client.patchCustomStatus(serviceRef, "kv", storage, {
      phase: "Ready",
      epoch: 5,
      failoverCount: 4,
      handledSwitchover: request,
      lastFailover: {
        step: "Done",
        startedAt: at(0),
        finishedAt: at(730),
        durationMilliseconds: 730,
        reason: "Manual",
        fromZone: "zone-a",
        toZone: "zone-c",
        fromEpoch: 4,
        epoch: 5,
        headPod: "kv-head-5",
        // A merge patch: clear what this failover did not do.
        fromPod: null,
        slot: null,
        revokedClaim: null,
        timeline: [
          { step: "Detected", at: at(0) },
          { step: "SlotChosen", at: at(3) },
          { step: "HeadStarted", at: at(500) },
          { step: "RoutingSwitched", at: at(690) },
          { step: "Done", at: at(730) },
        ],
      },
    });
    expect(await exited, stderr).toBe(0);
    expect(stderr).toContain(`switchover requested for ${storage}/kv; waiting for the failover to finish`);
    expect(stdout).toMatch(/^Reason: +Manual$/m);
    expect(stdout).toMatch(/^To: +kv-head-5, zone zone-c, epoch 5$/m);
    expect(stdout).toMatch(/^Duration: +730ms$/m);
    expect(rows(stdout.split("Timeline\n")[1]!).map((t) => [t.STEP, t["SINCE DETECTION"]])).toEqual([
      ["Detected", "+0ms"],
      ["SlotChosen", "+3ms"],
      ["HeadStarted", "+500ms"],
      ["RoutingSwitched", "+690ms"],
      ["Done", "+730ms"],
    ]);
  });

  it("names a service that does not exist", async () => {
    const failed = await cli("failover", "absent", "-n", storage).then(
      () => "exit 0",
      (err: { code: number; stderr: string }) => `${err.code} ${err.stderr}`,
    );
    expect(failed).toBe(`1 error: storage service "absent" not found in namespace "${storage}"\n`);
  });
});
