import { describe, expect, it } from "vitest";
import {
  missingLabels,
  nodeAcceptsPool,
  tolerates,
  toleratesAll,
  untoleratedTaints,
} from "../../../src/decisions/node-fit.ts";
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

  it("Exists ignores the value; Equal compares values, an empty one with an unvalued taint", () => {
    expect(tolerates({ key: "dedicated", operator: "Exists", value: "other" }, taint)).toBe(true);
    expect(tolerates({ key: "k" }, { key: "k", effect: "NoSchedule" })).toBe(true);
    expect(tolerates({ key: "k", value: "" }, { key: "k", value: "v", effect: "NoSchedule" })).toBe(false);
  });

  it("as Kubernetes' ToleratesTaint: an empty key is checked against no key, so Equal then matches on the value alone", () => {
    // Validation refuses an empty key with Equal; the matching itself is Kubernetes' own.
    expect(tolerates({ value: "spot" }, taint)).toBe(true);
    expect(tolerates({ value: "gpu" }, taint)).toBe(false);
    expect(tolerates({ operator: "Exists", effect: "NoExecute" }, taint)).toBe(false);
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

describe("untoleratedTaints and missingLabels", () => {
  it("list exactly what keeps a pod off a node", () => {
    const taints = [
      { key: "a", effect: "NoSchedule" as const },
      { key: "b", effect: "NoExecute" as const },
      { key: "c", effect: "PreferNoSchedule" as const },
    ];
    expect(untoleratedTaints([{ key: "a", operator: "Exists" }], taints)).toEqual([taints[1]]);
    expect(untoleratedTaints([{ operator: "Exists" }], taints)).toEqual([]);
    expect(missingLabels({ x: "1", y: "2" }, { x: "1", y: "3", z: "" })).toEqual([
      ["y", "3"],
      ["z", ""],
    ]);
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
