import type * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  deleteNamespace,
  eventually,
  freshNamespace,
  isNodeReady,
  isPodReady,
  makeNodeNotReady,
  makePodFailed,
  makePodNotReady,
  makeZoneNotReady,
  restoreNode,
  testClient,
} from "../support/kube.ts";

// The test cluster itself: the real scheduler and StatefulSet controller on KWOK nodes, and the
// fault primitives the failover tests build on.

const client = testClient();
let namespace: string;

beforeAll(async () => {
  namespace = await freshNamespace(client, "cluster");
});
afterAll(async () => {
  await deleteNamespace(client, namespace);
});

const zoneOf = async (nodeName: string) =>
  (await client.core.readNode({ name: nodeName })).metadata?.labels?.["topology.kubernetes.io/zone"];

async function podsOf(selector: string): Promise<k8s.V1Pod[]> {
  return (await client.core.listNamespacedPod({ namespace, labelSelector: selector })).items;
}

async function runPod(name: string): Promise<k8s.V1Pod> {
  await client.core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name, labels: { app: "fault" } },
      spec: { containers: [{ name: "main", image: "busybox" }] },
    },
  });
  return eventually(`pod ${name} Ready`, async () => {
    const pod = await client.core.readNamespacedPod({ name, namespace });
    return isPodReady(pod) && pod;
  });
}

describe("the test cluster", () => {
  it("has at least two Ready KWOK nodes in each of three zones", async () => {
    const nodes = (await client.core.listNode({ labelSelector: "type=kwok" })).items;
    const byZone = new Map<string, number>();
    for (const n of nodes.filter(isNodeReady)) {
      const zone = n.metadata!.labels!["topology.kubernetes.io/zone"]!;
      byZone.set(zone, (byZone.get(zone) ?? 0) + 1);
    }
    expect([...byZone.keys()].sort()).toEqual(["zone-a", "zone-b", "zone-c"]);
    for (const count of byZone.values()) expect(count).toBeGreaterThanOrEqual(2);
  });

  it("spreads a StatefulSet over three zones with the real scheduler and recreates a deleted pod", async () => {
    const labels = { app: "spread" };
    await client.apps.createNamespacedStatefulSet({
      namespace,
      body: {
        metadata: { name: "spread" },
        spec: {
          replicas: 3,
          serviceName: "spread",
          podManagementPolicy: "Parallel",
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              containers: [{ name: "main", image: "busybox", resources: { requests: { cpu: "100m" } } }],
              topologySpreadConstraints: [
                {
                  maxSkew: 1,
                  topologyKey: "topology.kubernetes.io/zone",
                  whenUnsatisfiable: "DoNotSchedule",
                  labelSelector: { matchLabels: labels },
                },
              ],
            },
          },
        },
      },
    });
    const ready = await eventually(
      "3 Ready pods",
      async () => {
        const pods = (await podsOf("app=spread")).filter(isPodReady);
        return pods.length === 3 && pods;
      },
      60_000,
    );
    const zones = await Promise.all(ready.map((p) => zoneOf(p.spec!.nodeName!)));
    expect(new Set(zones)).toEqual(new Set(["zone-a", "zone-b", "zone-c"]));

    const victim = ready.find((p) => p.metadata!.name === "spread-1")!;
    await client.core.deleteNamespacedPod({ name: "spread-1", namespace });
    const recreated = await eventually(
      "spread-1 recreated and Ready",
      async () => {
        const pod = (await podsOf("app=spread")).find((p) => p.metadata!.name === "spread-1");
        return pod && pod.metadata!.uid !== victim.metadata!.uid && isPodReady(pod) && pod;
      },
      60_000,
    );
    expect(recreated.metadata!.uid).not.toBe(victim.metadata!.uid);
  });

  it("makes one chosen pod NotReady while it keeps running", async () => {
    await runPod("not-ready");
    const bystander = await runPod("bystander");
    await makePodNotReady(client, namespace, "not-ready");
    const pod = await eventually("not-ready reports Ready=False", async () => {
      const p = await client.core.readNamespacedPod({ name: "not-ready", namespace });
      return !isPodReady(p) && p;
    });
    expect(pod.status?.phase).toBe("Running");
    expect(
      isPodReady(await client.core.readNamespacedPod({ name: bystander.metadata!.name!, namespace })),
    ).toBe(true);
  });

  it("makes one chosen pod Failed", async () => {
    await runPod("fails");
    await makePodFailed(client, namespace, "fails");
    const pod = await eventually("pod Failed", async () => {
      const p = await client.core.readNamespacedPod({ name: "fails", namespace });
      return p.status?.phase === "Failed" && p;
    });
    expect(pod.status?.containerStatuses?.[0]?.state?.terminated).toBeDefined();
  });

  it("makes a node NotReady and back, and a whole zone NotReady", async () => {
    const node = "kwok-zone-a-1";
    await makeNodeNotReady(client, node);
    try {
      await eventually(
        `${node} NotReady`,
        async () => !isNodeReady(await client.core.readNode({ name: node })),
      );
    } finally {
      await restoreNode(client, node);
    }
    await eventually(`${node} Ready again`, async () =>
      isNodeReady(await client.core.readNode({ name: node })),
    );

    const zoneNodes = await makeZoneNotReady(client, "zone-b");
    try {
      expect(zoneNodes.length).toBeGreaterThanOrEqual(2);
      await eventually("zone-b NotReady", async () => {
        const nodes = await Promise.all(zoneNodes.map((name) => client.core.readNode({ name })));
        return nodes.every((n) => !isNodeReady(n));
      });
      const others = (await client.core.listNode({ labelSelector: "topology.kubernetes.io/zone!=zone-b" }))
        .items;
      expect(others.every(isNodeReady)).toBe(true);
    } finally {
      await Promise.all(zoneNodes.map((n) => restoreNode(client, n)));
    }
    await eventually("zone-b Ready again", async () => {
      const nodes = await Promise.all(zoneNodes.map((name) => client.core.readNode({ name })));
      return nodes.every(isNodeReady);
    });
  });
});
