import type * as k8s from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { isConflict } from "../../src/kube/errors.ts";
import { installCrds } from "../support/crds.ts";
import {
  condition,
  createScopedClaim,
  createScopedPool,
  createService,
  eventsOf,
  getService,
  waitForFailover,
  waitForServing,
} from "../support/failover.ts";
import {
  deleteNamespace,
  eventually,
  freshNamespace,
  makePodNotReady,
  nodesInZone,
  testClient,
} from "../support/kube.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import { deletePool, getClaim, getPool, slotLeases, testPoolSelector } from "../support/pools.ts";

// Heads and servers with a nodeSelector, tolerations, a priority class and pull secrets, on the real
// test cluster with the real operator process: the pods carry them as the API server stores them, a
// failover takes only a slot whose node fits the head (labelled and tainted here through the API),
// and a head that fits no slot waits, reported, revoking nobody.

const client = testClient();
const run = Date.now().toString(36);
const scope = `placement-${run}`;
/** The label this file puts on nodes that may run heads, and the two taints it puts on slot nodes. */
const HEAD_LABEL = `placement.understudy.dev/heads-${run}`;
const TOLERATED_TAINT = `placement.understudy.dev/tolerated-${run}`;
const FOREIGN_TAINT = `placement.understudy.dev/foreign-${run}`;
const PRIORITY_CLASS = `placement-${run}`;
let counter = 0;
let operator: OperatorProcess;
let opNs: string;

interface World {
  pool: string;
  ns: string;
}
const worlds: World[] = [];
/** Nodes this file labelled or tainted, restored after each test. */
const touchedNodes = new Set<string>();

/** Edits a node with a compare-and-swap replace, again on a conflict (KWOK updates node status). */
async function editNode(name: string, change: (node: k8s.V1Node) => void): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const node = await client.core.readNode({ name });
    change(node);
    try {
      await client.core.replaceNode({ name, body: node });
      touchedNodes.add(name);
      return;
    } catch (err) {
      if (!isConflict(err) || attempt > 10) throw err;
    }
  }
}

const labelNode = (name: string) =>
  editNode(name, (node) => (node.metadata!.labels = { ...node.metadata!.labels, [HEAD_LABEL]: "yes" }));

const taintNode = (name: string, key: string) =>
  editNode(name, (node) => {
    node.spec = {
      ...node.spec,
      taints: [...(node.spec?.taints ?? []), { key, value: "x", effect: "NoSchedule" }],
    };
  });

async function restoreNodes() {
  for (const name of touchedNodes)
    await editNode(name, (node) => {
      delete node.metadata!.labels![HEAD_LABEL];
      const taints = (node.spec?.taints ?? []).filter(
        (t) => t.key !== TOLERATED_TAINT && t.key !== FOREIGN_TAINT,
      );
      node.spec = { ...node.spec, taints: taints.length ? taints : undefined };
    });
  touchedNodes.clear();
}

beforeAll(async () => {
  await installCrds();
  await client.scheduling.createPriorityClass({
    body: {
      apiVersion: "scheduling.k8s.io/v1",
      kind: "PriorityClass",
      metadata: { name: PRIORITY_CLASS },
      value: 1000,
      preemptionPolicy: "Never",
      description: "head-placement integration test",
    },
  });
  opNs = await freshNamespace(client, "hp-op");
  operator = await startOperator({ namespace: opNs, poolSelector: testPoolSelector(scope) });
});

afterEach(async () => {
  await restoreNodes();
  for (const world of worlds.splice(0)) {
    await deletePool(client, world.pool);
    await deleteNamespace(client, world.ns);
  }
});

afterAll(async () => {
  await restoreNodes();
  await operator?.stop();
  if (opNs) await deleteNamespace(client, opNs);
  await client.scheduling.deletePriorityClass({ name: PRIORITY_CLASS }).catch(() => undefined);
});

async function world(zones: Record<string, number>): Promise<World> {
  const pool = `hp-${run}-${counter++}`;
  const ns = await freshNamespace(client, "hp");
  await createScopedPool(client, pool, scope, { zones, emergencyGraceSeconds: 1, plannedGraceSeconds: 2 });
  const w = { pool, ns };
  worlds.push(w);
  return w;
}

async function boundClaim(w: World, name: string, zone: string) {
  await createScopedClaim(client, scope, w.ns, name, w.pool, 1, { zone });
  return eventually(`claim ${name} Bound`, async () => {
    const claim = await getClaim(client, w.ns, name);
    return claim.status?.phase === "Bound" ? claim : undefined;
  });
}

/** Slot Lease name -> [node, holder], once every slot of the pool has a node. */
async function ledger(w: World, slots: number): Promise<Map<string, { node: string; holder: string }>> {
  return eventually(`${slots} slots placed`, async () => {
    const leases = await slotLeases(client, opNs, w.pool);
    const placed = leases.filter((l) => l.metadata?.annotations?.["understudy.dev/node"]);
    if (placed.length !== slots) return undefined;
    return new Map(
      placed.map((l) => [
        l.metadata!.name!,
        { node: l.metadata!.annotations!["understudy.dev/node"]!, holder: l.spec?.holderIdentity ?? "" },
      ]),
    );
  });
}

const slotIn = (slots: Map<string, { node: string; holder: string }>, zone: string) =>
  [...slots.entries()].find(([name]) => name.includes(`-${zone}-`))!;

/** Heads run only on nodes labelled HEAD_LABEL; they tolerate TOLERATED_TAINT, not FOREIGN_TAINT. */
const headScheduling = {
  nodeSelector: { [HEAD_LABEL]: "yes" },
  tolerations: [{ key: TOLERATED_TAINT, operator: "Exists", effect: "NoSchedule" }],
  priorityClassName: PRIORITY_CLASS,
};

describe("heads and servers with scheduling settings", () => {
  it("carry them on every pod, and a failover takes only the slot whose node fits the head", async () => {
    const w = await world({ "zone-b": 1, "zone-c": 1 });
    await boundClaim(w, "tenant-c", "zone-c");
    const slots = await ledger(w, 2);
    const [slotB, { node: nodeB }] = slotIn(slots, "zone-b");
    const [slotC, { node: nodeC }] = slotIn(slots, "zone-c");
    // zone-a's nodes take the first head. zone-b's free slot carries the label but a taint the head
    // does not tolerate; zone-c's leased slot carries the label and a taint it tolerates. Without the
    // placement check the free slot of zone-b would win (free before leased, b before c).
    for (const node of await nodesInZone(client, "zone-a")) await labelNode(node);
    await labelNode(nodeB);
    await taintNode(nodeB, FOREIGN_TAINT);
    await labelNode(nodeC);
    await taintNode(nodeC, TOLERATED_TAINT);

    await createService(client, scope, w.ns, "kv", w.pool, {
      spec: {
        imagePullSecrets: [{ name: "registry-a" }, { name: "registry-b" }],
        head: {
          image: "registry.example/understudy:test",
          port: 7000,
          resources: { requests: { cpu: "250m", memory: "256Mi" } },
          ...headScheduling,
        },
        servers: {
          image: "registry.example/understudy:test",
          port: 7001,
          replicasPerZone: 1,
          storage: { size: "1Gi" },
          nodeSelector: { type: "kwok" },
          tolerations: [
            {
              key: "example.com/storage",
              operator: "Equal",
              value: "yes",
              effect: "NoExecute",
              tolerationSeconds: 60,
            },
          ],
          priorityClassName: PRIORITY_CLASS,
        },
      },
    });
    const { pod: head1 } = await waitForServing(client, w.ns, "kv", 1);
    // The first head, placed by the scheduler, landed on a labelled zone-a node.
    const head1Node = await client.core.readNode({ name: head1.spec!.nodeName! });
    expect(head1Node.metadata!.labels).toMatchObject({
      [HEAD_LABEL]: "yes",
      "topology.kubernetes.io/zone": "zone-a",
    });
    expect(head1.spec).toMatchObject({
      nodeSelector: { [HEAD_LABEL]: "yes" },
      priorityClassName: PRIORITY_CLASS,
      // Resolved by the API server's Priority admission from the class.
      priority: 1000,
      imagePullSecrets: [{ name: "registry-a" }, { name: "registry-b" }],
    });
    expect(head1.spec!.tolerations).toContainEqual(headScheduling.tolerations[0]);

    // Server pods, as the StatefulSet controller made them.
    const server = await eventually("a server pod of zone-b", async () => {
      const pods = await client.core.listNamespacedPod({
        namespace: w.ns,
        labelSelector: "understudy.dev/service=kv,understudy.dev/role=server,understudy.dev/zone=zone-b",
      });
      return pods.items[0];
    });
    expect(server.spec).toMatchObject({
      nodeSelector: { type: "kwok" },
      priorityClassName: PRIORITY_CLASS,
      priority: 1000,
      imagePullSecrets: [{ name: "registry-a" }, { name: "registry-b" }],
    });
    expect(server.spec!.tolerations).toContainEqual({
      key: "example.com/storage",
      operator: "Equal",
      value: "yes",
      effect: "NoExecute",
      tolerationSeconds: 60,
    });

    // Both slots count for the pool's failover capacity of kv: zone-c's fits.
    await eventually("the pool counting kv's head as covered", async () => {
      const capacity = (await getPool(client, w.pool)).status?.failoverCapacity;
      return capacity?.services === 1 && capacity.singleFailure === 1;
    });

    await makePodNotReady(client, w.ns, "kv-head-1");
    const service = await waitForFailover(client, w.ns, "kv", 1);
    expect(service.status!.lastFailover).toMatchObject({
      leaseName: slotC,
      toNode: nodeC,
      toZone: "zone-c",
      revokedClaim: `${w.ns}/tenant-c`,
      epoch: 2,
    });
    const head2 = await client.core.readNamespacedPod({ name: "kv-head-2", namespace: w.ns });
    expect(head2.spec).toMatchObject({
      nodeName: nodeC,
      nodeSelector: { [HEAD_LABEL]: "yes" },
      priorityClassName: PRIORITY_CLASS,
      priority: 1000,
      imagePullSecrets: [{ name: "registry-a" }, { name: "registry-b" }],
    });
    expect(head2.spec!.tolerations).toContainEqual(headScheduling.tolerations[0]);
    // zone-b's free slot, on the node whose taint the head does not tolerate, was left alone.
    const after = await slotLeases(client, opNs, w.pool);
    expect(after.find((l) => l.metadata!.name === slotB)!.spec?.holderIdentity ?? "").toBe("");
    expect(after.find((l) => l.metadata!.name === slotC)!.spec?.holderIdentity).toBe(`service:${w.ns}/kv`);
  });

  it("waits with ContingencyAvailable=False when no slot fits the head, and revokes no lease", async () => {
    const w = await world({ "zone-b": 1, "zone-c": 1 });
    await boundClaim(w, "tenant-b", "zone-b");
    await boundClaim(w, "tenant-c", "zone-c");
    const before = await ledger(w, 2);
    // Only zone-a's nodes, which hold no slot of this pool, carry the head's label.
    for (const node of await nodesInZone(client, "zone-a")) await labelNode(node);
    await createService(client, scope, w.ns, "kv", w.pool, {
      spec: {
        head: {
          image: "registry.example/understudy:test",
          port: 7000,
          resources: { requests: { cpu: "250m", memory: "256Mi" } },
          ...headScheduling,
        },
      },
    });
    await waitForServing(client, w.ns, "kv", 1);
    // Said before any failure, and the pool counts the head as not covered.
    const healthy = await eventually("ContingencyAvailable=False, NoSlotFitsPlacement", async () => {
      const s = await getService(client, w.ns, "kv");
      return condition(s, "ContingencyAvailable")?.reason === "NoSlotFitsPlacement" ? s : undefined;
    });
    expect(condition(healthy, "ContingencyAvailable")!.status).toBe("False");
    await eventually("the pool counting kv's head as not covered", async () => {
      const capacity = (await getPool(client, w.pool)).status?.failoverCapacity;
      return capacity?.services === 1 && capacity.singleFailure === 0;
    });

    await makePodNotReady(client, w.ns, "kv-head-1");
    const waiting = await eventually("a failover waiting for a slot that fits", async () => {
      const s = await getService(client, w.ns, "kv");
      return s.status?.failover?.step === "Detected" && s.status.phase === "FailingOver" ? s : undefined;
    });
    const contingency = condition(waiting, "ContingencyAvailable")!;
    expect(contingency).toMatchObject({ status: "False", reason: "NoSlotFitsPlacement" });
    expect(contingency.message).toContain(`lacks label ${HEAD_LABEL}=yes`);
    const warning = await eventually("a NoContingencyCapacity Warning", async () =>
      (await eventsOf(client, w.ns, "kv")).find(
        (e) => e.reason === "NoContingencyCapacity" && e.type === "Warning",
      ),
    );
    expect(warning.message).toContain("fits the head's nodeSelector and tolerations");

    // Some more reconciles later, still waiting: every Lease with its tenant, every claim Bound.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const now = await getService(client, w.ns, "kv");
    expect(now.status?.failover?.step).toBe("Detected");
    expect(await ledger(w, 2)).toEqual(before);
    expect([...before.values()].map((s) => s.holder).sort()).toEqual([
      `claim:${w.ns}/tenant-b`,
      `claim:${w.ns}/tenant-c`,
    ]);
    for (const claim of ["tenant-b", "tenant-c"])
      expect((await getClaim(client, w.ns, claim)).status?.phase).toBe("Bound");
  });

  it("fails back automatically only once a node of the primary zone fits the head again", async () => {
    const w = await world({ "zone-b": 1 });
    const [, { node: nodeB }] = slotIn(await ledger(w, 1), "zone-b");
    const zoneA = await nodesInZone(client, "zone-a");
    for (const node of [...zoneA, nodeB]) await labelNode(node);
    await createService(client, scope, w.ns, "kv", w.pool, {
      failback: { policy: "Automatic", stableSeconds: 0 },
      spec: {
        head: {
          image: "registry.example/understudy:test",
          port: 7000,
          resources: { requests: { cpu: "250m", memory: "256Mi" } },
          nodeSelector: headScheduling.nodeSelector,
        },
      },
    });
    await waitForServing(client, w.ns, "kv", 1);
    // zone-a's nodes stop fitting the head (the running head stays: IgnoredDuringExecution).
    for (const node of zoneA)
      await editNode(node, (n) => {
        delete n.metadata!.labels![HEAD_LABEL];
      });
    await makePodNotReady(client, w.ns, "kv-head-1");
    await waitForFailover(client, w.ns, "kv", 1);
    // A Ready zone-a is not enough: no node there may run the head, so no failback starts.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const away = await getService(client, w.ns, "kv");
    expect(away.status).toMatchObject({ epoch: 2, head: { zone: "zone-b" } });
    expect(away.status?.failback).toBeUndefined();
    expect(away.status?.lastFailback).toBeUndefined();

    for (const node of zoneA) await labelNode(node);
    const home = await eventually("the automatic failback", async () => {
      const s = await getService(client, w.ns, "kv");
      return s.status?.lastFailback?.outcome === "Succeeded" && !s.status.failback ? s : undefined;
    });
    expect(home.status!.lastFailback).toMatchObject({ reason: "Automatic", toZone: "zone-a", epoch: 3 });
    const head3 = await client.core.readNamespacedPod({ name: home.status!.head!.pod!, namespace: w.ns });
    expect(zoneA).toContain(head3.spec!.nodeName);
  });
});
