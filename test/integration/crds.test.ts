import * as k8s from "@kubernetes/client-node";
import { execFile } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CLAIM_NAMES,
  GROUP,
  POOL_NAMES,
  STORAGE_SERVICE_NAMES,
  VERSION,
  parseClaim,
  parseClaimUpdate,
  parsePool,
  parseStorageService,
  poolZoneSummary,
  type ResourceNames,
} from "../../src/api/index.ts";
import { errorMessage, isNotFound, statusCode } from "../../src/kube/errors.ts";
import { binaries, kubeconfigPath } from "../cluster/config.ts";
import { eventually, testKubeConfig } from "../support/kube.ts";
import {
  MALFORMED,
  UPDATES,
  loadExamples,
  validClaim,
  validPool,
  validStorageService,
  type Kind,
  type Manifest,
} from "../unit/api/cases.ts";

// The generated CRDs on a real kube-apiserver: they install, every malformed object is refused
// with a message naming its field (the same field the operator's zod check names), nothing is
// stored when refused, immutable fields stay put, the examples apply, and kubectl shows the
// printer columns and the field descriptions.

const CRDS_DIR = join(import.meta.dirname, "../../crds");
const FIELD_MANAGER = "understudy-crd-test";
const RUN = `${process.pid}-${Date.now().toString(36)}`;
/** Label on every object this file creates, so it can list (and delete) exactly those. */
const RUN_LABEL = "understudy.dev/crd-test-run";

const kubeconfig = process.env.KUBECONFIG ?? kubeconfigPath;
const kc = testKubeConfig();
const extensions = kc.makeApiClient(k8s.ApiextensionsV1Api);
const core = kc.makeApiClient(k8s.CoreV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const objects = k8s.KubernetesObjectApi.makeApiClient(kc);

const namespace = `crdtest-${RUN}`;
const NAMES: Record<Kind, ResourceNames> = {
  ContingencyPool: POOL_NAMES,
  PoolClaim: CLAIM_NAMES,
  StorageService: STORAGE_SERVICE_NAMES,
};

type Obj = Manifest & { metadata: Manifest["metadata"] & { resourceVersion?: string } };

/** A manifest renamed into this run: its own name, the test namespace, the run label. */
function forThisRun(manifest: Manifest, name: string): Obj {
  const copy = structuredClone(manifest) as Obj;
  copy.metadata.name = name;
  copy.metadata.labels = { ...(copy.metadata.labels as object), [RUN_LABEL]: RUN };
  if (NAMES[copy.kind as Kind].scope === "Namespaced") copy.metadata.namespace = namespace;
  return copy;
}

function target(kind: Kind) {
  return { group: GROUP, version: VERSION, plural: NAMES[kind].plural };
}

async function create(manifest: Obj, dryRun?: "All"): Promise<Obj> {
  const kind = manifest.kind as Kind;
  const common = {
    ...target(kind),
    body: manifest,
    fieldValidation: "Strict",
    fieldManager: FIELD_MANAGER,
    dryRun,
  };
  return (await (NAMES[kind].scope === "Cluster"
    ? custom.createClusterCustomObject(common)
    : custom.createNamespacedCustomObject({ ...common, namespace: manifest.metadata.namespace! }))) as Obj;
}

async function replace(manifest: Obj, subresource?: "status"): Promise<Obj> {
  const kind = manifest.kind as Kind;
  const request = {
    ...target(kind),
    name: manifest.metadata.name,
    body: manifest,
    fieldValidation: "Strict",
  };
  const ns = manifest.metadata.namespace!;
  if (NAMES[kind].scope === "Cluster") {
    return (await (subresource
      ? custom.replaceClusterCustomObjectStatus(request)
      : custom.replaceClusterCustomObject(request))) as Obj;
  }
  return (await (subresource
    ? custom.replaceNamespacedCustomObjectStatus({ ...request, namespace: ns })
    : custom.replaceNamespacedCustomObject({ ...request, namespace: ns }))) as Obj;
}

async function get(kind: Kind, name: string): Promise<Obj> {
  const request = { ...target(kind), name };
  return (await (NAMES[kind].scope === "Cluster"
    ? custom.getClusterCustomObject(request)
    : custom.getNamespacedCustomObject({ ...request, namespace }))) as Obj;
}

/** Names of this run's objects of a kind, as the API server lists them. */
async function listNames(kind: Kind): Promise<string[]> {
  const request = { ...target(kind), labelSelector: `${RUN_LABEL}=${RUN}` };
  const list = (await (NAMES[kind].scope === "Cluster"
    ? custom.listClusterCustomObject(request)
    : custom.listNamespacedCustomObject({ ...request, namespace }))) as { items: Obj[] };
  return list.items.map((item) => item.metadata.name).sort();
}

/** The refusal of a call that must fail: its HTTP status and the API server's message. */
async function refusal(call: Promise<unknown>): Promise<{ code: number | undefined; message: string }> {
  try {
    await call;
  } catch (err) {
    return { code: statusCode(err), message: errorMessage(err) };
  }
  throw new Error("the API server accepted it");
}

async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(binaries.kubectl, ["--kubeconfig", kubeconfig, ...args]);
  return stdout;
}

/** `kubectl get` output as rows of cells, cut at the header's column starts (empty cells stay). */
function table(output: string): string[][] {
  const [header, ...rows] = output.trimEnd().split("\n");
  const names = header!.trim().split(/\s{2,}/);
  let from = 0;
  const starts = names.map((name) => (from = header!.indexOf(name, from)));
  const cells = (line: string) =>
    starts.map((start, k) => line.slice(start, k + 1 < starts.length ? starts[k + 1] : undefined).trim());
  return [names, ...rows.map(cells)];
}

const crdManifests = readdirSync(CRDS_DIR)
  .filter((file) => file.endsWith(".yaml"))
  // loadYaml yields the typed model: the client's serializer drops x-kubernetes-* keys of plain objects.
  .map((file) => k8s.loadYaml<k8s.V1CustomResourceDefinition>(readFileSync(join(CRDS_DIR, file), "utf8")));

beforeAll(async () => {
  for (const crd of crdManifests) {
    await objects.patch(crd, undefined, undefined, FIELD_MANAGER, true, k8s.PatchStrategy.ServerSideApply);
  }
  for (const crd of crdManifests) {
    await eventually(`CRD ${crd.metadata!.name} Established`, async () => {
      const current = await extensions.readCustomResourceDefinition({ name: crd.metadata!.name! });
      const conditions = current.status?.conditions ?? [];
      const isTrue = (type: string) => conditions.some((c) => c.type === type && c.status === "True");
      return isTrue("Established") && isTrue("NamesAccepted");
    });
  }
  await core.createNamespace({ body: { metadata: { name: namespace, labels: { [RUN_LABEL]: RUN } } } });
  // The resource endpoints serve the new schemas once a valid object of each kind is accepted.
  for (const base of [validPool(), validClaim(), validStorageService()]) {
    await eventually(`${base.kind} served`, () => create(forThisRun(base, "probe"), "All"));
  }
});

afterAll(async () => {
  await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  for (const name of await listNames("ContingencyPool").catch(() => [])) {
    await custom.deleteClusterCustomObject({ ...target("ContingencyPool"), name }).catch(() => undefined);
  }
});

describe("the generated CRDs", () => {
  it("install with their short names, category and status subresource", async () => {
    for (const crd of crdManifests) {
      const current = await extensions.readCustomResourceDefinition({ name: crd.metadata!.name! });
      expect(current.status?.acceptedNames?.shortNames).toEqual(crd.spec.names.shortNames);
      expect(current.status?.acceptedNames?.categories).toEqual(["understudy"]);
      expect(current.spec.versions[0]!.subresources?.status).toEqual({});
    }
  });
});

describe("malformed objects", () => {
  it.each(MALFORMED.map((c, i) => [c.name, c, i] as const))(
    "are refused, naming the field: %s",
    async (_name, c, i) => {
      const keepsName = c.field === "metadata.name";
      const manifest = forThisRun(c.manifest, keepsName ? c.manifest.metadata.name : `bad-${i}`);
      const { code, message } = await refusal(create(manifest));
      expect([400, 422]).toContain(code);
      expect(message).toContain(c.field);
      // Nothing was stored.
      const stored = await get(c.kind, manifest.metadata.name).then(
        () => "stored",
        (err) => (isNotFound(err) ? "absent" : String(err)),
      );
      expect(stored).toBe("absent");
      // The operator's own check names the same field, unless the server alone handles the case.
      if (c.serverOnly === undefined) {
        const parser = {
          ContingencyPool: parsePool,
          PoolClaim: parseClaim,
          StorageService: parseStorageService,
        }[c.kind];
        const parsed = parser(c.manifest);
        expect(!parsed.ok && parsed.issues.map((issue) => issue.path)).toContain(c.field);
      }
    },
  );

  it("left no object of this run behind", async () => {
    expect(await listNames("ContingencyPool")).toEqual([]);
    expect(await listNames("PoolClaim")).toEqual([]);
    expect(await listNames("StorageService")).toEqual([]);
  });
});

describe("updates", () => {
  it.each(UPDATES.map((c, i) => [c.name, c, i] as const))("%s", async (_name, c, i) => {
    const created = await create(forThisRun(c.base(), `update-${i}`));
    const next = structuredClone(created);
    c.change(next.spec!);
    if (c.field === undefined) {
      const updated = await replace(next);
      expect(updated.spec).toEqual(next.spec);
      return;
    }
    const { code, message } = await refusal(replace(next));
    expect(code).toBe(422);
    expect(message).toContain(c.field);
    // Nothing changed.
    const stored = await get(c.kind, created.metadata.name);
    expect(stored.metadata.resourceVersion).toBe(created.metadata.resourceVersion);
    expect(stored.spec).toEqual(created.spec);
  });

  it("of status are checked against the status schema", async () => {
    const claim = await create(forThisRun(validClaim(), "status-check"));
    const bad = { ...claim, status: { phase: "Sleeping" } };
    const { code, message } = await refusal(replace(bad, "status"));
    expect(code).toBe(422);
    expect(message).toContain("status.phase");
    expect(parseClaim(bad).ok).toBe(false);
    const good = await replace({ ...claim, status: { phase: "Pending", reason: "NoFreeSlot" } }, "status");
    expect(good.status).toEqual({ phase: "Pending", reason: "NoFreeSlot" });
    expect(parseClaimUpdate(parseClaimOrThrow(claim), good).ok).toBe(true);
  });
});

function parseClaimOrThrow(obj: unknown) {
  const parsed = parseClaim(obj);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.value;
}

describe("the examples", () => {
  const examples = loadExamples();
  const resources = examples.filter((m) => m.apiVersion === `${GROUP}/${VERSION}`);

  it("apply cleanly, and the API server's defaults are the operator's defaults", async () => {
    for (const ns of examples.filter((m) => m.kind === "Namespace")) {
      await objects.patch(ns, undefined, undefined, FIELD_MANAGER, false, k8s.PatchStrategy.ServerSideApply);
    }
    for (const manifest of resources) {
      // Dry run: the examples' own names may be in use by whoever else shares the cluster.
      const applied = (await objects.patch(
        manifest,
        undefined,
        "All",
        FIELD_MANAGER,
        true,
        k8s.PatchStrategy.ServerSideApply,
      )) as Obj;
      const parser = {
        ContingencyPool: parsePool,
        PoolClaim: parseClaim,
        StorageService: parseStorageService,
      }[manifest.kind as Kind];
      const parsed = parser(manifest);
      expect(parsed.ok && parsed.value.spec).toEqual(applied.spec);
      const reparsed = parser(applied);
      expect(reparsed.ok ? "" : reparsed.message).toBe("");
    }
  });

  describe("as objects of this run", () => {
    const pool = `crdtest-${RUN}`;
    beforeAll(async () => {
      for (const manifest of resources) {
        const copy = forThisRun(
          manifest,
          manifest.kind === "ContingencyPool" ? pool : manifest.metadata.name,
        );
        if (copy.spec!.pool !== undefined) copy.spec!.pool = pool;
        await objects.patch(
          copy,
          undefined,
          undefined,
          FIELD_MANAGER,
          true,
          k8s.PatchStrategy.ServerSideApply,
        );
      }
      // Status as the operator would write it, so the columns have values to show.
      const statuses: [Kind, string, Record<string, unknown>][] = [
        [
          "ContingencyPool",
          pool,
          {
            slots: 6,
            free: 3,
            leased: 2,
            reserved: 1,
            pending: 0,
            zoneSummary: poolZoneSummary([
              { name: "zone-a", slots: 2, free: 0 },
              { name: "zone-b", slots: 2, free: 1 },
              { name: "zone-c", slots: 2, free: 2 },
            ]),
          },
        ],
        [
          "PoolClaim",
          "batch-high",
          { phase: "Bound", zone: "zone-b", node: "kwok-zone-b-1", leaseName: `slot-${pool}-zone-b-0` },
        ],
        ["PoolClaim", "batch-low", { phase: "Pending", reason: "NoFreeSlot" }],
        [
          "StorageService",
          "kv",
          {
            phase: "Ready",
            epoch: 4,
            failoverCount: 3,
            head: { pod: "kv-head-4", node: "kwok-zone-a-1", zone: "zone-a" },
          },
        ],
      ];
      for (const [kind, name, status] of statuses) {
        await eventually(`status of ${kind} ${name}`, async () =>
          replace({ ...(await get(kind, name)), status }, "status"),
        );
      }
    });

    it("show the printer columns in kubectl get", async () => {
      const pools = table(await kubectl("get", "contingencypools", pool));
      expect(pools[0]).toEqual(["NAME", "ZONES", "FREE", "LEASED", "RESERVED", "FAILOVER PAUSED", "AGE"]);
      expect(pools[1]!.slice(0, 6)).toEqual([
        pool,
        "zone-a:0/2,zone-b:1/2,zone-c:2/2",
        "3",
        "2",
        "1",
        "false",
      ]);

      const claims = table(await kubectl("get", "pclaim", "-n", namespace, "batch-high", "batch-low"));
      expect(claims[0]).toEqual(["NAME", "POOL", "PHASE", "ZONE", "NODE", "BID", "AGE"]);
      expect(claims[1]!.slice(0, 6)).toEqual(["batch-high", pool, "Bound", "zone-b", "kwok-zone-b-1", "100"]);
      expect(claims[2]!.slice(0, 6)).toEqual(["batch-low", pool, "Pending", "", "", "10"]);

      const services = table(await kubectl("get", "ssvc", "-n", namespace));
      expect(services[0]).toEqual(["NAME", "PHASE", "HEAD ZONE", "EPOCH", "FAILOVERS", "PAUSED", "AGE"]);
      expect(services[1]!.slice(0, 6)).toEqual(["kv", "Ready", "zone-a", "4", "3", "false"]);

      const wide = table(await kubectl("get", "cpool", pool, "-o", "wide"));
      expect(wide[0]).toEqual([
        "NAME",
        "ZONES",
        "SLOTS",
        "FREE",
        "LEASED",
        "RESERVED",
        "PENDING",
        "HOT SPARES",
        "ZONE OUTAGE",
        "FAILOVER PAUSED",
        "AGE",
      ]);
    });

    it("are listed together under the understudy category", async () => {
      const out = await kubectl("get", "understudy", "-n", namespace, "-o", "name");
      expect(out.trim().split("\n")).toEqual(
        expect.arrayContaining([
          `contingencypool.understudy.dev/${pool}`,
          "poolclaim.understudy.dev/batch-high",
          "poolclaim.understudy.dev/batch-low",
          "storageservice.understudy.dev/kv",
        ]),
      );
    });
  });
});

describe("kubectl explain", () => {
  // The API server publishes a new CRD's OpenAPI shortly after it is established.
  const explain = (field: string) => eventually(`kubectl explain ${field}`, () => kubectl("explain", field));

  it.each([
    [
      "contingencypools.spec.revocation.emergencyGraceSeconds",
      "Grace period, in seconds, of a tenant pod revoked to start",
    ],
    ["contingencypools.spec.zones.name", "a value of the node label topology.kubernetes.io/zone"],
    ["poolclaims.spec.bid", "the claim with the lowest bid loses its slot first"],
    [
      "poolclaims.spec.template.spec.containers",
      "fields other than name and image are passed to the pod unchanged",
    ],
    ["poolclaims.status.phase", "Revoking: its slot is being taken back"],
    ["storageservices.spec.failureDetection.probeTimeoutMilliseconds", "How long one probe may take"],
    ["storageservices.spec.servers.storage.size", "Size of each server node's volume"],
    ["storageservices.status.lastFailover.timeline.step", "Step reached"],
  ])("%s reads its description", async (field, text) => {
    const out = await explain(field);
    expect(out.replace(/\s+/g, " ")).toContain(text);
  });

  it("lists nested fields with their descriptions", async () => {
    const out = (await explain("storageservices.spec.failureDetection")).replace(/\s+/g, " ");
    expect(out).toContain("probePeriodMilliseconds <integer>");
    expect(out).toContain("How often the operator probes the head node");
    expect(out).toContain("failureThreshold <integer>");
  });
});
