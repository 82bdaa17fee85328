import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { planGrants } from "../../../src/decisions/grants.ts";
import type { ClaimView, SlotView } from "../../../src/decisions/types.ts";
import { claim, claimHolder, node, pool, serviceHolder, slot } from "./fixtures.ts";

const nodes = [node("a1", "a"), node("b1", "b"), node("c1", "c")];
const granted = (plan: ReturnType<typeof planGrants>) =>
  plan.grants.map((g) => [g.claim.name, g.slot.leaseName]);

describe("planGrants", () => {
  it("serves the highest bid first, then the oldest claim, then by name", () => {
    const plan = planGrants({
      pool: pool(),
      slots: [slot("a", 0, "a1"), slot("a", 1, "a1")],
      nodes,
      claims: [
        claim("late", { bid: 5, createdAt: 9 }),
        claim("b-early", { bid: 5, createdAt: 1 }),
        claim("a-early", { bid: 5, createdAt: 1 }),
        claim("rich", { bid: 50, createdAt: 99 }),
      ],
    });
    expect(granted(plan)).toEqual([
      ["rich", "slot-p-a-0"],
      ["a-early", "slot-p-a-1"],
    ]);
    expect(plan.waiting.map((w) => [w.claim.name, w.reason])).toEqual([
      ["b-early", "NoFreeSlot"],
      ["late", "NoFreeSlot"],
    ]);
  });

  it("gives a claim with a zone only a slot in that zone, without blocking the claims behind it", () => {
    const plan = planGrants({
      pool: pool(),
      slots: [slot("a", 0, "a1")],
      nodes,
      claims: [claim("wants-b", { bid: 9, zone: "b" }), claim("any", { bid: 1 })],
    });
    expect(granted(plan)).toEqual([["any", "slot-p-a-0"]]);
    expect(plan.waiting).toEqual([
      { claim: { namespace: "t", name: "wants-b" }, reason: "NoFreeSlotInZone" },
    ]);
  });

  it("keeps hot spares unleased, spread across zones", () => {
    const plan = planGrants({
      pool: pool({ hotSpares: 2 }),
      slots: [slot("a", 0, "a1"), slot("a", 1, "a1"), slot("a", 2, "a1"), slot("b", 0, "b1")],
      nodes,
      claims: [claim("x", { createdAt: 1 }), claim("y", { createdAt: 2 }), claim("z", { createdAt: 3 })],
    });
    expect(granted(plan)).toEqual([
      ["x", "slot-p-a-0"],
      ["y", "slot-p-a-1"],
    ]);
    expect(plan.waiting).toEqual([{ claim: { namespace: "t", name: "z" }, reason: "HotSparesReserved" }]);
  });

  it("grants only free slots on Ready nodes in the pool's zones", () => {
    const plan = planGrants({
      pool: pool({ zones: [{ name: "a", slots: 3 }] }),
      slots: [
        slot("a", 0, "down"),
        slot("a", 1, "a1", serviceHolder("db")),
        slot("a", 2, "a1", claimHolder("other")),
        slot("b", 0, "b1"),
        { ...slot("a", 3, "a1"), pool: "other-pool" },
      ],
      nodes: [...nodes, node("down", "a", { ready: false })],
      claims: [claim("x")],
    });
    expect(plan.grants).toEqual([]);
    expect(plan.waiting).toEqual([{ claim: { namespace: "t", name: "x" }, reason: "NoFreeSlot" }]);
  });

  it("adopts a lease that already names a Pending claim instead of granting a second slot", () => {
    const plan = planGrants({
      pool: pool({ hotSpares: 1 }),
      slots: [slot("a", 0, "a1", claimHolder("x")), slot("b", 0, "b1")],
      nodes,
      claims: [claim("x")],
    });
    expect(plan.grants).toEqual([
      {
        claim: { namespace: "t", name: "x" },
        slot: expect.objectContaining({ leaseName: "slot-p-a-0" }),
        adopted: true,
      },
    ]);
  });

  it("ignores refused, non-Pending and other pools' claims", () => {
    const plan = planGrants({
      pool: pool(),
      slots: [slot("a", 0, "a1")],
      nodes,
      claims: [
        claim("refused", { refusal: { reason: "NamespaceNotAllowed", message: "" } }),
        claim("bound", { phase: "Bound" }),
        claim("elsewhere", { pool: "q" }),
      ],
    });
    expect(plan).toEqual({ grants: [], waiting: [] });
  });
});

const zones = ["a", "b", "c"];
const inputArb = fc
  .record({
    hotSpares: fc.nat(4),
    slots: fc.array(
      fc.record({
        zone: fc.constantFrom(...zones),
        holder: fc.constantFrom("free", "free", "claim", "service"),
        ready: fc.nat(5),
      }),
      { maxLength: 10 },
    ),
    claims: fc.array(
      fc.record({
        bid: fc.nat(3),
        createdAt: fc.nat(3),
        zone: fc.option(fc.constantFrom(...zones), { nil: undefined }),
        phase: fc.constantFrom("Pending", "Pending", "Pending", "Bound"),
      }),
      { maxLength: 10 },
    ),
  })
  .map((spec) => {
    const counters = new Map<string, number>();
    const slots: SlotView[] = spec.slots.map((s, i) => {
      const index = counters.get(s.zone) ?? 0;
      counters.set(s.zone, index + 1);
      const holder =
        s.holder === "free"
          ? { kind: "free" as const }
          : s.holder === "claim"
            ? claimHolder(`c${i}`)
            : serviceHolder("db");
      return slot(s.zone, index, s.ready === 0 ? `down-${s.zone}` : `${s.zone}1`, holder);
    });
    const claims: ClaimView[] = spec.claims.map((c, i) =>
      claim(`c${i}`, {
        bid: c.bid,
        createdAt: c.createdAt,
        phase: c.phase as ClaimView["phase"],
        ...(c.zone ? { zone: c.zone } : {}),
      }),
    );
    const allNodes = [...nodes, ...zones.map((z) => node(`down-${z}`, z, { ready: false }))];
    return { pool: pool({ hotSpares: spec.hotSpares }), slots, claims, nodes: allNodes };
  });

const rank = (a: ClaimView, b: ClaimView) =>
  b.bid - a.bid || a.createdAt - b.createdAt || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

describe("planGrants: properties", () => {
  it("never gives one slot to two claims nor two slots to one claim, and only grantable slots", () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const plan = planGrants(input);
        const slots = plan.grants.map((g) => g.slot.leaseName);
        const claims = plan.grants.map((g) => g.claim.name);
        expect(new Set(slots).size).toBe(slots.length);
        expect(new Set(claims).size).toBe(claims.length);
        for (const g of plan.grants) {
          const c = input.claims.find((x) => x.name === g.claim.name)!;
          expect(c.phase).toBe("Pending");
          if (g.adopted) {
            expect(g.slot.holder).toEqual(claimHolder(c.name));
            continue;
          }
          expect(g.slot.holder.kind).toBe("free");
          expect(g.slot.node.startsWith("down")).toBe(false);
          if (c.zone) expect(g.slot.zone).toBe(c.zone);
        }
      }),
    );
  });

  it("keeps hot spares and respects bid order", () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const plan = planGrants(input);
        const grantable = input.slots.filter(
          (s) => s.holder.kind === "free" && !s.node.startsWith("down"),
        ).length;
        const taken = plan.grants.filter((g) => !g.adopted).length;
        expect(grantable - taken).toBeGreaterThanOrEqual(Math.min(input.pool.hotSpares, grantable));
        // A claim that waited for anything but its own zone never sees a lower-ranked claim served.
        for (const w of plan.waiting.filter((x) => x.reason !== "NoFreeSlotInZone")) {
          const waiter = input.claims.find((c) => c.name === w.claim.name)!;
          for (const g of plan.grants.filter((x) => !x.adopted)) {
            const served = input.claims.find((c) => c.name === g.claim.name)!;
            expect(rank(served, waiter)).toBeLessThan(0);
          }
        }
      }),
    );
  });

  it("is deterministic: the order of its input does not matter", () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const reversed = { ...input, slots: [...input.slots].reverse(), claims: [...input.claims].reverse() };
        expect(planGrants(reversed)).toEqual(planGrants(input));
      }),
    );
  });
});

describe("planGrants for workload claims", () => {
  const slots = [slot("a", 0, "a1"), slot("a", 1, "a1"), slot("b", 0, "b1")];

  it("gives a workload claim as many slots as it wants, each from the zone with the most free slots, and the rest to the next", () => {
    const plan = planGrants({
      pool: pool(),
      slots,
      nodes,
      claims: [claim("many", { bid: 9, phase: "Bound", slotsWanted: 2 }), claim("one", { bid: 1 })],
    });
    expect(granted(plan)).toEqual([
      ["many", "slot-p-a-0"],
      ["many", "slot-p-a-1"],
      ["one", "slot-p-b-0"],
    ]);
  });

  it("gives a gang all its slots or none, leaving them for the claims behind", () => {
    const plan = planGrants({
      pool: pool(),
      slots,
      nodes,
      claims: [claim("gang", { bid: 9, slotsWanted: 4, gang: true }), claim("one", { bid: 1 })],
    });
    expect(granted(plan)).toEqual([["one", "slot-p-a-0"]]);
    expect(plan.waiting).toEqual([{ claim: { namespace: "t", name: "gang" }, reason: "NoFreeSlot" }]);
    const fits = planGrants({
      pool: pool(),
      slots,
      nodes,
      claims: [claim("gang", { slotsWanted: 3, gang: true })],
    });
    expect(fits.grants).toHaveLength(3);
  });

  it("gives an Expired workload claim nothing", () => {
    const plan = planGrants({
      pool: pool(),
      slots,
      nodes,
      claims: [claim("late", { phase: "Expired", slotsWanted: 2 })],
    });
    expect(plan.grants).toEqual([]);
  });
});
