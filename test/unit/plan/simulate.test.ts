import { describe, expect, it } from "vitest";
import { runVariant } from "../../../bench/utilization.ts";
import { DAY, DEFAULTS, simulateDay, simulateDays, spreadServices } from "../../../src/plan/simulate.ts";
import { summarize } from "../../../src/plan/summary.ts";

// The pool simulation the planner and the utilization benchmark share: seeded, conserving slot-time,
// and sensitive to the pool's size where a zone outage needs more slots than the other zones hold.

const fast = { ...DEFAULTS, tickSeconds: 30 };

describe("simulateDay", () => {
  it("replays the same day from the same seed, and another day from another seed", () => {
    expect(simulateDay(fast)).toEqual(simulateDay(fast));
    expect(simulateDay({ ...fast, seed: 2 })).not.toEqual(simulateDay(fast));
  });

  it("accounts every slot-second as leased, held by a head or free", () => {
    const { slotSeconds, failovers, tenants } = simulateDay(fast);
    expect(slotSeconds.leased + slotSeconds.service + slotSeconds.free).toBe(slotSeconds.total);
    // At least the pool's slots all day long (replenished slots come on top).
    expect(slotSeconds.total).toBeGreaterThanOrEqual(fast.slotsPerZone * fast.zones.length * DAY);
    expect(failovers.foundAtOnce + failovers.waitedSeconds.length).toBeLessThanOrEqual(failovers.total);
    expect(failovers.freeSlot + failovers.revoked).toBe(
      failovers.foundAtOnce + failovers.waitedSeconds.length,
    );
    expect(tenants.granted).toBeLessThanOrEqual(tenants.arrived + tenants.revoked);
  });

  it("places services in their primary zones: the zone outage fails over the head there and no other", () => {
    // No random failures: every failover comes from the outage, which strikes one of the three zones.
    const day = simulateDay({ ...fast, headMtbfHours: 1e9, serviceZones: ["zone-a", "zone-b", "zone-c"] });
    expect(day.failovers.total).toBe(1);
    expect(day.failovers.inOutage).toBe(1);
    const twoInA = simulateDay({ ...fast, headMtbfHours: 1e9, serviceZones: ["zone-a", "zone-a"] });
    expect(twoInA.failovers.total).toBe(twoInA.failovers.inOutage);
    expect([0, 2]).toContain(twoInA.failovers.total);
  });
});

describe("a pool too small for a zone outage", () => {
  const crowded = { ...fast, serviceZones: spreadServices(30, fast.zones), headroomPerZone: 1 };

  it("fails failovers during the outage that a larger pool finds capacity for", () => {
    const small = summarize(
      "small",
      { ...crowded, slotsPerZone: 1 },
      simulateDays({ ...crowded, slotsPerZone: 1 }, 2),
    );
    const large = summarize(
      "large",
      { ...crowded, slotsPerZone: 8 },
      simulateDays({ ...crowded, slotsPerZone: 8 }, 2),
    );
    expect(small.outageFoundAtOnceShare).toBeLessThan(0.7);
    expect(large.outageFoundAtOnceShare).toBe(1);
    expect(large.foundAtOnceShare).toBe(1);
    // The larger pool leases a smaller share of its slot-time: more of it waits for failovers.
    expect(large.leasedShare).toBeLessThan(small.leasedShare);
  });

  it("gives the benchmark the same figures as the planner's simulation for the same parameters", () => {
    const params = { ...crowded, slotsPerZone: 3 };
    expect(runVariant("x", params, 2)).toEqual(summarize("x", params, simulateDays(params, 2)));
  });
});
