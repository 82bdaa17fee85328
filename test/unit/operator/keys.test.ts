import type * as k8s from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { labelKey, makeKey, ownKey, ownerKeys, parseKey } from "../../../src/operator/keys.ts";

const pod = (metadata: k8s.V1ObjectMeta): k8s.V1Pod => ({ apiVersion: "v1", kind: "Pod", metadata });

describe("keys", () => {
  it("parseKey and makeKey are inverse for namespaced and cluster-scoped names", () => {
    expect(parseKey("ns/a")).toEqual({ namespace: "ns", name: "a" });
    expect(parseKey("pool-1")).toEqual({ name: "pool-1" });
    expect(makeKey("a", "ns")).toBe("ns/a");
    expect(makeKey("pool-1")).toBe("pool-1");
  });

  it("ownKey is the informer's cache key", () => {
    expect(ownKey(pod({ name: "p", namespace: "ns" }))).toEqual(["ns/p"]);
  });

  it("ownerKeys maps an object to its owners of one kind and group, in its namespace", () => {
    const owned = pod({
      name: "claim-a-tenant",
      namespace: "team",
      ownerReferences: [
        { apiVersion: "understudy.dev/v1alpha1", kind: "PoolClaim", name: "claim-a", uid: "1" },
        { apiVersion: "apps/v1", kind: "StatefulSet", name: "web", uid: "2" },
        { apiVersion: "other.example/v1", kind: "PoolClaim", name: "impostor", uid: "3" },
      ],
    });
    expect(ownerKeys("PoolClaim", "understudy.dev")(owned)).toEqual(["team/claim-a"]);
    expect(ownerKeys("PoolClaim")(owned)).toEqual(["team/claim-a", "team/impostor"]);
    expect(ownerKeys("StatefulSet", "apps")(owned)).toEqual(["team/web"]);
    expect(ownerKeys("PoolClaim")(pod({ name: "orphan", namespace: "team" }))).toEqual([]);
  });

  it("labelKey maps an object to the object its label names", () => {
    const tenant = pod({ name: "t", namespace: "team", labels: { "understudy.dev/claim": "claim-a" } });
    expect(labelKey("understudy.dev/claim")(tenant)).toEqual(["team/claim-a"]);
    expect(
      labelKey(
        "understudy.dev/pool",
        () => undefined,
      )(pod({ name: "x", labels: { "understudy.dev/pool": "p" } })),
    ).toEqual(["p"]);
    expect(labelKey("understudy.dev/claim")(pod({ name: "x", namespace: "team" }))).toEqual([]);
  });
});
