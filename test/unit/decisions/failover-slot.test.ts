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

  it("takes only slots on nodes that fit the head's nodeSelector and tolerations, whatever else it prefers", () => {
    const ssd = { "topology.kubernetes.io/zone": "c", disk: "ssd" };
    const fitNodes = [
      node("a1", "a"),
      node("b1", "b", { taints: [{ key: "dedicated", value: "batch", effect: "NoSchedule" }] }),
      node("c1", "c", { labels: ssd }),
      node("c2", "c", { labels: ssd, taints: [{ key: "drain", effect: "NoExecute" }] }),
    ];
    // Free slots on b1 and c2 would win on every other ground (free, zone b first, fewer heads).
    const slots = [slot("b", 0, "b1"), slot("c", 0, "c2"), slot("c", 1, "c1", claimHolder("x"))];
    const placement = { nodeSelector: { disk: "ssd" }, tolerations: [] };
    expect(choose({ slots, nodes: fitNodes, claims: [claim("x")], placement })).toMatchObject({
      kind: "slot",
      slot: { leaseName: "slot-p-c-1", node: "c1" },
      victim: { name: "x" },
    });
    // Without a rule, nothing is filtered (the pool's own choice of nodes stands).
    expect(choose({ slots, nodes: fitNodes, claims: [claim("x")] })).toMatchObject({
      slot: { leaseName: "slot-p-b-0" },
    });
    // A toleration opens the tainted node again.
    const tolerant = {
      nodeSelector: {},
      tolerations: [{ key: "dedicated", operator: "Exists" as const }],
    };
    expect(choose({ slots, nodes: fitNodes, claims: [claim("x")], placement: tolerant })).toMatchObject({
      slot: { leaseName: "slot-p-b-0" },
    });
  });

  it("says which nodes do not fit when no slot on a Ready node does, and takes none", () => {
    const slots = [slot("b", 0, "b1"), slot("c", 0, "c1", claimHolder("x")), slot("c", 1, "c1")];
    const fitNodes = [
      node("a1", "a"),
      node("b1", "b"),
      node("c1", "c", { taints: [{ key: "t", effect: "NoSchedule" }] }),
    ];
    expect(
      choose({ slots, nodes: fitNodes, placement: { nodeSelector: {}, tolerations: [] }, avoidNodes: ["x"] }),
    ).toMatchObject({ kind: "slot", slot: { node: "b1" } });
    expect(
      choose({ slots, nodes: fitNodes, placement: { nodeSelector: { disk: "ssd" }, tolerations: [] } }),
    ).toEqual({
      kind: "none",
      reason: "NoSlotFitsPlacement",
      message:
        "none of the pool's 3 available slots on Ready nodes fits the head's nodeSelector and tolerations: node b1 lacks label disk=ssd; node c1 lacks label disk=ssd",
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
    nodeTainted: fc.tuple(fc.boolean(), fc.boolean(), fc.boolean(), fc.boolean(), fc.boolean(), fc.boolean()),
    tolerated: fc.boolean(),
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
    const allNodes = spec.nodeReady.map((ready, i) =>
      node(`n${i}`, zones[i % 3], {
        ready,
        taints: spec.nodeTainted[i] ? [{ key: "dedicated", value: "db", effect: "NoSchedule" }] : [],
      }),
    );
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
      placement: {
        nodeSelector: {},
        tolerations: spec.tolerated ? [{ key: "dedicated", operator: "Exists" as const }] : [],
      },
    };
  });

describe("chooseFailoverSlot: properties", () => {
  it("always chooses a slot on a Ready node that fits the head, never one a service holds, and prefers other zones", () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const choice = chooseFailoverSlot(input);
        const ready = (s: SlotView) =>
          input.nodes.some(
            (n) =>
              n.name === s.node &&
              n.ready &&
              (n.taints.length === 0 || input.placement.tolerations.length > 0),
          );
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
