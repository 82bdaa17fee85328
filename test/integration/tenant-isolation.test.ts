import * as k8s from "@kubernetes/client-node";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { CLAIM_PLURAL, GROUP, POOL_PLURAL, STORAGE_SERVICE_PLURAL, VERSION } from "../../src/api/index.ts";
import { KubeClient, mergePatchOptions } from "../../src/kube/client.ts";
import { errorMessage, isNotFound } from "../../src/kube/errors.ts";
import { installCrds } from "../support/crds.ts";
import { storageServiceManifest } from "../support/failover.ts";
import {
  deleteNamespace,
  eventually,
  freshNamespace,
  serviceAccountKubeConfig,
  testClient,
  testKubeConfig,
} from "../support/kube.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import {
  claimManifest,
  createClaim,
  createPool,
  deleteClaim,
  deletePool,
  getClaim,
  phaseOf,
  poolManifest,
  slotLeases,
  tenantPodSpec,
  testPoolSelector,
  type Claim,
} from "../support/pools.ts";

// Tenants are not trusted: whatever a claim's author writes, edits or asks for, no pod runs on a
// slot that the pool did not allow, and the result is read back from the API server. Each test
// tries one attack.

const client = testClient();
const rbac = testKubeConfig().makeApiClient(k8s.RbacAuthorizationV1Api);
const run = `iso-${Date.now().toString(36)}`;
const pool = run;
let opNs: string;
let tenants: string;
let storage: string;
let operator: OperatorProcess;
/** Every version of every pod the API server showed in the tenants' namespace. */
const podsSeen: k8s.V1Pod[] = [];
let podWatch: { abort(): void } | undefined;

beforeAll(async () => {
  await installCrds();
  opNs = await freshNamespace(client, "understudy");
  tenants = await freshNamespace(client, "iso-tenants");
  storage = await freshNamespace(client, "iso-storage");
  podWatch = await new k8s.Watch(testKubeConfig()).watch(
    `/api/v1/namespaces/${tenants}/pods`,
    {},
    (_type, pod: k8s.V1Pod) => podsSeen.push(pod),
    () => undefined,
  );
  operator = await startOperator({ namespace: opNs, poolSelector: testPoolSelector(run) });
  await createPool(
    client,
    poolManifest(
      pool,
      {
        zones: { "zone-a": 2, "zone-b": 2 },
        allowedNamespaces: [tenants],
        allowedServiceNamespaces: [storage],
        plannedGraceSeconds: 1,
        tenantPods: { serviceAccountNames: ["builder"] },
      },
      run,
    ),
  );
  await client.core.createNamespacedServiceAccount({
    namespace: tenants,
    body: { metadata: { name: "builder" } },
  });
});

afterAll(async () => {
  podWatch?.abort();
  await operator?.stop();
  await deletePool(client, pool);
  for (const ns of [tenants, storage, opNs]) if (ns) await deleteNamespace(client, ns);
});

const claimStatus = async (name: string) => (await getClaim(client, tenants, name)).status ?? {};
const condition = (c: Record<string, unknown>, type: string) =>
  (c.conditions as { type: string; status: string; reason: string; message: string }[] | undefined)?.find(
    (x) => x.type === type,
  );
const tenantPod = (claim: string) =>
  client.core.readNamespacedPod({ name: `${claim}-tenant`, namespace: tenants });
const podGone = async (claim: string) => {
  try {
    await tenantPod(claim);
    return false;
  } catch (err) {
    return isNotFound(err);
  }
};
const bound = (name: string) =>
  eventually(`${name} Bound with a pod`, async () => {
    const c = await getClaim(client, tenants, name);
    return phaseOf(c) === "Bound" && (await tenantPod(name));
  });
async function claimEvents(name: string): Promise<k8s.CoreV1Event[]> {
  const list = await client.core.listNamespacedEvent({
    namespace: tenants,
    fieldSelector: `involvedObject.name=${name}`,
  });
  return list.items;
}
const patchClaimSpec = (name: string, spec: Record<string, unknown>) =>
  client.custom.patchNamespacedCustomObject(
    { group: GROUP, version: VERSION, plural: CLAIM_PLURAL, namespace: tenants, name, body: { spec } },
    mergePatchOptions,
  );
const patchPoolSpec = (spec: Record<string, unknown>) =>
  client.custom.patchClusterCustomObject(
    { group: GROUP, version: VERSION, plural: POOL_PLURAL, name: pool, body: { spec } },
    mergePatchOptions,
  );

describe("tenant isolation", () => {
  it("revokes a Bound claim whose template is edited to escape, and never creates its pod", async () => {
    await createClaim(client, claimManifest(tenants, "escape", pool, 5, { podSpec: tenantPodSpec() }));
    const before = await bound("escape");
    const slot = before.metadata!.labels!["understudy.dev/slot"]!;

    await patchClaimSpec("escape", {
      template: {
        spec: tenantPodSpec(
          {
            hostNetwork: true,
            hostPID: true,
            volumes: [{ name: "root", hostPath: { path: "/" } }],
            securityContext: { runAsUser: 0 },
          },
          { volumeMounts: [{ name: "root", mountPath: "/host" }] },
        ),
      },
    });
    await client.core.deleteNamespacedPod({
      name: "escape-tenant",
      namespace: tenants,
      gracePeriodSeconds: 0,
    });

    const revoked = await eventually("escape revoked", async () => {
      const s = await claimStatus("escape");
      return s.phase === "Revoked" && s;
    });
    expect(revoked.reason).toBe("PodSecurityViolation");
    expect(revoked.message).toMatch(/no longer passes admission: .*hostNetwork=true/);
    const lease = (await slotLeases(client, opNs, pool)).find((l) => l.metadata!.name === slot)!;
    expect(lease.spec!.holderIdentity ?? "").not.toBe(`claim:${tenants}/escape`);
    await eventually("escape's pod gone", () => podGone("escape"));

    // Whatever the operator did meanwhile, the API server never held a pod with the tenant's edit.
    const escaped = podsSeen.filter(
      (p) =>
        p.spec?.hostNetwork ||
        p.spec?.hostPID ||
        p.spec?.volumes?.some((v) => v.hostPath) ||
        p.spec?.securityContext?.runAsUser === 0,
    );
    expect(escaped).toEqual([]);
    expect(podsSeen.some((p) => p.metadata?.name === "escape-tenant")).toBe(true);
  });

  it("refuses a claim bigger than a slot, naming the container and the resource", async () => {
    await createClaim(
      client,
      claimManifest(tenants, "huge", pool, 50, {
        podSpec: tenantPodSpec({}, { resources: { requests: { cpu: "64", memory: "256Gi" } } }),
      }),
    );
    const refused = await eventually("huge refused", async () => {
      const s = await claimStatus("huge");
      return s.reason === "PodExceedsSlot" && s;
    });
    expect(refused.phase).toBe("Pending");
    expect(condition(refused, "Valid")).toMatchObject({ status: "False", reason: "PodExceedsSlot" });
    expect(refused.message).toContain('container "worker" asks for cpu 64, more than the slot\'s 500m');
    expect(refused.message).toContain('container "worker" asks for memory 256Gi');
    expect(await podGone("huge")).toBe(true);
    await deleteClaim(client, tenants, "huge");
  });

  it("refuses powers the pool does not grant, and runs an allowed pod without a token, sized to the slot", async () => {
    await createClaim(
      client,
      claimManifest(tenants, "borrow", pool, 50, {
        podSpec: tenantPodSpec({
          serviceAccountName: "default",
          priorityClassName: "system-cluster-critical",
          tolerations: [{ operator: "Exists" }],
        }),
      }),
    );
    const refused = await eventually("borrow refused", async () => {
      const s = await claimStatus("borrow");
      return s.reason === "FieldNotAllowed" && s;
    });
    expect(refused.message).toContain(
      'spec.priorityClassName: priority class "system-cluster-critical" is not allowed',
    );
    expect(refused.message).toContain("spec.tolerations");
    expect(await podGone("borrow")).toBe(true);
    await deleteClaim(client, tenants, "borrow");

    await createClaim(
      client,
      claimManifest(tenants, "token", pool, 50, {
        podSpec: tenantPodSpec(
          { volumes: [{ name: "t", projected: { sources: [{ serviceAccountToken: { path: "token" } }] } }] },
          { volumeMounts: [{ name: "t", mountPath: "/var/run/t" }] },
        ),
      }),
    );
    const tokenRefused = await eventually("token refused", async () => {
      const s = await claimStatus("token");
      return s.reason === "FieldNotAllowed" && s;
    });
    expect(tokenRefused.message).toContain('volume "t" projects a serviceAccountToken');
    expect(await podGone("token")).toBe(true);
    await deleteClaim(client, tenants, "token");

    await createClaim(
      client,
      claimManifest(tenants, "builder", pool, 5, {
        podSpec: tenantPodSpec({ serviceAccountName: "builder", terminationGracePeriodSeconds: 31_536_000 }),
      }),
    );
    const pod = await bound("builder");
    expect(pod.spec!.serviceAccountName).toBe("builder");
    expect(pod.spec!.automountServiceAccountToken).toBe(false);
    expect(pod.spec!.volumes ?? []).toEqual([]); // no projected token volume
    expect(pod.spec!.resources).toEqual({
      requests: { cpu: "500m", memory: "512Mi" },
      limits: { cpu: "500m", memory: "512Mi" },
    });
    expect(pod.spec!.priorityClassName).toBeUndefined();
    // A year's goodbye is cut to the pool's planned grace: no tenant outstays a revocation.
    expect(pod.spec!.terminationGracePeriodSeconds).toBe(1);
  });

  it("revokes Bound claims with the planned notice when their namespace leaves allowedNamespaces", async () => {
    await patchPoolSpec({ allowedNamespaces: ["someone-else"] });
    try {
      const revoked = await eventually("builder revoked", async () => {
        const s = await claimStatus("builder");
        return s.reason === "NamespaceNotAllowed" && (s.phase === "Revoking" || s.phase === "Revoked") && s;
      });
      expect(revoked.revokedBy).toBe("pool");
      await eventually("builder's pod gone", () => podGone("builder"));
      const notice = await eventually("a NamespaceNotAllowed Event", async () =>
        (await claimEvents("builder")).find((e) => e.reason === "NamespaceNotAllowed"),
      );
      expect(notice?.type).toBe("Warning");
      expect(notice?.message).toMatch(/the tenant pod stops within 1s$/);
    } finally {
      await patchPoolSpec({ allowedNamespaces: [tenants] });
    }
    await deleteClaim(client, tenants, "builder");
  });

  it("says so when the API server refuses a tenant pod, instead of reporting it as starting", async () => {
    await createClaim(
      client,
      claimManifest(tenants, "rejected", pool, 5, { podSpec: tenantPodSpec({ restartPolicy: "Sometimes" }) }),
    );
    const status = await eventually("rejected's pod refused", async () => {
      const s = await claimStatus("rejected");
      return condition(s, "Ready")?.reason === "TenantPodRefused" && s;
    });
    expect(status.phase).toBe("Bound");
    expect(condition(status, "Ready")).toMatchObject({ status: "False" });
    expect(condition(status, "Ready")!.message).toMatch(
      /the API server refused the tenant pod: .*restartPolicy/,
    );
    await eventually("a TenantPodRefused Event", async () =>
      (await claimEvents("rejected")).some((e) => e.reason === "TenantPodRefused"),
    );
    await deleteClaim(client, tenants, "rejected");
  });

  it("neither runs nor stops a pod under the claim's pod name that the claim does not own", async () => {
    // Anyone who may create pods in the namespace can take the name and copy the labels.
    await client.core.createNamespacedPod({
      namespace: tenants,
      body: {
        metadata: {
          name: "squat-tenant",
          labels: {
            "understudy.dev/pool": pool,
            "understudy.dev/role": "tenant",
            "understudy.dev/slot": "x",
          },
        },
        spec: tenantPodSpec() as k8s.V1PodSpec,
      },
    });
    await createClaim(client, claimManifest(tenants, "squat", pool, 5));
    const blocked = await eventually("squat blocked by the foreign pod", async () => {
      const s = await claimStatus("squat");
      return condition(s, "Ready")?.reason === "TenantPodNameTaken" && s;
    });
    expect(blocked.phase).toBe("Bound");
    const foreign = await tenantPod("squat");
    expect(foreign.metadata!.deletionTimestamp).toBeUndefined();
    expect(foreign.metadata!.ownerReferences).toBeUndefined();

    await client.core.deleteNamespacedPod({
      name: "squat-tenant",
      namespace: tenants,
      gracePeriodSeconds: 0,
    });
    const own = await eventually("squat's own pod", async () => {
      const pod = await tenantPod("squat");
      return pod.metadata?.ownerReferences?.[0]?.kind === "PoolClaim" && pod;
    });
    expect(own.spec!.nodeName).toBe((await claimStatus("squat")).node);
    await deleteClaim(client, tenants, "squat");
  });

  it("gives no slot to a storage service of a namespace the pool does not list", async () => {
    await client.custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: STORAGE_SERVICE_PLURAL,
      namespace: tenants,
      body: storageServiceManifest(tenants, "intruder", pool),
    });
    const contingency = await eventually("intruder's ContingencyAvailable", async () => {
      const service = (await client.custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: STORAGE_SERVICE_PLURAL,
        namespace: tenants,
        name: "intruder",
      })) as { status?: Record<string, unknown> };
      return condition(service.status ?? {}, "ContingencyAvailable");
    });
    expect(contingency).toMatchObject({ status: "False", reason: "NamespaceNotAllowed" });
    expect(contingency.message).toContain(`does not list namespace ${tenants} in allowedServiceNamespaces`);
    const leases = await slotLeases(client, opNs, pool);
    expect(leases.some((l) => l.spec?.holderIdentity === `service:${tenants}/intruder`)).toBe(false);
    await client.custom.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: STORAGE_SERVICE_PLURAL,
      namespace: tenants,
      name: "intruder",
    });
  });
});

describe("the shipped admission policies", () => {
  const suffix = `-${run}`;
  const installed: k8s.KubernetesObject[] = [];
  const objects = k8s.KubernetesObjectApi.makeApiClient(testKubeConfig());

  beforeAll(async () => {
    // The plain manifests are rendered from the chart: what both install is what is tried here.
    const manifests = readFileSync(
      join(import.meta.dirname, "../../deploy/manifests/understudy.yaml"),
      "utf8",
    );
    for (const doc of parseAllDocuments(manifests)) {
      const obj = doc.toJS() as k8s.KubernetesObject & { spec: { policyName?: string } };
      if (!obj?.kind?.startsWith("ValidatingAdmissionPolicy")) continue;
      obj.metadata!.name += suffix;
      if (obj.spec.policyName) obj.spec.policyName += suffix;
      await objects.create(obj);
      installed.push(obj);
    }
    expect(installed.map((o) => o.kind).sort()).toEqual([
      "ValidatingAdmissionPolicy",
      "ValidatingAdmissionPolicy",
      "ValidatingAdmissionPolicyBinding",
      "ValidatingAdmissionPolicyBinding",
    ]);
    // A tenant's ServiceAccount that may write claims but not pods.
    await client.core.createNamespacedServiceAccount({
      namespace: tenants,
      body: { metadata: { name: "claimer" } },
    });
    await grant("claimer", "claims", [
      { apiGroups: [GROUP], resources: [CLAIM_PLURAL], verbs: ["create", "get", "delete"] },
    ]);
  });

  afterAll(async () => {
    for (const obj of installed.reverse()) await objects.delete(obj).catch(() => undefined);
  });

  /** Gives a ServiceAccount of the tenants' namespace a Role with `rules`. */
  async function grant(serviceAccount: string, name: string, rules: k8s.V1PolicyRule[]) {
    await rbac.createNamespacedRole({ namespace: tenants, body: { metadata: { name }, rules } });
    await rbac.createNamespacedRoleBinding({
      namespace: tenants,
      body: {
        metadata: { name: `${serviceAccount}-${name}` },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
        subjects: [{ kind: "ServiceAccount", name: serviceAccount, namespace: tenants }],
      },
    });
  }

  /** Tries a create until the outcome is `want` (policies take effect a moment after they are created). */
  async function outcome(
    want: "refused" | "admitted",
    create: () => Promise<unknown>,
    undo: () => Promise<unknown>,
  ) {
    return eventually(
      `create ${want}`,
      async () => {
        try {
          await create();
        } catch (err) {
          if (want === "refused") return errorMessage(err);
          throw err;
        }
        if (want === "admitted") return "admitted";
        await undo();
        return false;
      },
      30_000,
      500,
    );
  }

  it("refuses a claim from a user who may not create pods in its namespace, and admits it once they may", async () => {
    const tenant = new KubeClient(await serviceAccountKubeConfig(client, "claimer", tenants), "tenant");
    const manifest = claimManifest(tenants, "by-claimer", pool, 1, { podSpec: tenantPodSpec() });
    const message = await outcome(
      "refused",
      () => createClaim(tenant, manifest),
      () => deleteClaim(client, tenants, "by-claimer"),
    );
    expect(message).toContain(
      `system:serviceaccount:${tenants}:claimer may not create pods in namespace ${tenants}`,
    );
    const refusedClaim = await getClaim(client, tenants, "by-claimer").catch((err) => err);
    expect(isNotFound(refusedClaim)).toBe(true);

    await grant("claimer", "pods", [{ apiGroups: [""], resources: ["pods"], verbs: ["create"] }]);
    await outcome(
      "admitted",
      () => createClaim(tenant, manifest),
      async () => undefined,
    );
    const stored: Claim = await getClaim(client, tenants, "by-claimer");
    expect(stored.spec.pool).toBe(pool);
    await deleteClaim(client, tenants, "by-claimer");
  });

  it("refuses a StorageService from a namespace its pool does not list, and admits one from a listed namespace", async () => {
    const create = (namespace: string, name: string) => () =>
      client.custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: STORAGE_SERVICE_PLURAL,
        namespace,
        body: storageServiceManifest(namespace, name, pool),
      });
    const remove = (namespace: string, name: string) => () =>
      client.custom.deleteNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: STORAGE_SERVICE_PLURAL,
        namespace,
        name,
      });
    const message = await outcome("refused", create(tenants, "sneaky"), remove(tenants, "sneaky"));
    expect(message).toContain(
      `ContingencyPool ${pool} does not list namespace ${tenants} in spec.allowedServiceNamespaces`,
    );
    expect(await outcome("admitted", create(storage, "orders"), remove(storage, "orders"))).toBe("admitted");
    await remove(storage, "orders")();
  });
});
