import type * as k8s from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { ownKey, parseKey } from "../../../src/operator/keys.ts";

const pod = (metadata: k8s.V1ObjectMeta): k8s.V1Pod => ({ apiVersion: "v1", kind: "Pod", metadata });

describe("keys", () => {
  it("parseKey reads namespaced and cluster-scoped keys", () => {
    expect(parseKey("ns/a")).toEqual({ namespace: "ns", name: "a" });
    expect(parseKey("pool-1")).toEqual({ name: "pool-1" });
  });

  it("ownKey is the informer's cache key", () => {
    expect(ownKey(pod({ name: "p", namespace: "ns" }))).toEqual(["ns/p"]);
  });
});
