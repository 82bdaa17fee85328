import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tar from "tar";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { operatorPodLabels } from "../../src/controllers/labels.ts";
import { cli } from "../support/cli.ts";
import { installCrds } from "../support/crds.ts";
import { createScopedClaim, createScopedPool, createService, waitForServing } from "../support/failover.ts";
import { deleteNamespace, eventually, freshNamespace, testClient } from "../support/kube.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import { deletePool, testPoolSelector } from "../support/pools.ts";

// `understudy report` against the real cluster: a storage service and a pool that a real operator
// process reconciled, a tenant claim, and a pod labelled as the chart labels the operator's (KWOK
// runs it; the test cluster has no kubelet to serve its log, which the report must say, not fail on).

const client = testClient("understudy-report-test");
const run = Date.now().toString(36);
const scope = `report-${run}`;
const pool = `report-${run}`;
const work = mkdtempSync(join(tmpdir(), "understudy-report-"));
let operator: OperatorProcess;
let opNs: string;
let ns: string;

interface Archive {
  top: string;
  files: string[];
  read(path: string): string;
}

/** Extracts the report at `file` and lists it, paths relative to its one top folder. */
async function extract(file: string): Promise<Archive> {
  const dir = mkdtempSync(join(work, "x-"));
  await tar.extract({ file, cwd: dir });
  const [top, ...others] = readdirSync(dir);
  expect(others).toEqual([]);
  const files = (
    readdirSync(join(dir, top!), { recursive: true, withFileTypes: true }) as import("node:fs").Dirent[]
  )
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name).slice(join(dir, top!).length + 1))
    .sort();
  return { top: top!, files, read: (path) => readFileSync(join(dir, top!, path), "utf8") };
}

beforeAll(async () => {
  await installCrds();
  opNs = await freshNamespace(client, "report-op");
  ns = await freshNamespace(client, "report");
  operator = await startOperator({ namespace: opNs, poolSelector: testPoolSelector(scope) });
  await createScopedPool(client, pool, scope, {
    zones: { "zone-a": 1, "zone-b": 1, "zone-c": 1 },
    allowedNamespaces: [ns],
  });
  await createScopedClaim(client, scope, ns, "tenant", pool, 10, { zone: "zone-b" });
  await createService(client, scope, ns, "kv", pool);
  await waitForServing(client, ns, "kv", 1, 90_000);
  // The operator as the chart deploys it: the report finds its pods by the chart's labels.
  await client.core.createNamespacedPod({
    namespace: opNs,
    body: {
      metadata: { name: "understudy-operator-0", labels: { ...operatorPodLabels } },
      spec: {
        nodeName: "kwok-zone-a-1",
        tolerations: [{ operator: "Exists" }],
        containers: [{ name: "operator", image: "understudy:test" }],
      },
    },
  });
}, 180_000);

afterAll(async () => {
  await deletePool(client, pool).catch(() => undefined);
  if (ns) await deleteNamespace(client, ns);
  await operator?.stop();
  if (opNs) await deleteNamespace(client, opNs);
  rmSync(work, { recursive: true, force: true });
});

describe("understudy report", () => {
  it("bundles a storage service: its resources, their Events and the operator's logs, and no Secret", async () => {
    const file = join(work, "service.tar.gz");
    const out = await eventually(
      "a report with the service's three server StatefulSets",
      async () => {
        const summary = JSON.parse(
          await cli("report", "service", "kv", "-n", ns, "-f", file, "-o", "json"),
        ) as {
          file: string;
          objects: number;
        };
        const archive = await extract(file);
        return (
          archive.files.filter((f) => f.includes("/StatefulSet-kv-server-")).length === 3 && {
            summary,
            archive,
          }
        );
      },
      60_000,
      1000,
    );
    const { summary, archive } = out;
    expect(summary.file).toBe(file);
    expect(archive.top).toMatch(new RegExp(`^understudy-report-service-${ns}-kv-\\d{8}T\\d{6}Z$`));
    const resources = archive.files.filter((f) => f.startsWith("resources/"));
    expect(summary.objects).toBe(resources.length);
    expect(resources).toEqual(
      expect.arrayContaining([
        `resources/${ns}/StorageService-kv.yaml`,
        `resources/${ns}/StatefulSet-kv-server-zone-a.yaml`,
        `resources/${ns}/Service-kv-head.yaml`,
        `resources/${ns}/NetworkPolicy-kv-head.yaml`,
        `resources/${ns}/NetworkPolicy-kv-servers.yaml`,
        `resources/_cluster/ContingencyPool-${pool}.yaml`,
        `resources/${opNs}/Pod-understudy-operator-0.yaml`,
      ]),
    );
    // The head pod, by its role label; the service's token Secret is never read.
    const head = resources
      .filter((f) => f.startsWith(`resources/${ns}/Pod-`))
      .map((f) => parse(archive.read(f)));
    expect(head.some((p) => p.metadata.labels["understudy.dev/role"] === "head")).toBe(true);
    expect(resources.filter((f) => f.includes("/Secret-"))).toEqual([]);
    expect(archive.read(`resources/${ns}/StorageService-kv.yaml`)).not.toContain("managedFields");
    // The tenant's claim is another matter.
    expect(resources.filter((f) => f.includes("PoolClaim-"))).toEqual([]);

    // Events: only about objects in the archive, oldest first.
    const uids = new Set(
      resources.map((f) => (parse(archive.read(f)) as { metadata: { uid: string } }).metadata.uid),
    );
    const events = parse(archive.read("events.yaml")) as {
      reason: string;
      involvedObject: { uid: string; kind: string };
    }[];
    for (const event of events) expect(uids.has(event.involvedObject.uid)).toBe(true);
    expect(
      events.some((e) => e.involvedObject.kind === "StatefulSet" && e.reason === "SuccessfulCreate"),
    ).toBe(true);

    // The operator pod's log: the test cluster's KWOK serves none, and the report says so.
    expect(archive.files).toContain(`logs/${opNs}/understudy-operator-0/operator.error.txt`);
    expect(archive.read(`logs/${opNs}/understudy-operator-0/operator.error.txt`)).toMatch(
      /^the log could not be read: /,
    );
    expect(archive.read("README.txt")).toContain(`Understudy report of the storage service ${ns}/kv`);
  });

  it("bundles a pool: its slot Leases, placeholder and tenant pods, claims and storage services", async () => {
    const file = join(work, "pool.tar.gz");
    expect(await cli("report", "pool", pool, "-f", file)).toMatch(
      /^wrote .*pool\.tar\.gz: \d+ objects, \d+ events, 0 operator logs/,
    );
    const archive = await extract(file);
    const resources = archive.files.filter((f) => f.startsWith("resources/"));
    const kinds = (kind: string) => resources.filter((f) => f.includes(`/${kind}-`));
    expect(kinds("ContingencyPool")).toEqual([`resources/_cluster/ContingencyPool-${pool}.yaml`]);
    expect(kinds("Lease").map((f) => parse(archive.read(f)).metadata.labels["understudy.dev/pool"])).toEqual([
      pool,
      pool,
      pool,
    ]);
    expect(kinds("PoolClaim")).toEqual([`resources/${ns}/PoolClaim-tenant.yaml`]);
    expect(kinds("StorageService")).toEqual([`resources/${ns}/StorageService-kv.yaml`]);
    const roles = kinds("Pod")
      .map((f) => parse(archive.read(f)).metadata.labels?.["understudy.dev/role"])
      .filter(Boolean)
      .sort();
    expect(roles).toContain("tenant");
    expect(roles).toContain("placeholder");
    // The operator's Events about the claims it granted.
    const events = parse(archive.read("events.yaml")) as {
      reason: string;
      involvedObject: { kind: string; name: string };
    }[];
    expect(events).toContainEqual(
      expect.objectContaining({
        reason: "Bound",
        involvedObject: expect.objectContaining({ kind: "PoolClaim", name: "tenant" }),
      }),
    );
  });

  it("refuses a service that does not exist, and writes nothing", async () => {
    const file = join(work, "missing.tar.gz");
    await expect(cli("report", "service", "absent", "-n", ns, "-f", file)).rejects.toThrow(
      /storage service "absent" not found/,
    );
    expect(readdirSync(work)).not.toContain("missing.tar.gz");
  });
});
