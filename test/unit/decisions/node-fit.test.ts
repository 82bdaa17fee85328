import { describe, expect, it } from "vitest";
import { nodeAcceptsPool, tolerates, toleratesAll } from "../../../src/decisions/node-fit.ts";
import { node, pool } from "./fixtures.ts";

describe("tolerations", () => {
  const taint = { key: "dedicated", value: "spot", effect: "NoSchedule" as const };

  it("Equal needs the same key and value", () => {
    expect(tolerates({ key: "dedicated", value: "spot" }, taint)).toBe(true);
    expect(tolerates({ key: "dedicated", operator: "Equal", value: "gpu" }, taint)).toBe(false);
    expect(tolerates({ key: "other", value: "spot" }, taint)).toBe(false);
  });

  it("Exists needs the key only, and an empty key tolerates everything", () => {
    expect(tolerates({ key: "dedicated", operator: "Exists" }, taint)).toBe(true);
    expect(tolerates({ operator: "Exists" }, taint)).toBe(true);
  });

  it("an effect, when given, must match", () => {
    expect(tolerates({ key: "dedicated", value: "spot", effect: "NoExecute" }, taint)).toBe(false);
    expect(tolerates({ key: "dedicated", value: "spot", effect: "NoSchedule" }, taint)).toBe(true);
    expect(tolerates({ key: "dedicated", value: "spot", effect: "" }, taint)).toBe(true);
  });

  it("PreferNoSchedule never blocks; NoSchedule and NoExecute must be tolerated", () => {
    expect(toleratesAll([], [{ key: "x", effect: "PreferNoSchedule" }])).toBe(true);
    expect(toleratesAll([], [{ key: "x", effect: "NoExecute" }])).toBe(false);
    expect(toleratesAll([{ key: "x", operator: "Exists" }], [{ key: "x", effect: "NoExecute" }])).toBe(true);
  });
});

describe("nodeAcceptsPool", () => {
  it("needs a Ready, schedulable, zoned node selected by the pool", () => {
    const p = pool({ nodeSelector: { tier: "spare" } });
    const good = node("n1", "a", { labels: { tier: "spare" } });
    expect(nodeAcceptsPool(good, p)).toBe(true);
    expect(nodeAcceptsPool({ ...good, ready: false }, p)).toBe(false);
    expect(nodeAcceptsPool({ ...good, unschedulable: true }, p)).toBe(false);
    expect(nodeAcceptsPool({ ...good, zone: undefined }, p)).toBe(false);
    expect(nodeAcceptsPool({ ...good, labels: { tier: "main" } }, p)).toBe(false);
    expect(nodeAcceptsPool({ ...good, taints: [{ key: "k", effect: "NoSchedule" }] }, p)).toBe(false);
  });
});
