import type * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SLOT_SCHEDULING_GATE } from "../../src/api/index.ts";
import type { ControllerContext } from "../../src/controllers/context.ts";
import { evictPod, ungatePod } from "../../src/controllers/workload.ts";
import { annotations } from "../../src/controllers/labels.ts";
import type { SlotView } from "../../src/decisions/types.ts";
import { installCrds } from "../support/crds.ts";
import {
  deleteNamespace,
  eventually,
  freshNamespace,
  isPodReady,
  testClient,
  testKubeConfig,
} from "../support/kube.ts";
import { LedgerHistory } from "../support/ledger-history.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import {
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
  expectPodsOnHeldSlots,
  heldLeases,
  isSlotGated,
  listPods,
  livePods,
  mergePatchObject,
  setPoolZones,
  type WorkloadRef,
  workloadPoolShape,
} from "../support/workloads.ts";

// Workload mode with the two kinds of owner workloads.test.ts does not cover, on the real cluster:
// a StatefulSet, whose controller recreates an evicted pod under the same name (a new pod, a new
// uid), and bare pods, which nothing recreates. The ledger is checked on the real Leases throughout.

const client = testClient();
const run = `wk-${Date.now().toString(36)}`;
const setPool = `${run}-set`;
const barePool = `${run}-bare`;
let opNs: string;
let setNs: string;
let bareNs: string;
let operator: OperatorProcess;
let histories: LedgerHistory[];

beforeAll(async () => {
  await installCrds();
  opNs = await freshNamespace(client, "understudy");
  setNs = await freshNamespace(client, "wkset");
  bareNs = await freshNamespace(client, "wkbare");
  operator = await startOperator({ namespace: opNs, poolSelector: testPoolSelector(run) });
  histories = [
    new LedgerHistory(testKubeConfig(), opNs, setNs, setPool),
    new LedgerHistory(testKubeConfig(), opNs, bareNs, barePool),
  ];
  for (const history of histories) await history.start();
  await createPool(
    client,
    poolManifest(setPool, { ...workloadPoolShape, zones: { "zone-a": 2, "zone-c": 1 } }, run),
  );
  await createPool(client, poolManifest(barePool, { ...workloadPoolShape, zones: { "zone-b": 2 } }, run));
});

afterAll(async () => {
  for (const history of histories ?? []) history.stop();
  await operator?.stop();
  for (const pool of [setPool, barePool]) await deletePool(client, pool);
  for (const ns of [setNs, bareNs, opNs]) if (ns) await deleteNamespace(client, ns);
});

const readPod = (namespace: string, name: string) => client.core.readNamespacedPod({ name, namespace });
const podGone = async (namespace: string, name: string) =>
  readPod(namespace, name).then(
    () => false,
    (err: unknown) => {
      if ((err as { code?: number }).code === 404) return true;
      throw err;
    },
  );
const uidsByName = (pods: k8s.V1Pod[]) => new Map(pods.map((p) => [p.metadata!.name!, p.metadata!.uid!]));

describe("workload mode with a StatefulSet and with bare pods", () => {
  it("a StatefulSet's pods take slots; one taken back is recreated under its name, waits gated, and gets a slot again; scaling down frees slots", async () => {
    const db: WorkloadRef = { client, opNs, pool: setPool, namespace: setNs, claim: "db" };
    await createClaim(client, workloadClaimManifest(setNs, "db", setPool, 10, { slots: 3 }));
    // The default pod management (OrderedReady): db-1 is made only once db-0 runs on its slot.
    await client.objects.create({
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: { name: "db", namespace: setNs },
      spec: {
        replicas: 3,
        serviceName: "db",
        selector: { matchLabels: { app: "db" } },
        template: workloadPodTemplate("db"),
      },
    } as k8s.KubernetesObject);
    const first = await eventually(
      "db-0, db-1 and db-2 running on the claim's slots",
      async () => {
        const running = livePods(await listPods(client, setNs, "app=db")).filter((p) => isPodReady(p));
        return running.length === 3 && (await heldLeases(db)).length === 3 && running;
      },
      60_000,
    );
    expect(first.map((p) => p.metadata!.name).sort()).toEqual(["db-0", "db-1", "db-2"]);
    await expectPodsOnHeldSlots(db, 3);
    const firstUids = uidsByName(first);

    // The pool shrinks in zone-a: one of db's slots there is taken back, its pod evicted.
    await setPoolZones(client, setPool, { "zone-a": 1, "zone-c": 1 });
    const recreated = await eventually(
      "a pod recreated under its old name, waiting gated",
      async () => {
        const pods = livePods(await listPods(client, setNs, "app=db"));
        const fresh = pods.filter((p) => firstUids.get(p.metadata!.name!) !== p.metadata!.uid);
        return fresh.length === 1 && isSlotGated(fresh[0]!) && !fresh[0]!.spec?.nodeName && fresh[0]!;
      },
      30_000,
    );
    const name = recreated.metadata!.name!;
    expect(firstUids.has(name)).toBe(true);
    expect(recreated.metadata!.labels!["understudy.dev/slot"]).toBeUndefined();
    await eventually("the claim counts it as waiting, with two slots", async () => {
      const c = await getClaim(client, setNs, "db");
      return c.status?.podsWaiting === 1 && c.status?.heldSlots?.length === 2 && c;
    });
    expect(await heldLeases(db)).toHaveLength(2);
    // Still waiting a moment later, and the same pod: there is no slot for it.
    await new Promise((r) => setTimeout(r, 1500));
    const still = await readPod(setNs, name);
    expect(still.metadata!.uid).toBe(recreated.metadata!.uid);
    expect(isSlotGated(still)).toBe(true);

    // The pool grows back: the new slot goes to the recreated pod.
    await setPoolZones(client, setPool, { "zone-a": 2, "zone-c": 1 });
    await eventually(
      `${name} runs again, on a slot`,
      async () => {
        const p = await readPod(setNs, name);
        return p.metadata!.uid === recreated.metadata!.uid && isPodReady(p) && !isSlotGated(p) && p;
      },
      30_000,
    );
    await expectPodsOnHeldSlots(db, 3);
    const claim = await getClaim(client, setNs, "db");
    expect(claim.status!.usage.revocations).toEqual({ PoolShrunk: 1 });
    expect(claim.status!.podsWaiting).toBe(0);

    // Scaled down to one: db-2 and db-1 go, and their slots with them.
    await mergePatchObject(client, "apps/v1", "StatefulSet", setNs, "db", { spec: { replicas: 1 } });
    await eventually(
      "one pod on one slot",
      async () =>
        livePods(await listPods(client, setNs, "app=db")).length === 1 && (await heldLeases(db)).length === 1,
      30_000,
    );
    const [left] = await expectPodsOnHeldSlots(db, 1);
    expect(left!.metadata!.name).toBe("db-0");
    await eventually("the claim's status holds one slot, db-0's", async () => {
      const c = await getClaim(client, setNs, "db");
      return c.status?.heldSlots?.length === 1 && c.status.heldSlots[0].pod === "db-0";
    });
    expect(histories[0]!.violations()).toEqual([]);
  });

  it("bare pods take slots; one taken back is evicted and stays gone; deleting the other frees its slot", async () => {
    const solo: WorkloadRef = { client, opNs, pool: barePool, namespace: bareNs, claim: "solo" };
    await createClaim(client, workloadClaimManifest(bareNs, "solo", barePool, 10, { slots: 2 }));
    const template = workloadPodTemplate("solo");
    for (const name of ["solo-a", "solo-b"])
      await client.core.createNamespacedPod({
        namespace: bareNs,
        body: {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { ...template.metadata, name },
          spec: template.spec,
        } as unknown as k8s.V1Pod,
      });
    await eventually(
      "both pods running on the claim's slots",
      async () => {
        const running = livePods(await listPods(client, bareNs, "app=solo")).filter((p) => isPodReady(p));
        return running.length === 2 && (await heldLeases(solo)).length === 2;
      },
      30_000,
    );
    await expectPodsOnHeldSlots(solo, 2);

    // The pool shrinks: one pod loses its slot and is evicted; no controller makes it again.
    await setPoolZones(client, barePool, { "zone-b": 1 });
    const evicted = await eventually(
      "one pod gone",
      async () => {
        const gone = [];
        for (const name of ["solo-a", "solo-b"]) if (await podGone(bareNs, name)) gone.push(name);
        return gone.length === 1 && gone[0]!;
      },
      30_000,
    );
    const kept = evicted === "solo-a" ? "solo-b" : "solo-a";
    await eventually("the claim holds one slot, for the pod left, and none is waiting", async () => {
      const c = await getClaim(client, bareNs, "solo");
      return (
        c.status?.heldSlots?.length === 1 && c.status.heldSlots[0].pod === kept && c.status.podsWaiting === 0
      );
    });
    await new Promise((r) => setTimeout(r, 1500));
    expect(await podGone(bareNs, evicted)).toBe(true);
    expect((await listPods(client, bareNs, "app=solo")).map((p) => p.metadata!.name)).toEqual([kept]);
    const [running] = await expectPodsOnHeldSlots(solo, 1);
    expect(running!.metadata!.name).toBe(kept);
    let claim = await getClaim(client, bareNs, "solo");
    expect(phaseOf(claim)).toBe("Bound");
    expect(claim.status!.usage.revocations).toEqual({ PoolShrunk: 1 });

    // The tenant deletes its last pod: the slot goes back to the pool, and the claim holds nothing.
    await client.core.deleteNamespacedPod({ name: kept, namespace: bareNs });
    await eventually("the last slot free", async () => (await heldLeases(solo)).length === 0, 30_000);
    claim = await eventually("the claim Pending, holding nothing", async () => {
      const c = await getClaim(client, bareNs, "solo");
      return phaseOf(c) === "Pending" && (c.status?.heldSlots ?? []).length === 0 && c;
    });
    expect(claim.status!.podsWaiting).toBe(0);
    expect(claim.status!.usage.held).toEqual([]);
    expect(histories[1]!.violations()).toEqual([]);
  });

  it("a write meant for a pod does not reach another pod recreated under its name", async () => {
    // What a StatefulSet does between two observations: the pod the operator decided on is gone,
    // and a new one, gated again, carries its name. The operator's writes name the pod's uid.
    const namespace = bareNs;
    const template = workloadPodTemplate("same");
    const create = () =>
      client.core.createNamespacedPod({
        namespace,
        body: {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { ...template.metadata, name: "same", labels: { app: "same" } },
          spec: template.spec,
        } as unknown as k8s.V1Pod,
      });
    const stale = await create();
    await client.core.deleteNamespacedPod({ name: "same", namespace, gracePeriodSeconds: 0 });
    await eventually("the first pod gone", () => podGone(namespace, "same"));
    const fresh = await create();
    expect(fresh.metadata!.uid).not.toBe(stale.metadata!.uid);
    // Only what these two functions read of the context: the client, and no placeholder cached.
    const ctx = {
      client,
      namespace: opNs,
      now: Date.now,
      cache: { pods: { get: () => undefined } },
    } as unknown as ControllerContext;
    const slot = { leaseName: "no-such-slot" } as SlotView;

    await ungatePod(ctx, stale, slot);
    await evictPod(ctx, stale, "SlotRevoked", 0);
    // Noticed already (annotation and condition observed): straight to the eviction, which names the uid too.
    const noticed: k8s.V1Pod = {
      ...stale,
      metadata: { ...stale.metadata, annotations: { [annotations.revocationReason]: "SlotRevoked" } },
      status: { conditions: [{ type: "DisruptionTarget", status: "True" }] },
    };
    await evictPod(ctx, noticed, "SlotRevoked", 0);
    const untouched = await readPod(namespace, "same");
    expect(untouched.metadata!.uid).toBe(fresh.metadata!.uid);
    expect(untouched.spec!.schedulingGates).toEqual([{ name: SLOT_SCHEDULING_GATE }]);
    expect(untouched.metadata!.annotations?.[annotations.revocationReason]).toBeUndefined();
    expect(untouched.status?.conditions?.some((c) => c.type === "DisruptionTarget")).toBeFalsy();

    // The same calls with the pod as it is now do their work.
    await ungatePod(ctx, fresh, slot);
    expect((await readPod(namespace, "same")).spec!.schedulingGates).toBeUndefined();
    await evictPod(ctx, await readPod(namespace, "same"), "SlotRevoked", 0);
    await eventually("the pod evicted", () => podGone(namespace, "same"), 30_000);
  });
});
