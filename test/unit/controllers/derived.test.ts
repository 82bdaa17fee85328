import type * as k8s from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { statusOnlyUpdate, type Cache, type ControllerContext } from "../../../src/controllers/context.ts";
import { perObject, perRevision } from "../../../src/controllers/derived.ts";
import {
  slotLeasesHeldBy,
  slotLeasesOfPool,
  slotLeasesRevokedFrom,
} from "../../../src/controllers/indexes.ts";

/** A cache like an informer's: objects replaced on change, revision bumped. */
class VersionedCache<T extends k8s.KubernetesObject> implements Cache<T> {
  private readonly items = new Map<string, T>();
  revision = 0;
  list = () => [...this.items.values()];
  get = (name: string) => this.items.get(name);
  set(object: T) {
    this.items.set(object.metadata!.name!, object);
    this.revision++;
  }
  delete(name: string) {
    this.items.delete(name);
    this.revision++;
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

describe("perRevision", () => {
  it("derives again only when a cache's revision, an input or the key changes", () => {
    let calls = 0;
    const cache = new VersionedCache<k8s.V1Lease>();
    const count = perRevision(
      (c: VersionedCache<k8s.V1Lease>, _input: object, _key: string) => [c],
      (_c, input) => [input],
      (_c, _input, key) => key,
      (c, _input, key) => (
        calls++,
        c.list().filter((l) => l.metadata?.labels?.["understudy.dev/pool"] === key).length
      ),
    );
    const input = {};
    cache.set(lease("a", "p"));
    expect(count(cache, input, "p")).toBe(1);
    expect(count(cache, input, "p")).toBe(1);
    expect(calls).toBe(1);
    cache.set(lease("b", "p"));
    expect(count(cache, input, "p")).toBe(2);
    expect(calls).toBe(2);
    expect(count(cache, {}, "p")).toBe(2);
    expect(calls).toBe(3);
    expect(count(cache, input, "q")).toBe(0);
    expect(calls).toBe(4);
  });

  it("derives every time from a cache without a revision", () => {
    let calls = 0;
    const plain: Cache<k8s.V1Lease> = { list: () => [], get: () => undefined };
    const f = perRevision(
      (c: Cache<k8s.V1Lease>) => [c],
      () => [],
      () => "",
      () => ++calls,
    );
    f(plain);
    f(plain);
    expect(calls).toBe(2);
  });
});

describe("the cache indexes", () => {
  it("follow the slot Leases as they change", () => {
    const slotLeases = new VersionedCache<k8s.V1Lease>();
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
    const slotLeases = new VersionedCache<k8s.V1Lease>();
    const ctx = { cache: { slotLeases } } as unknown as ControllerContext;
    const revoked = lease("s0", "p", "service:s/x");
    revoked.metadata!.annotations = { "understudy.dev/revoked-claim": "t/a" };
    slotLeases.set(revoked);
    slotLeases.set(lease("s1", "p", "claim:t/b"));
    expect(slotLeasesRevokedFrom(ctx, "t/a").map((l) => l.metadata!.name)).toEqual(["s0"]);
    expect(slotLeasesRevokedFrom(ctx, "t/b")).toEqual([]);
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
