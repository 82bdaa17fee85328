import type * as k8s from "@kubernetes/client-node";
import * as kube from "@kubernetes/client-node";
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments, parseDocument } from "yaml";
import { poolResource as poolRef, storageServiceResource as serviceRef } from "../../src/api/index.ts";
import type { CustomObject } from "../../src/kube/client.ts";
import { isNotFound } from "../../src/kube/errors.ts";
import { binaries, kubeconfigPath } from "../cluster/config.ts";
import { installCrds } from "../support/crds.ts";
import { routedEpoch, storageServiceManifest, waitForFailover, waitForServing } from "../support/failover.ts";
import {
  deleteNamespace,
  eventually,
  freshNamespace,
  makePodNotReady,
  serviceAccountKubeConfig,
  testClient,
  testKubeConfig,
} from "../support/kube.ts";
import { metricValue, startOperator, type OperatorProcess } from "../support/operator.ts";
import { deletePool, poolManifest, slotLeases } from "../support/pools.ts";

// Installing the operator the two documented ways on the real test cluster. The Helm chart lints,
// installs into a fresh namespace and creates its Deployment and RBAC; then the operator process
// runs with nothing but the chart's ServiceAccount token, and a pool gets its slots: the RBAC is
// enough, and the operator's logs show no refusal. The plain manifests install the same objects
// (in understudy-system, the namespace they target).
// KWOK marks the chart's pods Running; no process runs in them, hence the operator as a child process.

const root = join(import.meta.dirname, "../..");
const chart = join(root, "deploy/helm/understudy");
const manifestsFile = join(root, "deploy/manifests/understudy.yaml");
const kubeconfig = process.env.KUBECONFIG ?? kubeconfigPath;
const work = mkdtempSync(join(tmpdir(), "understudy-install-"));
const toolEnv = {
  ...process.env,
  KUBECONFIG: kubeconfig,
  HELM_CACHE_HOME: join(work, "helm-cache"),
  HELM_CONFIG_HOME: join(work, "helm-config"),
  HELM_DATA_HOME: join(work, "helm-data"),
};

async function tool(binary: string, ...args: string[]): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)(binary, args, {
      env: toolEnv,
      cwd: root,
      maxBuffer: 16 << 20,
    });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(
      `${binary.split("/").pop()} ${args.join(" ")} failed: ${e.stderr || e.stdout || e.message}`,
      {
        cause: err,
      },
    );
  }
}
const helm = (...args: string[]) => tool(binaries.helm, ...args);
const kubectl = (...args: string[]) => tool(binaries.kubectl, ...args);

type Obj = k8s.KubernetesObject;
const documents = (text: string): Obj[] =>
  parseAllDocuments(text)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
const identify = (o: Obj) => `${o.kind} ${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;

const client = testClient("understudy-install-test");
const objects = kube.KubernetesObjectApi.makeApiClient(testKubeConfig());
const run = Date.now().toString(36);
const release = `understudy-${run}`;
const poolName = `install-${run}`;
/** The operator manages only pools with this label: other tests' pools on the shared cluster are not its business. */
const instanceLabel = "understudy.dev/instance";
const poolSelector = `${instanceLabel}=${release}`;
let namespace: string;
let installed: Obj[] = [];
let operator: OperatorProcess | undefined;
let storageNamespace: string | undefined;

/** A kubeconfig for the test cluster that authenticates as a ServiceAccount, with a token from the TokenRequest API. */
async function serviceAccountKubeconfig(serviceAccount: string, ns: string): Promise<string> {
  const path = join(work, `${ns}-${serviceAccount}.kubeconfig`);
  writeFileSync(path, (await serviceAccountKubeConfig(client, serviceAccount, ns)).exportConfig());
  return path;
}

/** Whether the holder of `kc` may do `verb` on `resource` (a SelfSubjectAccessReview, as kubectl auth can-i). */
async function canI(kc: k8s.KubeConfig, attributes: k8s.V1ResourceAttributes): Promise<boolean> {
  const review = await kc.makeApiClient(kube.AuthorizationV1Api).createSelfSubjectAccessReview({
    body: { spec: { resourceAttributes: attributes } },
  });
  return review.status!.allowed;
}

async function exists(o: Obj): Promise<boolean> {
  try {
    await objects.read({
      apiVersion: o.apiVersion!,
      kind: o.kind!,
      metadata: { name: o.metadata!.name!, namespace: o.metadata!.namespace },
    });
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

beforeAll(async () => {
  await installCrds();
  namespace = await freshNamespace(client, "install");
});

afterAll(async () => {
  // The service first, while the operator still runs and can let go of its slot.
  if (storageNamespace) {
    await client.deleteCustom(serviceRef, "kv", storageNamespace).catch(() => undefined);
    await deleteNamespace(client, storageNamespace);
  }
  await operator?.stop();
  await deletePool(client, poolName);
  await helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "2m").catch(() => undefined);
  if (namespace) await deleteNamespace(client, namespace);
  rmSync(work, { recursive: true, force: true });
});

describe("the Helm chart", () => {
  it("passes helm lint", async () => {
    expect(await helm("lint", "--strict", chart)).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  it("installs into a fresh namespace: the operator Deployment, its ServiceAccount, RBAC and metrics Service", async () => {
    // The CRDs came from installCrds(), as from `kubectl apply -f crds/`: not this release's.
    await helm(
      "install",
      release,
      chart,
      "-n",
      namespace,
      "--set",
      "crds.create=false",
      "--set-string",
      `operator.poolSelector=${poolSelector}`,
      "--wait",
      "--timeout",
      "2m",
    );
    installed = documents(await helm("get", "manifest", release, "-n", namespace));
    expect(installed.map(identify).sort()).toEqual(
      [
        `ClusterRole /${release}`,
        `ClusterRoleBinding /${release}`,
        `Deployment ${namespace}/${release}`,
        `PodDisruptionBudget ${namespace}/${release}`,
        `Role ${namespace}/${release}`,
        `Role kube-node-lease/${release}-node-leases`,
        `RoleBinding ${namespace}/${release}`,
        `RoleBinding kube-node-lease/${release}-node-leases`,
        `Service ${namespace}/${release}-metrics`,
        `ServiceAccount ${namespace}/${release}`,
        `ValidatingAdmissionPolicy /${release}-poolclaim-requester`,
        `ValidatingAdmissionPolicy /${release}-storageservice-namespace`,
        `ValidatingAdmissionPolicyBinding /${release}-poolclaim-requester`,
        `ValidatingAdmissionPolicyBinding /${release}-storageservice-namespace`,
      ].sort(),
    );
    for (const o of installed) expect(await exists(o), identify(o)).toBe(true);
    const deployment = await client.apps.readNamespacedDeployment({ name: release, namespace });
    expect(deployment.status?.readyReplicas).toBe(2);
    const env = deployment.spec!.template.spec!.containers[0]!.env!;
    expect(env.find((e) => e.name === "UNDERSTUDY_POOL_SELECTOR")?.value).toBe(poolSelector);
    // The CRDs are there, managed apart from the release.
    for (const plural of ["contingencypools", "poolclaims", "storageservices"])
      expect(
        await exists({
          apiVersion: "apiextensions.k8s.io/v1",
          kind: "CustomResourceDefinition",
          metadata: { name: `${plural}.understudy.dev` },
        }),
      ).toBe(true);
  });

  it("grants its ServiceAccount what the operator uses and no more", async () => {
    const kc = new kube.KubeConfig();
    kc.loadFromFile(await serviceAccountKubeconfig(release, namespace));
    const may = (a: k8s.V1ResourceAttributes) => canI(kc, a);
    expect(await may({ group: "coordination.k8s.io", resource: "leases", verb: "update", namespace })).toBe(
      true,
    );
    expect(
      await may({
        group: "coordination.k8s.io",
        resource: "leases",
        verb: "watch",
        namespace: "kube-node-lease",
      }),
    ).toBe(true);
    expect(
      await may({
        group: "understudy.dev",
        resource: "contingencypools",
        subresource: "status",
        verb: "patch",
      }),
    ).toBe(true);
    expect(await may({ group: "", resource: "pods", verb: "create", namespace: "any-tenant" })).toBe(true);
    // Leases elsewhere, node writes, RBAC and CRD writes are not the operator's business.
    expect(
      await may({
        group: "coordination.k8s.io",
        resource: "leases",
        verb: "update",
        namespace: "kube-node-lease",
      }),
    ).toBe(false);
    expect(
      await may({ group: "coordination.k8s.io", resource: "leases", verb: "get", namespace: "kube-system" }),
    ).toBe(false);
    expect(await may({ group: "", resource: "nodes", verb: "patch" })).toBe(false);
    expect(await may({ group: "rbac.authorization.k8s.io", resource: "clusterroles", verb: "create" })).toBe(
      false,
    );
    expect(
      await may({ group: "apiextensions.k8s.io", resource: "customresourcedefinitions", verb: "update" }),
    ).toBe(false);
    expect(await may({ group: "understudy.dev", resource: "contingencypools", verb: "delete" })).toBe(false);
    // Secrets: it keeps each service's CA, serving certificate and client tokens, so it reads and
    // lists them (RBAC cannot narrow that to its own), but never watches nor patches anyone's.
    for (const verb of ["create", "get", "list", "update", "delete"])
      expect(await may({ group: "", resource: "secrets", verb, namespace: "any-tenant" })).toBe(true);
    for (const verb of ["watch", "patch"])
      expect(await may({ group: "", resource: "secrets", verb, namespace: "any-tenant" })).toBe(false);
    expect(
      await may({ group: "apps", resource: "statefulsets", verb: "delete", namespace: "any-tenant" }),
    ).toBe(false);
    // A storage service's NetworkPolicies: applied (patch, which may create), never deleted by hand.
    for (const verb of ["create", "patch"]) {
      expect(
        await may({ group: "networking.k8s.io", resource: "networkpolicies", verb, namespace: "any-tenant" }),
      ).toBe(true);
    }
    expect(
      await may({
        group: "networking.k8s.io",
        resource: "networkpolicies",
        verb: "delete",
        namespace: "any-tenant",
      }),
    ).toBe(false);
  });

  it("is enough for the operator: with only the chart's ServiceAccount token, a pool gets its slots", async () => {
    operator = await startOperator({
      namespace,
      identity: `${release}-test`,
      kubeconfig: await serviceAccountKubeconfig(release, namespace),
      poolSelector,
    });
    const pool = poolManifest(poolName, {
      zones: { "zone-a": 1, "zone-b": 1, "zone-c": 1 },
      allowedNamespaces: [],
    });
    await client.createCustom(poolRef, {
      ...pool,
      metadata: { ...pool.metadata, labels: { [instanceLabel]: release } },
    });

    const leases = await eventually(
      "3 slot Leases in the release namespace",
      async () => {
        const l = await slotLeases(client, namespace, poolName);
        return l.length === 3 && l;
      },
      60_000,
      250,
    );
    expect(leases.map((l) => l.metadata!.labels!["understudy.dev/zone"]).sort()).toEqual([
      "zone-a",
      "zone-b",
      "zone-c",
    ]);
    const status = await eventually(
      "the pool's status to count 3 free slots",
      async () => {
        const pool = await client.getCustom<
          CustomObject<unknown, { slots?: number; free?: number; zones?: { name: string; free?: number }[] }>
        >(poolRef, poolName);
        return pool.status?.free === 3 && pool.status;
      },
      60_000,
      250,
    );
    expect(status.slots).toBe(3);
    expect(status.zones?.map((z) => [z.name, z.free])).toEqual([
      ["zone-a", 1],
      ["zone-b", 1],
      ["zone-c", 1],
    ]);
    // It leads through the leader-election Lease the chart's Role lets it write.
    const leader = await client.coordination.readNamespacedLease({ name: "understudy-operator", namespace });
    expect(leader.spec?.holderIdentity).toBe(`${release}-test`);
    // Its metrics report the slots.
    const metrics = await eventually("slot metrics", async () => {
      const text = await operator!.metrics();
      return (
        metricValue(text, "understudy_slots", { pool: poolName, zone: "zone-b", state: "free" }) === 1 && text
      );
    });
    expect(metricValue(metrics, "understudy_slots", { pool: poolName, zone: "zone-a", state: "free" })).toBe(
      1,
    );
    // RBAC refused nothing it tried (the API server's denials read: User "…" cannot <verb> resource "…").
    expect(readFileSync(operator.logFile, "utf8")).not.toMatch(/cannot \w+ resource/);
  });

  it("is enough for failovers: a head made NotReady moves onto a slot, then a switchover asked for with the CLI", async () => {
    storageNamespace = await freshNamespace(client, "install-kv");
    await client.createCustom(serviceRef, storageServiceManifest(storageNamespace, "kv", poolName));
    const { pod } = await waitForServing(client, storageNamespace, "kv", 1, 90_000);

    await makePodNotReady(client, storageNamespace, pod.metadata!.name!);
    const failedOver = await waitForFailover(client, storageNamespace, "kv", 1, 90_000);
    expect(failedOver.status!.lastFailover).toMatchObject({
      step: "Done",
      reason: "PodNotReady",
      fromEpoch: 1,
      epoch: 2,
    });
    // The new head runs on a slot of the pool, which the ledger gives the service.
    const slot = failedOver.status!.head!.leaseName!;
    const lease = await client.coordination.readNamespacedLease({ name: slot, namespace });
    expect(lease.spec?.holderIdentity).toBe(`service:${storageNamespace}/kv`);
    expect(await routedEpoch(client, storageNamespace, "kv")).toBe("2");
    await waitForServing(client, storageNamespace, "kv", 2, 90_000);

    // A switchover through `understudy failover --wait`: the operator acts on the annotation and the
    // command prints the failover it ran.
    const { stdout } = await promisify(execFile)(
      join(root, "node_modules/.bin/node"),
      [
        join(root, "src/cli/main.ts"),
        "failover",
        "kv",
        "-n",
        storageNamespace,
        "--wait",
        "--timeout",
        "90",
        "-o",
        "json",
      ],
      { env: { ...process.env, KUBECONFIG: kubeconfig }, cwd: root },
    );
    const switched = JSON.parse(stdout) as {
      switchover: string;
      failover: { reason: string; fromEpoch: number; epoch: number; timeline: { step: string }[] };
    };
    expect(switched.failover).toMatchObject({ reason: "Manual", fromEpoch: 2, epoch: 3 });
    expect(switched.failover.timeline.at(-1)?.step).toBe("Done");
    const after = await client.getCustom<
      CustomObject<unknown, { handledSwitchover?: string; epoch?: number }>
    >(serviceRef, "kv", storageNamespace);
    expect(after.status).toMatchObject({ handledSwitchover: switched.switchover, epoch: 3 });

    const metrics = await operator!.metrics();
    expect(
      metricValue(metrics, "understudy_storage_service_epoch", {
        service_namespace: storageNamespace,
        service_name: "kv",
      }),
    ).toBe(3);
    expect(readFileSync(operator!.logFile, "utf8")).not.toMatch(/cannot \w+ resource/);
  });
});

describe("the plain manifests", () => {
  const manifests = documents(readFileSync(manifestsFile, "utf8"));
  const target = "understudy-system";
  let namespaceExisted = false;

  afterAll(async () => {
    // Everything the manifests created; the namespace too unless it was there before.
    for (const o of [...manifests].reverse()) {
      if (o.kind === "Namespace" && namespaceExisted) continue;
      await objects
        .delete({
          apiVersion: o.apiVersion!,
          kind: o.kind!,
          metadata: { name: o.metadata!.name!, namespace: o.metadata!.namespace },
        })
        .catch(() => undefined);
    }
  });

  it("install the same objects as the chart, in understudy-system", async () => {
    // A namespace left Terminating by an earlier run must be gone before it can be created again.
    const phase = await eventually(
      `namespace ${target} not Terminating`,
      async () => {
        try {
          const current = (await client.core.readNamespace({ name: target })).status?.phase;
          return current !== "Terminating" && current;
        } catch (err) {
          if (isNotFound(err)) return "Absent";
          throw err;
        }
      },
      120_000,
      500,
    );
    namespaceExisted = phase !== "Absent";
    await kubectl("apply", "--server-side", "-f", join(root, "crds"));
    await kubectl("apply", "-f", manifestsFile);
    for (const o of manifests) expect(await exists(o), identify(o)).toBe(true);

    // The chart's objects under the release's name and namespace are these, plus the Namespace.
    const asManifests = (o: Obj) =>
      identify(o).replace(` ${namespace}/`, ` ${target}/`).replaceAll(release, "understudy");
    expect(
      manifests
        .filter((o) => o.kind !== "Namespace")
        .map(identify)
        .sort(),
    ).toEqual(installed.map(asManifests).sort());

    const ready = await eventually(
      "the operator Deployment in understudy-system to have 2 ready replicas",
      async () =>
        (await client.apps.readNamespacedDeployment({ name: "understudy", namespace: target })).status
          ?.readyReplicas === 2,
      120_000,
      500,
    );
    expect(ready).toBe(true);
  });
});

describe("the chart's CRDs", () => {
  const crdRelease = `understudy-crds-${run}`;
  const crdNames = readdirSync(join(root, "crds"))
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => f.replace(/\.yaml$/, ""));
  const poolCrd = "contingencypools.understudy.dev";
  const keptPool = `crds-kept-${run}`;
  const changedChart = join(work, "changed-chart");
  const extensions = testKubeConfig().makeApiClient(kube.ApiextensionsV1Api);
  let crdNamespace: string | undefined;
  // No pool carries this label: the release's operator replicas (KWOK pods, no process) manage nothing.
  const helmRelease = (command: "install" | "upgrade", chartDir: string) =>
    helm(
      command,
      crdRelease,
      chartDir,
      "-n",
      crdNamespace!,
      "--set-string",
      `operator.poolSelector=${instanceLabel}=${crdRelease}`,
      "--wait",
      "--timeout",
      "2m",
    );
  const specProperties = async () =>
    Object.keys(
      (await extensions.readCustomResourceDefinition({ name: poolCrd })).spec.versions[0]!.schema!
        .openAPIV3Schema!.properties!.spec!.properties!,
    );

  afterAll(async () => {
    await deletePool(client, keptPool);
    if (crdNamespace) {
      await helm("uninstall", crdRelease, "-n", crdNamespace, "--wait").catch(() => undefined);
      await deleteNamespace(client, crdNamespace);
    }
    // Whatever happened above, the cluster's CRDs are the repository's again for the tests after.
    await installCrds();
  });

  it("install with the release, which takes over CRDs applied before once they are labelled for it", async () => {
    crdNamespace = await freshNamespace(client, "install-crds");
    // The adoption docs/OPERATIONS.md ("Upgrading") describes for CRDs that came from elsewhere.
    await kubectl("label", "crd", ...crdNames, "app.kubernetes.io/managed-by=Helm", "--overwrite");
    await kubectl(
      "annotate",
      "crd",
      ...crdNames,
      `meta.helm.sh/release-name=${crdRelease}`,
      `meta.helm.sh/release-namespace=${crdNamespace}`,
      "--overwrite",
    );
    await helmRelease("install", chart);
    const manifest = documents(await helm("get", "manifest", crdRelease, "-n", crdNamespace));
    expect(
      manifest
        .filter((o) => o.kind === "CustomResourceDefinition")
        .map((o) => o.metadata!.name)
        .sort(),
    ).toEqual([...crdNames].sort());
    for (const name of crdNames) {
      const crd = await extensions.readCustomResourceDefinition({ name });
      expect(crd.metadata!.annotations).toMatchObject({
        "helm.sh/resource-policy": "keep",
        "meta.helm.sh/release-name": crdRelease,
      });
    }
  });

  it("are upgraded by helm upgrade: a field added to a CRD is served", async () => {
    // Before: the API server prunes a field the schema does not know.
    const pool = poolManifest(keptPool, { zones: { "zone-a": 1 }, allowedNamespaces: [] });
    await client.createCustom(poolRef, { ...pool, spec: { ...pool.spec, upgradeCheck: "before" } });
    const before = await client.getCustom<CustomObject<Record<string, unknown>>>(poolRef, keptPool);
    expect(before.spec).not.toHaveProperty("upgradeCheck");

    // The chart of a release whose ContingencyPool has one more spec field.
    cpSync(chart, changedChart, { recursive: true });
    const file = join(changedChart, "templates/crds", `${poolCrd}.yaml`);
    const [open, ...rest] = readFileSync(file, "utf8").trimEnd().split("\n");
    const close = rest.pop();
    const crd = parseDocument(rest.join("\n"));
    crd.setIn(
      [
        "spec",
        "versions",
        0,
        "schema",
        "openAPIV3Schema",
        "properties",
        "spec",
        "properties",
        "upgradeCheck",
      ],
      crd.createNode({ type: "string", description: "A field of the next release." }),
    );
    writeFileSync(file, [open, crd.toString({ lineWidth: 0 }), close, ""].join("\n"));
    await helmRelease("upgrade", changedChart);

    expect(await specProperties()).toContain("upgradeCheck");
    await eventually("the new field to be kept by the API server", async () => {
      await client.patchCustom(poolRef, keptPool, undefined, { spec: { upgradeCheck: "after" } });
      const after = await client.getCustom<CustomObject<Record<string, unknown>>>(poolRef, keptPool);
      return after.spec?.upgradeCheck === "after";
    });
  });

  it("are kept by helm uninstall, and so is every custom resource", async () => {
    // Back to this repository's CRDs: the upgrade removes the field again.
    await helmRelease("upgrade", chart);
    expect(await specProperties()).not.toContain("upgradeCheck");

    await helm("uninstall", crdRelease, "-n", crdNamespace!, "--wait", "--timeout", "2m");
    await eventually("the release's Deployment to be gone", async () => {
      try {
        await client.apps.readNamespacedDeployment({ name: crdRelease, namespace: crdNamespace! });
        return false;
      } catch (err) {
        if (isNotFound(err)) return true;
        throw err;
      }
    });
    for (const name of crdNames) {
      const crd = await extensions.readCustomResourceDefinition({ name });
      expect(crd.metadata!.deletionTimestamp, name).toBeUndefined();
    }
    const pool = await client.getCustom<CustomObject>(poolRef, keptPool);
    expect(pool.metadata?.deletionTimestamp).toBeUndefined();
  });
});
