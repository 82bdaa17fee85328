import type * as k8s from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { statusOnlyUpdate, type Cache, type ControllerContext } from "../../../src/controllers/context.ts";
import { perObject, perObjectWith } from "../../../src/controllers/derived.ts";
import { Store, type Indexer } from "../../../src/kube/store.ts";
import {
  observeNodes,
  slotLeasesHeldBy,
  slotLeasesOfPool,
  slotLeasesRevokedFrom,
} from "../../../src/controllers/indexes.ts";

/** A cache like an informer's: objects replaced on change, indexes kept per event. */
class IndexedCache<T extends k8s.KubernetesObject> implements Cache<T> {
  private readonly store = new Store<T>();
  list = () => [...this.store.values()];
  get = (name: string) => this.store.get(name);
  byIndex = (indexer: Indexer<T>, value: string) => this.store.byIndex(indexer, value);
  set(object: T) {
    this.store.set(object.metadata!.name!, object);
  }
  delete(name: string) {
    this.store.delete(name);
  }
}

const lease = (name: string, pool: string, holder?: string): k8s.V1Lease => ({
  metadata: { name, labels: { "understudy.dev/pool": pool } },
  spec: holder ? { holderIdentity: holder } : {},
});

describe("perObject", () => {
  it("derives once per object and again for a replaced object", () => {
    let calls = 0;
    const size = perObject((o: { items: number[] }) => (calls++, o.items.length));
    const a = { items: [1, 2] };
    expect(size(a)).toBe(2);
    expect(size(a)).toBe(2);
    expect(calls).toBe(1);
    expect(size({ items: [1, 2, 3] })).toBe(3);
    expect(calls).toBe(2);
  });

  it("remembers an undefined result too", () => {
    let calls = 0;
    const nothing = perObject((_: object) => (calls++, undefined));
    const o = {};
    nothing(o);
    nothing(o);
    expect(calls).toBe(1);
  });
});

describe("perObjectWith", () => {
  it("derives again only when the object or an input changes identity", () => {
    let calls = 0;
    const count = perObjectWith(
      (items: readonly number[], _input: object, min: number) => (
        calls++,
        items.filter((i) => i >= min).length
      ),
    );
    const items = [1, 2, 3];
    const input = {};
    expect(count(items, input, 2)).toBe(2);
    expect(count(items, input, 2)).toBe(2);
    expect(calls).toBe(1);
    expect(count([1, 2, 3], input, 2)).toBe(2);
    expect(calls).toBe(2);
    expect(count(items, {}, 2)).toBe(2);
    expect(calls).toBe(3);
    expect(count(items, input, 3)).toBe(1);
    expect(calls).toBe(4);
  });
});

/** The same cache without indexes: the lookups scan it. */
class PlainCache<T extends k8s.KubernetesObject> extends IndexedCache<T> {
  override byIndex = undefined as unknown as IndexedCache<T>["byIndex"];
}

describe("the cache indexes", () => {
  it.each([
    ["an indexed cache", () => new IndexedCache<k8s.V1Lease>()],
    ["a cache without indexes", () => new PlainCache<k8s.V1Lease>()],
  ])("follow the slot Leases as they change, in %s", (_, make) => {
    const slotLeases = make();
    const ctx = { cache: { slotLeases } } as unknown as ControllerContext;
    slotLeases.set(lease("s0", "p", "claim:t/a"));
    slotLeases.set(lease("s1", "p"));
    slotLeases.set(lease("s2", "q", "claim:t/a"));
    expect(slotLeasesOfPool(ctx, "p").map((l) => l.metadata!.name)).toEqual(["s0", "s1"]);
    expect(slotLeasesHeldBy(ctx, "claim:t/a").map((l) => l.metadata!.name)).toEqual(["s0", "s2"]);
    slotLeases.set(lease("s0", "p", "service:s/x"));
    slotLeases.delete("s2");
    expect(slotLeasesHeldBy(ctx, "claim:t/a")).toEqual([]);
    expect(slotLeasesHeldBy(ctx, "service:s/x").map((l) => l.metadata!.name)).toEqual(["s0"]);
    expect(slotLeasesOfPool(ctx, "q")).toEqual([]);
  });

  it("find the slot a claim was revoked from by the Lease's annotation", () => {
    const slotLeases = new IndexedCache<k8s.V1Lease>();
    const ctx = { cache: { slotLeases } } as unknown as ControllerContext;
    const revoked = lease("s0", "p", "service:s/x");
    revoked.metadata!.annotations = { "understudy.dev/revoked-claim": "t/a" };
    slotLeases.set(revoked);
    slotLeases.set(lease("s1", "p", "claim:t/b"));
    expect(slotLeasesRevokedFrom(ctx, "t/a").map((l) => l.metadata!.name)).toEqual(["s0"]);
    expect(slotLeasesRevokedFrom(ctx, "t/b")).toEqual([]);
  });

  it("count what a node's pods request as pods are bound, finish and go", () => {
    const nodes = new IndexedCache<k8s.V1Node>();
    const pods = new IndexedCache<k8s.V1Pod>();
    const nodeLeases = new IndexedCache<k8s.V1Lease>();
    const ctx = { cache: { nodes, pods, nodeLeases } } as unknown as ControllerContext;
    const pod = (name: string, nodeName: string | undefined, cpu: string, phase = "Running"): k8s.V1Pod => ({
      metadata: { name },
      spec: { nodeName, containers: [{ name: "c", resources: { requests: { cpu } } }] },
      status: { phase },
    });
    nodes.set({ metadata: { name: "n1" }, status: { allocatable: { cpu: "4" } } });
    nodes.set({ metadata: { name: "n2" }, status: { allocatable: { cpu: "4" } } });
    const cpuOn = () => Object.fromEntries(observeNodes(ctx).map((n) => [n.name, n.requested.cpuMillis]));
    pods.set(pod("a", "n1", "500m"));
    pods.set(pod("b", undefined, "1"));
    expect(cpuOn()).toEqual({ n1: 500, n2: 0 });
    const [first] = observeNodes(ctx);
    expect(observeNodes(ctx)[0]).toBe(first);
    pods.set(pod("b", "n2", "1"));
    pods.set(pod("c", "n1", "250m"));
    expect(cpuOn()).toEqual({ n1: 750, n2: 1000 });
    pods.set(pod("a", "n1", "500m", "Succeeded"));
    pods.delete("b");
    expect(cpuOn()).toEqual({ n1: 250, n2: 0 });
  });
});

describe("statusOnlyUpdate", () => {
  const pool = (generation: number, labels: Record<string, string> = {}, deletionTimestamp?: Date) => ({
    metadata: { name: "p", generation, labels, ...(deletionTimestamp ? { deletionTimestamp } : {}) },
  });

  it("is true when only status (or annotations) changed", () => {
    expect(statusOnlyUpdate(pool(3), pool(3))).toBe(true);
  });

  it("is false for a spec change, a label change or a deletion", () => {
    expect(statusOnlyUpdate(pool(3), pool(4))).toBe(false);
    expect(statusOnlyUpdate(pool(3), pool(3, { team: "a" }))).toBe(false);
    expect(statusOnlyUpdate(pool(3), pool(3, {}, new Date()))).toBe(false);
  });

  it("is false for objects without a generation (it cannot tell)", () => {
    expect(statusOnlyUpdate({ metadata: {} }, { metadata: {} })).toBe(false);
  });
});
