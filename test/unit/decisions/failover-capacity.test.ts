import { describe, expect, it } from "vitest";
import { estimateFailoverCapacity } from "../../../src/decisions/failover-capacity.ts";
import { claim, claimHolder, node, serviceHolder, slot } from "./fixtures.ts";

// The pool's readiness for failovers now: a head failing alone, and a whole zone failing.

const nodes = [node("a1", "a"), node("b1", "b"), node("c1", "c")];
const head = (name: string, zone: string) => ({ namespace: "s", name, zone });

describe("estimateFailoverCapacity", () => {
  it("finds a slot for every head alone, and for a zone's heads while the other zones hold enough", () => {
    const estimate = estimateFailoverCapacity({
      slots: [slot("a", 0, "a1"), slot("b", 0, "b1", claimHolder("batch")), slot("c", 0, "c1")],
      nodes,
      claims: [claim("batch", { phase: "Bound" })],
      services: [head("kv-a", "a"), head("kv-b", "b"), head("kv-c", "c")],
    });
    expect(estimate).toEqual({ services: 3, singleFailure: 1, zoneOutage: 1, worstZone: "a" });
  });

  it("reports the zone whose outage would leave heads without a slot, and how many", () => {
    // Three heads in zone a; the other zones hold two slots, one already held by a head.
    const estimate = estimateFailoverCapacity({
      slots: [
        slot("a", 0, "a1"),
        slot("b", 0, "b1"),
        slot("c", 0, "c1"),
        slot("c", 1, "c1", serviceHolder("kv-x")),
      ],
      nodes,
      claims: [],
      services: [head("kv-1", "a"), head("kv-2", "a"), head("kv-3", "a"), head("kv-x", "c")],
    });
    expect(estimate.worstZone).toBe("a");
    expect(estimate.zoneOutage).toBeCloseTo(2 / 3, 10);
    // Failing alone, each head finds one of the three slots nobody holds.
    expect(estimate.singleFailure).toBe(1);
  });

  it("counts no slot on a NotReady node and none held by a service", () => {
    const estimate = estimateFailoverCapacity({
      slots: [slot("b", 0, "b1"), slot("c", 0, "c1", serviceHolder("kv-c"))],
      nodes: [node("a1", "a"), node("b1", "b", { ready: false }), node("c1", "c")],
      claims: [],
      services: [head("kv-a", "a"), head("kv-c", "c")],
    });
    expect(estimate).toEqual({ services: 2, singleFailure: 0, zoneOutage: 0, worstZone: "a" });
  });

  it("counts for each head only the slots on nodes that fit its placement", () => {
    const estimate = estimateFailoverCapacity({
      slots: [slot("b", 0, "b1"), slot("c", 0, "c1")],
      nodes: [node("a1", "a"), node("b1", "b"), node("c1", "c", { labels: { disk: "ssd" } })],
      claims: [],
      services: [
        { ...head("kv-ssd", "a"), placement: { nodeSelector: { disk: "ssd" }, tolerations: [] } },
        { ...head("kv-gpu", "a"), placement: { nodeSelector: { gpu: "yes" }, tolerations: [] } },
      ],
    });
    // Alone, only kv-ssd finds a slot; in zone a's outage, kv-gpu finds none either way.
    expect(estimate).toEqual({ services: 2, singleFailure: 0.5, zoneOutage: 0.5, worstZone: "a" });
  });

  it("is vacuously ready with no storage service", () => {
    expect(estimateFailoverCapacity({ slots: [], nodes, claims: [], services: [] })).toEqual({
      services: 0,
      singleFailure: 1,
      zoneOutage: 1,
    });
  });
});
