import { describe, expect, it } from "vitest";
import { evaluate, searchPoolSize } from "../../../src/plan/recommend.ts";
import { assumptions } from "./fixtures.ts";

// The search for a pool size: the smallest size meeting the target, then the fewest hot spares
// meeting the free-slot target; raising a target never shrinks the answer.

const options = { days: 2, tickSeconds: 30, seed: 1, maxSlotsPerZone: 30 };
const crowded = assumptions({ services: 30, slotsPerZone: 2, headroomPerZone: 2 });

describe("searchPoolSize", () => {
  it("recommends the smallest pool size whose failovers find capacity at the target share", () => {
    const result = searchPoolSize(crowded, { ...options, target: 0.9 });
    const { slotsPerZone } = result.recommendation;
    expect(result.recommendation.met).toBe(true);
    expect(result.recommended.foundAtOnceShare).toBeGreaterThanOrEqual(0.9);
    const smaller = result.sizes.filter((r) => r.slotsPerZone < slotsPerZone);
    expect(smaller.length).toBe(slotsPerZone - 1);
    for (const row of smaller) expect(row.foundAtOnceShare).toBeLessThan(0.9);
    // One size past the answer is shown too.
    expect(result.sizes.at(-1)!.slotsPerZone).toBe(slotsPerZone + 1);
  });

  it("recommends a larger pool for a higher target", () => {
    const low = searchPoolSize(crowded, { ...options, target: 0.8 }).recommendation.slotsPerZone;
    const high = searchPoolSize(crowded, { ...options, target: 0.999 }).recommendation.slotsPerZone;
    expect(high).toBeGreaterThan(low);
  });

  it("evaluates the current pool as the cluster has it", () => {
    const result = searchPoolSize(assumptions({ services: 6, slotsPerZone: 5, hotSpares: 2 }), {
      ...options,
      target: 0.9,
    });
    expect([result.current.slotsPerZone, result.current.hotSpares]).toEqual([5, 2]);
    // Without a free-slot target the pool's hot spares are kept.
    expect(result.recommendation.hotSpares).toBe(2);
  });

  it("sizes hot spares for a share of failovers on a free slot", () => {
    const a = assumptions({ services: 12, slotsPerZone: 2, headroomPerZone: 1 });
    const none = evaluate(a, { slotsPerZone: 3, hotSpares: 0 }, { ...options, target: 0.9 });
    const result = searchPoolSize(a, { ...options, target: 0.9, freeTarget: 0.9 });
    expect(none.freeSlotShare).toBeLessThan(0.9);
    expect(result.recommendation.hotSpares).toBeGreaterThan(0);
    expect(result.recommended.freeSlotShare).toBeGreaterThanOrEqual(0.9);
    expect(result.recommended.leasedShare).toBeLessThan(none.leasedShare);
  });

  it("says so when no size up to the limit meets the target", () => {
    const result = searchPoolSize(crowded, { ...options, target: 1, maxSlotsPerZone: 1 });
    expect(result.recommendation.met).toBe(false);
    expect(result.recommendation.reason).toMatch(/no size up to 1\/zone reached 100.0%/);
  });
});
