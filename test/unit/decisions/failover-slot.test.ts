import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { chooseFailoverSlot, type FailoverSlotInput } from "../../../src/decisions/failover-slot.ts";
import type { SlotView } from "../../../src/decisions/types.ts";
import { claim, claimHolder, node, serviceHolder, slot } from "./fixtures.ts";

const nodes = [node("a1", "a"), node("b1", "b"), node("c1", "c")];
const service = { namespace: "s", name: "db" };

function choose(overrides: Partial<FailoverSlotInput>) {
  return chooseFailoverSlot({ service, slots: [], nodes, claims: [], failedZone: "a", ...overrides });
}

describe("chooseFailoverSlot", () => {
  it("prefers a zone other than the failed head's, even leased over free", () => {
    const choice = choose({
      slots: [slot("a", 0, "a1"), slot("b", 0, "b1", claimHolder("x"))],
      claims: [claim("x", { bid: 3 })],
    });
    expect(choice).toMatchObject({
      kind: "slot",
      slot: { leaseName: "slot-p-b-0" },
      victim: { namespace: "t", name: "x", bid: 3 },
      zoneFallback: false,
    });
  });

  it("falls back to the failed zone when no other zone has a usable slot", () => {
    const choice = choose({ slots: [slot("a", 0, "a1"), slot("b", 0, "b1", serviceHolder("other"))] });
    expect(choice).toMatchObject({ kind: "slot", slot: { leaseName: "slot-p-a-0" }, zoneFallback: true });
    expect(choice.kind === "slot" && choice.victim).toBeUndefined();
  });

  it("avoids nodes where a head did not get Ready, before zone or holder preferences, while another slot is left", () => {
    const slots = [slot("b", 0, "b1"), slot("b", 1, "b1"), slot("c", 0, "c1", claimHolder("x"))];
    const claims = [claim("x", { bid: 9 })];
    // Without avoidance: the free slot of zone b (b before c, free before leased).
    expect(choose({ slots, claims, exclude: ["slot-p-b-0"] })).toMatchObject({
      slot: { leaseName: "slot-p-b-1" },
    });
    // b1 is avoided: the leased slot on c1 beats the free one on b1.
    expect(choose({ slots, claims, exclude: ["slot-p-b-0"], avoidNodes: ["b1"] })).toMatchObject({
      kind: "slot",
      slot: { leaseName: "slot-p-c-0" },
      victim: { name: "x" },
    });
    // Nothing else left: an avoided node is still better than no head.
    expect(choose({ slots: slots.slice(0, 2), exclude: ["slot-p-b-0"], avoidNodes: ["b1"] })).toMatchObject({
      kind: "slot",
      slot: { leaseName: "slot-p-b-1" },
    });
  });

  it("takes a free slot before a leased one within the zones it prefers", () => {
    const choice = choose({
      slots: [slot("b", 0, "b1", claimHolder("x")), slot("c", 3, "c1"), slot("c", 1, "c1")],
      claims: [claim("x", { bid: 0 })],
    });
    expect(choice).toMatchObject({ kind: "slot", slot: { leaseName: "slot-p-c-1" } });
  });

  it("among leased slots, the lowest bid, then the youngest lease", () => {
    const slots = [
      slot("b", 0, "b1", claimHolder("rich"), { acquiredAt: 9 }),
      slot("b", 1, "b1", claimHolder("old"), { acquiredAt: 1 }),
      slot("c", 0, "c1", claimHolder("young"), { acquiredAt: 5 }),
    ];
    const claims = [claim("rich", { bid: 9 }), claim("old", { bid: 2 }), claim("young", { bid: 2 })];
    expect(choose({ slots, claims })).toMatchObject({
      slot: { leaseName: "slot-p-c-0" },
      victim: { name: "young" },
    });
  });

  it("takes a lease naming a vanished claim before any bid", () => {
    const slots = [slot("b", 0, "b1", claimHolder("x")), slot("c", 0, "c1", claimHolder("ghost"))];
    const choice = choose({ slots, claims: [claim("x", { bid: 0 })] });
    expect(choice).toMatchObject({
      slot: { leaseName: "slot-p-c-0" },
      victim: { namespace: "t", name: "ghost" },
    });
  });

  it("avoids zones the failure touched, then the head's own zone", () => {
    const slots = [slot("a", 0, "a1"), slot("b", 0, "b1"), slot("c", 0, "c1", claimHolder("x"))];
    expect(choose({ slots, failedZones: ["b"] })).toMatchObject({
      slot: { leaseName: "slot-p-c-0" },
      zoneFallback: false,
    });
    expect(choose({ slots, failedZones: ["b", "c"] })).toMatchObject({
      slot: { leaseName: "slot-p-b-0" },
      zoneFallback: true,
    });
  });

  it("uses only slots on Ready nodes and never a slot a service holds", () => {
    const slots = [slot("b", 0, "down"), slot("c", 0, "c1", serviceHolder("other")), slot("a", 0, "gone")];
    expect(choose({ slots, nodes: [...nodes, node("down", "b", { ready: false })] })).toEqual({
      kind: "none",
      reason: "NoSlotOnReadyNode",
      message: "none of the pool's 2 available slots is on a Ready node",
    });
  });

  it("says when there is nothing to take at all", () => {
    expect(choose({ slots: [slot("b", 0, "b1", serviceHolder("db"))] })).toMatchObject({
      kind: "none",
      reason: "NoSlots",
    });
    expect(choose({ slots: [slot("b", 0, "b1")], exclude: ["slot-p-b-0"] })).toMatchObject({
      kind: "none",
      reason: "NoSlots",
    });
  });
});

const zones = ["a", "b", "c"];
const inputArb = fc
  .record({
    failedZone: fc.constantFrom(...zones),
    failedZones: fc.subarray(zones),
    nodeReady: fc.tuple(fc.boolean(), fc.boolean(), fc.boolean(), fc.boolean(), fc.boolean(), fc.boolean()),
    slots: fc.array(
      fc.record({
        node: fc.nat(5),
        holder: fc.constantFrom("free", "claim", "service"),
        bid: fc.nat(4),
        acquiredAt: fc.nat(4),
      }),
      { maxLength: 10 },
    ),
  })
  .map((spec) => {
    const allNodes = spec.nodeReady.map((ready, i) => node(`n${i}`, zones[i % 3], { ready }));
    const slots: SlotView[] = spec.slots.map((s, i) => {
      const holder =
        s.holder === "free"
          ? { kind: "free" as const }
          : s.holder === "claim"
            ? claimHolder(`c${i}`)
            : serviceHolder(`s${i}`);
      return slot(zones[s.node % 3]!, i, `n${s.node}`, holder, { acquiredAt: s.acquiredAt });
    });
    const claims = spec.slots.map((s, i) => claim(`c${i}`, { bid: s.bid, phase: "Bound" }));
    return {
      service,
      slots,
      nodes: allNodes,
      claims,
      failedZone: spec.failedZone,
      failedZones: spec.failedZones,
    };
  });

describe("chooseFailoverSlot: properties", () => {
  it("always chooses a slot on a Ready node, never one a service holds, and prefers other zones", () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const choice = chooseFailoverSlot(input);
        const ready = (s: SlotView) => input.nodes.some((n) => n.name === s.node && n.ready);
        const usable = input.slots.filter((s) => s.holder.kind !== "service" && ready(s));
        if (choice.kind === "none") {
          expect(usable).toEqual([]);
          return;
        }
        expect(ready(choice.slot)).toBe(true);
        expect(choice.slot.holder.kind).not.toBe("service");
        // The zone order: untouched zones, then zones the failure touched, then the head's own zone.
        const rank = (s: SlotView) =>
          s.zone === input.failedZone ? 2 : input.failedZones.includes(s.zone) ? 1 : 0;
        const best = Math.min(...usable.map(rank));
        expect(rank(choice.slot)).toBe(best);
        expect(choice.zoneFallback).toBe(best > 0);
        // Within that group, a zone carrying the fewest heads (slots held by services); then free
        // before leased within those zones; the victim is the chosen slot's holder.
        const heads = (zone: string) =>
          input.slots.filter((s) => s.zone === zone && s.holder.kind === "service").length;
        const ranked = usable.filter((s) => rank(s) === best);
        const fewest = Math.min(...ranked.map((s) => heads(s.zone)));
        expect(heads(choice.slot.zone)).toBe(fewest);
        const group = ranked.filter((s) => heads(s.zone) === fewest);
        if (choice.slot.holder.kind === "claim") {
          expect(group.some((s) => s.holder.kind === "free")).toBe(false);
          expect(choice.victim?.name).toBe(choice.slot.holder.name);
        } else {
          expect(choice.victim).toBeUndefined();
        }
      }),
    );
  });
});
