// The NetworkPolicies a StorageService owns, read back from the API server, asked what they let
// through for the real pods of each role: the service's head and servers, a tenant pod in the
// service's own namespace, a client, the operator. The test cluster has no network plugin that
// enforces them, so test/support/network-policy.ts plays that part (as Calico or Cilium would).
import * as k8s from "@kubernetes/client-node";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { GROUP, STORAGE_SERVICE_PLURAL, VERSION } from "../../src/api/index.ts";
import { METRICS_PORT } from "../../src/controllers/storage-service/manifests.ts";
import { mergePatchOptions } from "../../src/kube/client.ts";
import { installCrds } from "../support/crds.ts";
import { createScopedClaim, createScopedPool, createService, getService } from "../support/failover.ts";
import { deleteNamespace, eventually, freshNamespace, testClient } from "../support/kube.ts";
import { admitted, type PodPlace } from "../support/network-policy.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import { deletePool, testPoolSelector } from "../support/pools.ts";

const REPO = join(import.meta.dirname, "../..");
const client = testClient();
const networking = client.kc.makeApiClient(k8s.NetworkingV1Api);
const run = Date.now().toString(36);
const scope = `netpol-${run}`;
const pool = `netpol-${run}`;
const HEAD_PORT = 7000;
const SERVER_PORT = 7001;
let operator: OperatorProcess;
let opNs: string;
let ns: string;

/** The operator Deployment's pod labels, from the plain manifests rendered from the chart. */
function operatorPodLabels(): Record<string, string> {
  const docs = parseAllDocuments(readFileSync(join(REPO, "deploy/manifests/understudy.yaml"), "utf8"));
  return docs.map((d) => d.toJSON() as k8s.V1Deployment).find((d) => d?.kind === "Deployment")!.spec!.template
    .metadata!.labels!;
}

const place = (pod: k8s.V1Pod): PodPlace => ({
  namespace: pod.metadata!.namespace!,
  labels: pod.metadata!.labels ?? {},
});

async function policiesOf(namespace: string): Promise<k8s.V1NetworkPolicy[]> {
  return (
    await networking.listNamespacedNetworkPolicy({ namespace, labelSelector: "understudy.dev/service=kv" })
  ).items;
}

beforeAll(async () => {
  await installCrds();
  opNs = await freshNamespace(client, "netpol-op");
  ns = await freshNamespace(client, "netpol");
  operator = await startOperator({ namespace: opNs, poolSelector: testPoolSelector(scope) });
  await createScopedPool(client, pool, scope, {
    zones: { "zone-a": 1, "zone-b": 1, "zone-c": 1 },
    allowedNamespaces: [ns],
  });
  await createScopedClaim(client, scope, ns, "tenant-b", pool, 10, { zone: "zone-b" });
  await createService(client, scope, ns, "kv", pool);
});

afterAll(async () => {
  await deletePool(client, pool).catch(() => undefined);
  if (ns) await deleteNamespace(client, ns);
  await operator?.stop();
  if (opNs) await deleteNamespace(client, opNs);
});

describe("a StorageService's NetworkPolicies, as stored by the API server", () => {
  let policies: k8s.V1NetworkPolicy[];
  let head: PodPlace;
  let servers: PodPlace[];
  let tenant: PodPlace;

  beforeAll(async () => {
    policies = await eventually("both NetworkPolicies", async () => {
      const items = await policiesOf(ns);
      return items.length === 2 && items;
    });
    const pods = await eventually(
      "the head, three servers and the tenant pod",
      async () => {
        const items = (await client.core.listNamespacedPod({ namespace: ns })).items;
        const role = (r: string) => items.filter((p) => p.metadata?.labels?.["understudy.dev/role"] === r);
        return role("head").length >= 1 && role("server").length === 3 && role("tenant").length === 1 && role;
      },
      60_000,
      250,
    );
    head = place(pods("head")[0]!);
    servers = pods("server").map(place);
    tenant = place(pods("tenant")[0]!);
  });

  it("are owned by the StorageService, one for the head and one for the servers", async () => {
    const service = await getService(client, ns, "kv");
    expect(policies.map((p) => p.metadata!.name).sort()).toEqual(["kv-head", "kv-servers"]);
    for (const p of policies) {
      expect(p.metadata!.ownerReferences).toEqual([
        expect.objectContaining({
          kind: "StorageService",
          name: "kv",
          uid: service.metadata.uid,
          controller: true,
        }),
      ]);
      expect(p.spec!.policyTypes).toEqual(["Ingress"]);
    }
  });

  it("servers: reachable on their port from the service's head and servers only", () => {
    const client: PodPlace = { namespace: ns, labels: { app: "web" } };
    for (const server of servers) {
      expect(admitted(policies, head, server, SERVER_PORT)).toBe(true);
      for (const peer of servers) expect(admitted(policies, peer, server, SERVER_PORT)).toBe(true);
      expect(admitted(policies, tenant, server, SERVER_PORT)).toBe(false);
      expect(admitted(policies, client, server, SERVER_PORT)).toBe(false);
      expect(admitted(policies, head, server, METRICS_PORT)).toBe(false);
    }
  });

  it("head: clients of its namespace and the operator's pods, not the tenant pod beside it", () => {
    const client: PodPlace = { namespace: ns, labels: { app: "web" } };
    const elsewhere: PodPlace = { namespace: "default", labels: { app: "web" } };
    const operatorPod: PodPlace = { namespace: opNs, labels: operatorPodLabels() };
    expect(tenant.labels["understudy.dev/role"]).toBe("tenant");
    expect(admitted(policies, client, head, HEAD_PORT)).toBe(true);
    expect(admitted(policies, operatorPod, head, HEAD_PORT)).toBe(true);
    expect(admitted(policies, tenant, head, HEAD_PORT)).toBe(false);
    expect(admitted(policies, elsewhere, head, HEAD_PORT)).toBe(false);
    expect(admitted(policies, { ...operatorPod, namespace: "default" }, head, HEAD_PORT)).toBe(false);
    expect(admitted(policies, client, head, METRICS_PORT)).toBe(false);
  });

  it("follow the spec: clients from a labelled namespace, and a metrics scraper", async () => {
    await client.custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        plural: STORAGE_SERVICE_PLURAL,
        namespace: ns,
        name: "kv",
        body: {
          spec: {
            clients: { namespaceSelector: { matchLabels: { team: "web" } } },
            metricsScrapers: {
              namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } },
              podSelector: { matchLabels: { app: "prometheus" } },
            },
          },
        },
      },
      mergePatchOptions,
    );
    const webClient: PodPlace = {
      namespace: "web",
      namespaceLabels: { team: "web" },
      labels: { app: "web" },
    };
    const prometheus: PodPlace = { namespace: "monitoring", labels: { app: "prometheus" } };
    // Both policies are applied in the same reconcile, one beside the other: wait for both.
    const updated = await eventually("both policies to follow the new spec", async () => {
      const items = await policiesOf(ns);
      return (
        items.length === 2 &&
        admitted(items, webClient, head, HEAD_PORT) &&
        admitted(items, prometheus, servers[0]!, METRICS_PORT) &&
        items
      );
    });
    expect(admitted(updated, { namespace: ns, labels: { app: "web" } }, head, HEAD_PORT)).toBe(false);
    expect(
      admitted(updated, { ...tenant, namespace: "web", namespaceLabels: { team: "web" } }, head, HEAD_PORT),
    ).toBe(false);
    expect(admitted(updated, prometheus, head, METRICS_PORT)).toBe(true);
    expect(admitted(updated, prometheus, servers[0]!, METRICS_PORT)).toBe(true);
    expect(admitted(updated, prometheus, head, HEAD_PORT)).toBe(false);
    expect(admitted(updated, prometheus, servers[0]!, SERVER_PORT)).toBe(false);
  });
});
