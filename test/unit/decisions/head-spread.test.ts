import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { chooseFailoverSlot } from "../../../src/decisions/failover-slot.ts";
import { headLoad } from "../../../src/decisions/head-spread.ts";
import { planSlotPlacement } from "../../../src/decisions/slot-placement.ts";
import type { ClaimView, NodeView, SlotView } from "../../../src/decisions/types.ts";
import { claim, claimHolder, node, pool, serviceHolder, slot } from "./fixtures.ts";

/** Zone a is lost: its heads fail over one after another, each taking its slot in the ledger. */
function outage(
  heads: number,
  slots: SlotView[],
  nodes: NodeView[],
  claims: ClaimView[] = [],
): { slots: SlotView[]; moved: SlotView[] } {
  const down = nodes.map((n) => (n.zone === "a" ? { ...n, ready: false } : n));
  let ledger = slots;
  const moved: SlotView[] = [];
  for (let i = 0; i < heads; i++) {
    const service = { namespace: "s", name: `db-${i}` };
    const choice = chooseFailoverSlot({
      service,
      slots: ledger,
      nodes: down,
      claims,
      failedZone: "a",
      failedZones: ["a"],
    });
    if (choice.kind !== "slot") break;
    moved.push(choice.slot);
    ledger = ledger.map((s) =>
      s.leaseName === choice.slot.leaseName ? { ...s, holder: serviceHolder(service.name) } : s,
    );
  }
  return { slots: ledger, moved };
}

const count = (items: readonly string[]) => {
  const out: Record<string, number> = {};
  for (const item of items) out[item] = (out[item] ?? 0) + 1;
  return out;
};

const nodes = [
  node("a1", "a"),
  node("b1", "b"),
  node("b2", "b"),
  node("c1", "c"),
  node("c2", "c"),
  node("d1", "d"),
  node("d2", "d"),
];

describe("headLoad", () => {
  it("counts the slots services hold, per zone and per node", () => {
    const load = headLoad([
      slot("b", 0, "b1", serviceHolder("x")),
      slot("b", 1, "b1", serviceHolder("y")),
      slot("b", 2, "b2", claimHolder("t")),
      slot("c", 0, "c1"),
    ]);
    expect(Object.fromEntries(load.byZone)).toEqual({ b: 2 });
    expect(Object.fromEntries(load.byNode)).toEqual({ b1: 2 });
  });
});

describe("heads moved by a zone outage", () => {
  it("spread over the surviving zones and their nodes, free slots first within a zone", () => {
    // Two free slots per node in b, c and d: before spreading, all six heads went to zone b.
    const slots = ["b", "c", "d"].flatMap((zone) =>
      [0, 1, 2, 3].map((i) => slot(zone, i, `${zone}${(i % 2) + 1}`)),
    );
    const { moved } = outage(6, slots, nodes);
    expect(count(moved.map((s) => s.zone))).toEqual({ b: 2, c: 2, d: 2 });
    expect(count(moved.map((s) => s.node))).toEqual({ b1: 1, b2: 1, c1: 1, c2: 1, d1: 1, d2: 1 });
    expect(moved.every((s) => s.holder.kind === "free")).toBe(true);
  });

  it("revoke the lowest bid of a zone with fewer heads rather than pile onto a zone's free slot", () => {
    const slots = [slot("b", 0, "b1"), slot("b", 1, "b2"), slot("c", 0, "c1", claimHolder("low"))];
    const claims = [claim("low", { bid: 1 })];
    const { moved } = outage(2, slots, nodes, claims);
    expect(moved.map((s) => s.leaseName)).toEqual(["slot-p-b-0", "slot-p-c-0"]);
  });

  it("fill a zone beyond its share only when the other zones have no usable slot left", () => {
    const slots = [slot("b", 0, "b1"), ...[0, 1, 2, 3].map((i) => slot("c", i, `c${(i % 2) + 1}`))];
    const { moved } = outage(
      5,
      slots,
      nodes.filter((n) => n.zone !== "d"),
    );
    expect(count(moved.map((s) => s.zone))).toEqual({ b: 1, c: 4 });
    expect(count(moved.map((s) => s.node))).toEqual({ b1: 1, c1: 2, c2: 2 });
  });

  it("count heads already on the pool's slots from earlier failovers", () => {
    const slots = [
      slot("b", 0, "b1", serviceHolder("earlier")),
      slot("b", 1, "b2"),
      slot("c", 0, "c1"),
      slot("c", 1, "c2"),
    ];
    const { moved } = outage(3, slots, nodes);
    expect(count(moved.map((s) => s.zone))).toEqual({ b: 1, c: 2 });
  });

  it("never leave a zone more than one head above another that still has a usable slot (property)", () => {
    const zoneSlots = fc.record({
      b: fc.array(fc.boolean(), { maxLength: 6 }),
      c: fc.array(fc.boolean(), { maxLength: 6 }),
      d: fc.array(fc.boolean(), { maxLength: 6 }),
    });
    fc.assert(
      fc.property(zoneSlots, fc.integer({ min: 1, max: 12 }), (zones, heads) => {
        // Each slot free (true) or leased to a tenant (false), on two nodes per zone.
        const claims: ClaimView[] = [];
        const slots = Object.entries(zones).flatMap(([zone, free]) =>
          free.map((isFree, i) => {
            if (isFree) return slot(zone, i, `${zone}${(i % 2) + 1}`);
            claims.push(claim(`${zone}-${i}`, { bid: i }));
            return slot(zone, i, `${zone}${(i % 2) + 1}`, claimHolder(`${zone}-${i}`));
          }),
        );
        const result = outage(heads, slots, nodes, claims);
        expect(result.moved.length).toBe(Math.min(heads, slots.length));
        const load = headLoad(result.slots).byZone;
        const left = (zone: string) =>
          result.slots.some((s) => s.zone === zone && s.holder.kind !== "service");
        for (const z1 of ["b", "c", "d"])
          for (const z2 of ["b", "c", "d"])
            if ((load.get(z1) ?? 0) > (load.get(z2) ?? 0) + 1) expect(left(z2)).toBe(false);
      }),
    );
  });

  it("are followed by the replenished slots: each zone refills, on the nodes carrying no head", () => {
    const big = (name: string, zone: string) =>
      node(name, zone, { allocatable: { cpuMillis: 2000, memoryBytes: 8 * 1024 ** 3, pods: 110 } });
    const cluster = [big("b1", "b"), big("b2", "b"), big("c1", "c"), big("c2", "c")];
    // One slot per zone on the first node (it has room for one more), none yet on the second.
    const slots = [slot("b", 0, "b1"), slot("c", 0, "c1")];
    const { slots: after, moved } = outage(2, slots, [node("a1", "a"), ...cluster]);
    expect(moved.map((s) => s.zone).sort()).toEqual(["b", "c"]);
    const plan = planSlotPlacement({
      pool: pool({
        zones: [
          { name: "b", slots: 1 },
          { name: "c", slots: 1 },
        ],
      }),
      slots: after,
      nodes: cluster.map((n) => ({
        ...n,
        requested: { cpuMillis: 1000, memoryBytes: 2 * 1024 ** 3, pods: 1 },
      })),
      claims: [],
    });
    expect(plan.create.map((c) => [c.zone, c.node]).sort()).toEqual([
      ["b", "b2"],
      ["c", "c2"],
    ]);
  });
});
