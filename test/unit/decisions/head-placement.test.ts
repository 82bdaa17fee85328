import { describe, expect, it } from "vitest";
import { headMisfit, noFitMessage, type HeadPlacementRule } from "../../../src/decisions/head-placement.ts";
import { node } from "./fixtures.ts";

const rule = (overrides: Partial<HeadPlacementRule> = {}): HeadPlacementRule => ({
  nodeSelector: {},
  tolerations: [],
  ...overrides,
});

describe("headMisfit", () => {
  it("fits any untainted node when the head asks for nothing", () => {
    expect(headMisfit(node("a1", "a"), rule())).toBeUndefined();
  });

  it("needs every label of the nodeSelector with its value", () => {
    const ssd = node("a1", "a", { labels: { disk: "ssd", tier: "db" } });
    expect(headMisfit(ssd, rule({ nodeSelector: { disk: "ssd" } }))).toBeUndefined();
    expect(headMisfit(ssd, rule({ nodeSelector: { disk: "ssd", tier: "db" } }))).toBeUndefined();
    expect(headMisfit(ssd, rule({ nodeSelector: { disk: "hdd" } }))).toBe("node a1 lacks label disk=hdd");
    expect(headMisfit(node("a2", "a"), rule({ nodeSelector: { disk: "ssd", gpu: "" } }))).toBe(
      "node a2 lacks label disk=ssd, gpu=",
    );
  });

  it("refuses a node whose NoSchedule or NoExecute taint no toleration tolerates, and ignores PreferNoSchedule", () => {
    const tainted = node("b1", "b", {
      taints: [
        { key: "dedicated", value: "db", effect: "NoSchedule" },
        { key: "maintenance", effect: "NoExecute" },
        { key: "busy", effect: "PreferNoSchedule" },
      ],
    });
    expect(headMisfit(tainted, rule())).toBe(
      "node b1 has taint dedicated=db:NoSchedule, maintenance:NoExecute, not tolerated",
    );
    expect(
      headMisfit(tainted, rule({ tolerations: [{ key: "dedicated", operator: "Equal", value: "db" }] })),
    ).toBe("node b1 has taint maintenance:NoExecute, not tolerated");
    expect(
      headMisfit(
        tainted,
        rule({
          tolerations: [
            { key: "dedicated", value: "db", effect: "NoSchedule" },
            { key: "maintenance", operator: "Exists", effect: "NoExecute" },
          ],
        }),
      ),
    ).toBeUndefined();
    // A toleration of every taint: empty key with Exists.
    expect(headMisfit(tainted, rule({ tolerations: [{ operator: "Exists" }] }))).toBeUndefined();
  });

  it("names missing labels before taints", () => {
    const both = node("c1", "c", { taints: [{ key: "x", effect: "NoSchedule" }] });
    expect(headMisfit(both, rule({ nodeSelector: { disk: "ssd" } }))).toBe("node c1 lacks label disk=ssd");
  });
});

describe("noFitMessage", () => {
  it("gives each node's reason in name order, the first three by name and the rest counted", () => {
    const nodes = ["n5", "n1", "n3", "n2", "n4"].map((name) => node(name, "a"));
    expect(noFitMessage(nodes, rule({ nodeSelector: { disk: "ssd" } }))).toBe(
      "node n1 lacks label disk=ssd; node n2 lacks label disk=ssd; node n3 lacks label disk=ssd; and 2 more nodes",
    );
    expect(noFitMessage(nodes.slice(0, 1), rule({ nodeSelector: { disk: "ssd" } }))).toBe(
      "node n5 lacks label disk=ssd",
    );
  });
});
