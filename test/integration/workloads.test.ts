import type * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import type { UsageReport } from "../../src/cli/usage.ts";
import { cli } from "../support/cli.ts";
import { installCrds } from "../support/crds.ts";
import {
  deleteNamespace,
  eventually,
  freshNamespace,
  isPodReady,
  makePodFailed,
  makePodNotReady,
  testClient,
  testKubeConfig,
} from "../support/kube.ts";
import { createService, waitForFailover, waitForServing } from "../support/failover.ts";
import { LedgerHistory } from "../support/ledger-history.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import {
  claimManifest,
  createClaim,
  createPool,
  deletePool,
  getClaim,
  phaseOf,
  poolManifest,
  testPoolSelector,
  workloadClaimManifest,
  workloadPodTemplate,
} from "../support/pools.ts";
import {
  expectPodsOnHeldSlots as expectOnHeldSlots,
  heldLeases,
  isSlotGated,
  listPods as listPodsIn,
  livePods,
  mergePatchObject,
  setPoolZones,
  type WorkloadRef,
  workloadPoolShape,
} from "../support/workloads.ts";

// Workload mode on the real cluster: the tenant's own Job and Deployment, whose pods the real
// kube-controller-manager creates (gated, labelled with their claim), take the claim's slots; a slot
// taken back evicts its pod, the owner recreates it gated, and it waits for the next slot; a pod
// that finishes gives its slot back. The ledger is checked on the real Leases throughout.

const client = testClient();
const run = `wl-${Date.now().toString(36)}`;
const batchPool = `${run}-batch`;
const webPool = `${run}-web`;
const failoverPool = `${run}-fo`;
let serviceNs: string;
let foTenants: string;
let opNs: string;
let tenants: string;
let webTenants: string;
let operator: OperatorProcess;
let histories: LedgerHistory[];

beforeAll(async () => {
  await installCrds();
  opNs = await freshNamespace(client, "understudy");
  tenants = await freshNamespace(client, "wl");
  webTenants = await freshNamespace(client, "wlweb");
  serviceNs = await freshNamespace(client, "wlsvc");
  foTenants = await freshNamespace(client, "wlfo");
  operator = await startOperator({ namespace: opNs, poolSelector: testPoolSelector(run) });
  histories = [
    new LedgerHistory(testKubeConfig(), opNs, tenants, batchPool),
    new LedgerHistory(testKubeConfig(), opNs, webTenants, webPool),
  ];
  for (const history of histories) await history.start();
  await createPool(
    client,
    poolManifest(batchPool, { ...workloadPoolShape, zones: { "zone-a": 3, "zone-b": 2 } }, run),
  );
  await createPool(
    client,
    poolManifest(webPool, { ...workloadPoolShape, zones: { "zone-b": 2, "zone-c": 2 } }, run),
  );
});

afterAll(async () => {
  for (const history of histories ?? []) history.stop();
  await operator?.stop();
  for (const pool of [batchPool, webPool, failoverPool]) await deletePool(client, pool);
  for (const ns of [tenants, webTenants, serviceNs, foTenants, opNs])
    if (ns) await deleteNamespace(client, ns);
});

/** Which namespace each pool's tenants are in (one ledger history each). */
const nsOf = (pool: string) => (pool === webPool ? webTenants : pool === failoverPool ? foTenants : tenants);
const ref = (pool: string, claim: string): WorkloadRef => ({
  client,
  opNs,
  pool,
  namespace: nsOf(pool),
  claim,
});
const listPods = (selector: string, namespace = tenants) => listPodsIn(client, namespace, selector);
const heldBy = (pool: string, claim: string) => heldLeases(ref(pool, claim));
const mergePatch = (apiVersion: string, kind: string, namespace: string, name: string, patch: object) =>
  mergePatchObject(client, apiVersion, kind, namespace, name, patch);
const expectPodsOnHeldSlots = (pool: string, claim: string, count: number) =>
  expectOnHeldSlots(ref(pool, claim), count);
const setZones = (pool: string, zones: Record<string, number>) => setPoolZones(client, pool, zones);

describe("workload mode", () => {
  it("gives a Job with parallelism 5 five slots; a slot taken back evicts one pod, whose replacement waits gated and then gets a slot", async () => {
    await createClaim(client, workloadClaimManifest(tenants, "batch", batchPool, 10, { slots: 5 }));
    await client.objects.create({
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: "batch", namespace: tenants },
      spec: {
        parallelism: 5,
        completions: 5,
        backoffLimit: 20,
        // A revocation is not the workload's failure: the Job ignores pods disrupted for it.
        podFailurePolicy: { rules: [{ action: "Ignore", onPodConditions: [{ type: "DisruptionTarget" }] }] },
        template: workloadPodTemplate("batch", "1h", { restartPolicy: "Never" }),
      },
    } as k8s.KubernetesObject);

    const first = await eventually(
      "five Job pods running on the claim's slots",
      async () => {
        const running = livePods(await listPods("app=batch")).filter((p) => isPodReady(p));
        return running.length === 5 && (await heldBy(batchPool, "batch")).length === 5 && running;
      },
      30_000,
    );
    await expectPodsOnHeldSlots(batchPool, "batch", 5);
    const claim = await getClaim(client, tenants, "batch");
    expect(phaseOf(claim)).toBe("Bound");
    expect(claim.status!.heldSlots).toHaveLength(5);
    expect(claim.status!.podsWaiting).toBe(0);

    // The pool shrinks in zone-a: one of the Job's slots there is taken back.
    const firstNames = new Set(first.map((p) => p.metadata!.name!));
    await setZones(batchPool, { "zone-a": 2, "zone-b": 2 });
    const waiting = await eventually(
      "a replacement pod waiting, gated",
      async () => {
        const pods = livePods(await listPods("app=batch"));
        const fresh = pods.filter((p) => !firstNames.has(p.metadata!.name!));
        return fresh.length === 1 && isSlotGated(fresh[0]!) && !fresh[0]!.spec?.nodeName && fresh[0]!;
      },
      30_000,
    );
    expect(waiting.metadata!.labels!["understudy.dev/slot"]).toBeUndefined();
    await eventually("the claim counts it as waiting, with four slots", async () => {
      const c = await getClaim(client, tenants, "batch");
      return c.status?.podsWaiting === 1 && c.status?.heldSlots?.length === 4;
    });
    expect(await heldBy(batchPool, "batch")).toHaveLength(4);
    // Still waiting a moment later: there is no slot for it.
    await new Promise((r) => setTimeout(r, 1500));
    const still = await client.core.readNamespacedPod({ name: waiting.metadata!.name!, namespace: tenants });
    expect(isSlotGated(still)).toBe(true);

    // The pool grows back: the new slot goes to the waiting pod.
    await setZones(batchPool, { "zone-a": 3, "zone-b": 2 });
    await eventually(
      "the replacement runs on the new slot",
      async () => {
        const p = await client.core.readNamespacedPod({ name: waiting.metadata!.name!, namespace: tenants });
        return isPodReady(p) && !isSlotGated(p) && p;
      },
      30_000,
    );
    await expectPodsOnHeldSlots(batchPool, "batch", 5);
  });

  it("frees a finished pod's slot within seconds", async () => {
    await createClaim(client, workloadClaimManifest(tenants, "quick", batchPool, 20, { slots: 1 }));
    // The batch Job holds all five slots at bid 10; shrink it to make room for one quick pod.
    await mergePatch("batch/v1", "Job", tenants, "batch", { spec: { parallelism: 4 } });
    await eventually(
      "batch down to four slots",
      async () => (await heldBy(batchPool, "batch")).length === 4,
      30_000,
    );
    await client.objects.create({
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: "quick", namespace: tenants },
      spec: { completions: 1, template: workloadPodTemplate("quick", "2s", { restartPolicy: "Never" }) },
    } as k8s.KubernetesObject);
    const done = await eventually(
      "the quick pod Succeeded",
      async () => (await listPods("app=quick")).find((p) => p.status?.phase === "Succeeded"),
      30_000,
    );
    expect(done.metadata!.labels!["understudy.dev/slot"]).toBeTruthy();
    const finishedAt = Date.now();
    await eventually(
      "its slot free again",
      async () => (await heldBy(batchPool, "quick")).length === 0,
      10_000,
      50,
    );
    // A loose bound on a shared machine: it catches a release left to a periodic requeue. The time
    // itself (phase change to Lease free, p50/p99) is bench/workload-release.ts's to measure.
    expect(Date.now() - finishedAt).toBeLessThan(5_000);
    await eventually("quick's status says it holds nothing", async () => {
      const quick = await getClaim(client, tenants, "quick");
      return (quick.status?.heldSlots ?? []).length === 0 && phaseOf(quick) === "Pending";
    });
  });

  it("an inline claim whose pod finishes gives its slot back and is Completed", async () => {
    await createClaim(client, claimManifest(webTenants, "once", webPool, 5));
    await eventually("once's pod Ready", async () =>
      isPodReady(await client.core.readNamespacedPod({ name: "once-tenant", namespace: webTenants })),
    );
    await makePodFailed(client, webTenants, "once-tenant");
    const completed = await eventually("once Completed", async () => {
      const c = await getClaim(client, webTenants, "once");
      return phaseOf(c) === "Completed" && c;
    });
    expect(completed.status!.reason).toBe("TenantPodFailed");
    expect(await heldBy(webPool, "once")).toHaveLength(0);
  });

  it("takes and frees slots as a Deployment scales from 2 to 4 to 1", async () => {
    await createClaim(client, workloadClaimManifest(webTenants, "web", webPool, 10, { slots: 4 }));
    const template = workloadPodTemplate("web");
    await client.objects.create({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web", namespace: webTenants },
      spec: { replicas: 2, selector: { matchLabels: { app: "web" } }, template },
    } as k8s.KubernetesObject);
    const scale = (replicas: number) =>
      mergePatch("apps/v1", "Deployment", webTenants, "web", { spec: { replicas } });
    for (const replicas of [2, 4, 1]) {
      if (replicas !== 2) await scale(replicas);
      await eventually(
        `${replicas} web pods on ${replicas} slots`,
        async () => {
          const running = livePods(await listPods("app=web", webTenants)).filter((p) => isPodReady(p));
          return running.length === replicas && (await heldBy(webPool, "web")).length === replicas;
        },
        30_000,
      );
      await expectPodsOnHeldSlots(webPool, "web", replicas);
    }
  });

  it("accounts usage per claim and namespace, read back by understudy usage", async () => {
    // batch: five slots from the start, one taken back when the pool shrank, one given again;
    // quick: one slot for its 2 s pod, freed when it finished.
    await eventually("batch's revocation recorded", async () => {
      const c = await getClaim(client, tenants, "batch");
      return c.status?.usage?.revocations?.PoolShrunk === 1 && c;
    });
    const report = JSON.parse(await cli("usage", "-n", tenants, "-o", "json")) as UsageReport;
    const row = (claim: string) => report.claims.find((r) => r.claim === claim)!;
    expect(row("batch")).toMatchObject({ pool: batchPool, slotsHeld: 4, revocations: { PoolShrunk: 1 } });
    expect(row("batch").slotSeconds).toBeGreaterThan(4 * 5);
    expect(row("batch").waitingSeconds).toBeGreaterThan(0);
    expect(row("quick")).toMatchObject({ slotsHeld: 0, revocations: {} });
    // Its pod ran about 2 s on the slot (KWOK's completion delay), plus scheduling and noticing.
    expect(row("quick").slotSeconds).toBeGreaterThan(1);
    expect(row("quick").slotSeconds).toBeLessThan(15);
    const total = report.namespaces.find((n) => n.namespace === tenants && n.pool === batchPool)!;
    expect(total.slotSeconds).toBeCloseTo(row("batch").slotSeconds + row("quick").slotSeconds, 1);
    expect(total.revocations).toEqual({ PoolShrunk: 1 });
    const table = await cli("usage", "-n", tenants);
    expect(table).toMatch(/NAMESPACE\s+CLAIM\s+POOL\s+SLOTS\s+SLOT-SECONDS\s+WAITING-SECONDS\s+REVOCATIONS/);
    expect(table).toMatch(new RegExp(`batch\\s+${batchPool}\\s+4\\s+[0-9.]+\\s+[0-9.]+\\s+PoolShrunk=1`));
    const metrics = await operator.metrics();
    expect(metrics).toMatch(
      new RegExp(
        `understudy_tenant_revocations_total\\{pool="${batchPool}",namespace="${tenants}",reason="PoolShrunk"\\} 1`,
      ),
    );
  });

  it("a failover takes a Job's slot: its pod is evicted as a disruption, recreated gated, and runs on the replaced slot", async () => {
    // Watched from before the pool exists (a quiet watch would end before the test begins).
    const history = new LedgerHistory(testKubeConfig(), opNs, foTenants, failoverPool);
    await history.start();
    onTestFinished(() => history.stop());
    // Every slot of this pool is the Job's: the failed head must revoke one of them.
    await createPool(
      client,
      poolManifest(failoverPool, { ...workloadPoolShape, zones: { "zone-b": 2 } }, run),
    );
    await createClaim(client, workloadClaimManifest(foTenants, "fojob", failoverPool, 10, { slots: 2 }));
    await client.objects.create({
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: "fojob", namespace: foTenants },
      spec: {
        parallelism: 2,
        completions: 2,
        backoffLimit: 0,
        podFailurePolicy: { rules: [{ action: "Ignore", onPodConditions: [{ type: "DisruptionTarget" }] }] },
        template: workloadPodTemplate("fojob", "1h", { restartPolicy: "Never" }),
      },
    } as k8s.KubernetesObject);
    const first = await eventually(
      "both Job pods running on the claim's slots",
      async () => {
        const running = livePods(await listPods("app=fojob", foTenants)).filter((p) => isPodReady(p));
        return running.length === 2 && (await heldBy(failoverPool, "fojob")).length === 2 && running;
      },
      30_000,
    );
    const firstNames = new Set(first.map((p) => p.metadata!.name!));

    await createService(client, run, serviceNs, "kv", failoverPool);
    await waitForServing(client, serviceNs, "kv", 1);
    await makePodNotReady(client, serviceNs, "kv-head-1");
    const service = await waitForFailover(client, serviceNs, "kv", 1);
    expect(service.status!.lastFailover).toMatchObject({
      toZone: "zone-b",
      revokedClaim: `${foTenants}/fojob`,
      epoch: 2,
    });
    const taken = service.status!.lastFailover!.leaseName!;

    // The Job made a new pod for the one evicted; the pool replaced the slot; the new pod runs there.
    const replacement = await eventually(
      "the replacement running on the replaced slot",
      async () => {
        const running = livePods(await listPods("app=fojob", foTenants)).filter((p) => isPodReady(p));
        const fresh = running.filter((p) => !firstNames.has(p.metadata!.name!));
        return running.length === 2 && fresh.length === 1 && fresh[0]!;
      },
      60_000,
    );
    const slot = replacement.metadata!.labels!["understudy.dev/slot"]!;
    expect(slot).not.toBe(taken);
    expect((await heldBy(failoverPool, "fojob")).map((l) => l.metadata!.name)).toContain(slot);
    await expectPodsOnHeldSlots(failoverPool, "fojob", 2);
    // The eviction was a disruption, not the Job's failure: with backoffLimit 0 it would have failed.
    const job = (await client.objects.read({
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: "fojob", namespace: foTenants },
    })) as k8s.V1Job;
    expect(job.status?.failed ?? 0).toBe(0);
    expect(job.status?.conditions?.find((c) => c.type === "Failed")).toBeUndefined();
    // No slot had two pods; no pod sat on a slot its claim (or its service, for the head) did not hold.
    expect(history.violations()).toEqual([]);
  });

  it("keeps a tenant's own privileged pod gated, off every slot, and says why on the claim", async () => {
    await createClaim(client, workloadClaimManifest(webTenants, "hostile", webPool, 1000, { slots: 1 }));
    const template = workloadPodTemplate("hostile", "1h", { restartPolicy: "Never" });
    const spec = template.spec as unknown as k8s.V1PodSpec;
    spec.containers[0]!.securityContext = { privileged: true, allowPrivilegeEscalation: true };
    await client.core.createNamespacedPod({
      namespace: webTenants,
      body: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { ...template.metadata, name: "hostile" },
        spec,
      } as k8s.V1Pod,
    });
    const claim = await eventually(
      "the claim counts the pod as refused",
      async () => {
        const c = await getClaim(client, webTenants, "hostile");
        return (c.status?.podsRefused ?? 0) >= 1 && c;
      },
      30_000,
    );
    expect(claim.status!.heldSlots ?? []).toHaveLength(0);
    // Read back from the API server a while later: still gated, unbound, on no slot, holding none.
    await new Promise((r) => setTimeout(r, 2000));
    const pod = await client.core.readNamespacedPod({ name: "hostile", namespace: webTenants });
    expect(isSlotGated(pod)).toBe(true);
    expect(pod.spec!.nodeName).toBeUndefined();
    expect(pod.metadata!.labels!["understudy.dev/slot"]).toBeUndefined();
    expect(await heldBy(webPool, "hostile")).toHaveLength(0);
  });

  it("never had a slot with two pods, nor a pod on a slot its claim did not hold", () => {
    expect(histories[0]!.pods.size).toBeGreaterThanOrEqual(7);
    expect(histories[1]!.pods.size).toBeGreaterThanOrEqual(5);
    for (const history of histories) expect(history.violations()).toEqual([]);
  });
});
