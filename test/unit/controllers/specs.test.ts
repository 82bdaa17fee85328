// What wakes the claim controller: a claim of a pool another operator manages is never queued.
import type * as k8s from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { ControllerContext } from "../../../src/controllers/context.ts";
import { labels } from "../../../src/controllers/labels.ts";
import { claimControllerSpec } from "../../../src/controllers/specs.ts";

const claims: Record<string, { metadata: k8s.V1ObjectMeta; spec: { pool: string } }> = {
  "t/ours": { metadata: { namespace: "t", name: "ours" }, spec: { pool: "ours" } },
  "t/theirs": { metadata: { namespace: "t", name: "theirs" }, spec: { pool: "theirs" } },
  "t/missing": { metadata: { namespace: "t", name: "missing" }, spec: { pool: "nowhere" } },
};
const ctx = {
  cache: { claims: { get: (name: string, namespace?: string) => claims[`${namespace}/${name}`] } },
  // As registerControllers decides it: a pool that exists nowhere is every operator's.
  managesPool: (pool: string) => pool !== "theirs",
} as unknown as ControllerContext;
const watches = claimControllerSpec.watches;

describe("the claim controller's watches", () => {
  it("queue a claim of a pool this operator manages, or of a pool that exists nowhere", () => {
    expect(watches.claims!(claims["t/ours"] as never, ctx)).toEqual(["t/ours"]);
    expect(watches.claims!(claims["t/missing"] as never, ctx)).toEqual(["t/missing"]);
  });

  it("drop a claim of another operator's pool, and the pods that name it", () => {
    expect(watches.claims!(claims["t/theirs"] as never, ctx)).toEqual([]);
    const pod = (claim: string): k8s.V1Pod => ({
      metadata: { namespace: "t", name: `worker-${claim}`, labels: { [labels.claim]: claim } },
    });
    expect(watches.pods!(pod("theirs"), ctx)).toEqual([]);
    expect(watches.pods!(pod("ours"), ctx)).toEqual(["t/ours"]);
  });

  it("keep a claim the cache does not hold yet: its reconcile decides", () => {
    const pod: k8s.V1Pod = { metadata: { namespace: "t", name: "w", labels: { [labels.claim]: "new" } } };
    expect(watches.pods!(pod, ctx)).toEqual(["t/new"]);
  });
});
