import type * as k8s from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { Cache, ControllerContext, ObservedState } from "../../../src/controllers/context.ts";
import { storageServiceControllerSpec } from "../../../src/controllers/storage-service/index.ts";
import type { CustomObject } from "../../../src/kube/client.ts";

// What wakes the storage service controller: the keys each observed change enqueues.

function cache<T extends k8s.KubernetesObject>(items: T[] = []): Cache<T> {
  const key = (name: string, namespace?: string) => (namespace ? `${namespace}/${name}` : name);
  const map = new Map(items.map((o) => [key(o.metadata!.name!, o.metadata!.namespace), o]));
  return { list: () => [...map.values()], get: (name, namespace) => map.get(key(name, namespace)) };
}

const service = (
  name: string,
  spec: Record<string, unknown>,
  status: Record<string, unknown> = {},
): CustomObject => ({
  apiVersion: "understudy.dev/v1alpha1",
  kind: "StorageService",
  metadata: { name, namespace: "storage" },
  spec,
  status,
});

const lease = (name: string, holder: string): k8s.V1Lease => ({
  metadata: { name, namespace: "understudy-system", labels: { "understudy.dev/pool": "p" } },
  spec: { holderIdentity: holder },
});

const services = [
  service("on-a1", { pool: "p", zones: ["zone-a"] }, { head: { node: "a1" } }),
  service(
    "moving",
    { pool: "q", zones: ["zone-a"] },
    { failover: { fromNode: "b1", toNode: "c1", leaseName: "slot-q-zone-c-0" } },
  ),
  service(
    "waiting-home",
    { pool: "p", zones: ["zone-a", "zone-b"], failback: { policy: "Automatic" } },
    { head: { node: "b2", leaseName: "slot-p-zone-b-0" } },
  ),
];

const ctx = {
  namespace: "understudy-system",
  cache: {
    services: cache(services),
    slotLeases: cache([
      lease("slot-p-zone-b-0", "service:storage/waiting-home"),
      lease("slot-p-zone-a-0", "claim:t/x"),
    ]),
    nodes: cache([{ metadata: { name: "a1", labels: { "topology.kubernetes.io/zone": "zone-a" } } }]),
    pools: cache(),
    claims: cache(),
    nodeLeases: cache(),
    pods: cache(),
    headServices: cache(),
  } satisfies ObservedState,
} as unknown as ControllerContext;

const watches = storageServiceControllerSpec.watches;

describe("the storage service controller wakes", () => {
  it("for its own service and for pods labelled with a service", () => {
    expect(watches.services!(services[0]!, ctx)).toEqual(["storage/on-a1"]);
    expect(
      watches.pods!(
        { metadata: { name: "x", namespace: "storage", labels: { "understudy.dev/service": "kv" } } },
        ctx,
      ),
    ).toEqual(["storage/kv"]);
  });

  it("for a tenant or placeholder pod on a slot a service holds, and not for one on a tenant's slot", () => {
    const onSlot = (slot: string): k8s.V1Pod => ({
      metadata: { name: "t", namespace: "t", labels: { "understudy.dev/slot": slot } },
    });
    expect(watches.pods!(onSlot("slot-p-zone-b-0"), ctx)).toEqual(["storage/waiting-home"]);
    expect(watches.pods!(onSlot("slot-p-zone-a-0"), ctx)).toEqual([]);
  });

  it("for a node its head or a failover runs on, or in the zone it waits to fail back to", () => {
    const node = (name: string, zone: string): k8s.V1Node => ({
      metadata: { name, labels: { "topology.kubernetes.io/zone": zone } },
    });
    expect(watches.nodes!(node("a1", "zone-a"), ctx).sort()).toEqual([
      "storage/on-a1",
      "storage/waiting-home",
    ]);
    expect(watches.nodes!(node("c1", "zone-c"), ctx)).toEqual(["storage/moving"]);
    expect(watches.nodes!(node("c9", "zone-c"), ctx)).toEqual([]);
    expect(
      watches.nodeLeases!({ metadata: { name: "a1", namespace: "kube-node-lease" } }, ctx).sort(),
    ).toEqual(["storage/on-a1", "storage/waiting-home"]);
  });

  it("for slot Leases it holds or its failover chose, and for its pool", () => {
    expect(watches.slotLeases!(lease("slot-p-zone-b-0", "service:storage/waiting-home"), ctx)).toEqual([
      "storage/waiting-home",
    ]);
    expect(watches.slotLeases!(lease("slot-q-zone-c-0", "claim:t/y"), ctx)).toEqual(["storage/moving"]);
    expect(watches.slotLeases!(lease("slot-p-zone-a-0", "claim:t/x"), ctx)).toEqual([]);
    expect(watches.pools!({ metadata: { name: "p" }, spec: {} }, ctx).sort()).toEqual([
      "storage/on-a1",
      "storage/waiting-home",
    ]);
  });
});
