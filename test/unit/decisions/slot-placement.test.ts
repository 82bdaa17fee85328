import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { planSlotPlacement } from "../../../src/decisions/slot-placement.ts";
import type { NodeView, SlotView } from "../../../src/decisions/types.ts";
import { FREE, GiB, claim, claimHolder, node, pool, serviceHolder, slot } from "./fixtures.ts";

describe("planSlotPlacement: creating", () => {
  it("creates each zone's slots on its nodes, spreading them, with the lowest indices", () => {
    const plan = planSlotPlacement({
      pool: pool({ zones: [{ name: "a", slots: 3 }] }),
      slots: [],
      nodes: [node("a2", "a"), node("a1", "a"), node("b1", "b")],
      claims: [],
    });
    expect(plan.create).toEqual([
      { leaseName: "slot-p-a-0", zone: "a", index: 0, node: "a1" },
      { leaseName: "slot-p-a-1", zone: "a", index: 1, node: "a2" },
      { leaseName: "slot-p-a-2", zone: "a", index: 2, node: "a1" },
    ]);
    expect(plan.shortfall).toEqual([]);
  });

  it("puts a new slot on the node with the fewest of the pool's slots and fills index gaps", () => {
    const plan = planSlotPlacement({
      pool: pool({ zones: [{ name: "a", slots: 3 }] }),
      slots: [slot("a", 0, "a1"), slot("a", 2, "a1")],
      nodes: [node("a1", "a"), node("a2", "a")],
      claims: [],
    });
    expect(plan.create).toEqual([{ leaseName: "slot-p-a-1", zone: "a", index: 1, node: "a2" }]);
  });

  it("skips nodes that are NotReady, cordoned, not selected, tainted or full", () => {
    const p = pool({
      zones: [{ name: "a", slots: 1 }],
      nodeSelector: { spare: "yes" },
      tolerations: [{ key: "spot", operator: "Exists" }],
    });
    const labels = { spare: "yes" };
    const nodes: NodeView[] = [
      node("a1", "a", { labels, ready: false }),
      node("a2", "a", { labels, unschedulable: true }),
      node("a3", "a", { labels: {} }),
      node("a4", "a", { labels, taints: [{ key: "gpu", effect: "NoSchedule" }] }),
      node("a5", "a", { labels, requested: { cpuMillis: 7500, memoryBytes: 0, pods: 0 } }),
      node("a6", "a", { labels, requested: { cpuMillis: 0, memoryBytes: 31 * GiB, pods: 0 } }),
      node("a7", "a", { labels, requested: { cpuMillis: 0, memoryBytes: 0, pods: 110 } }),
      node("a8", "a", { labels, taints: [{ key: "spot", effect: "NoExecute" }] }),
    ];
    const plan = planSlotPlacement({ pool: p, slots: [], nodes, claims: [] });
    expect(plan.create.map((c) => c.node)).toEqual(["a8"]);
  });

  it("counts what it already placed against a node's room and reports the rest as a shortfall", () => {
    const plan = planSlotPlacement({
      pool: pool({ zones: [{ name: "a", slots: 3 }] }),
      slots: [],
      nodes: [node("a1", "a", { allocatable: { cpuMillis: 2500, memoryBytes: 32 * GiB, pods: 110 } })],
      claims: [],
    });
    expect(plan.create).toHaveLength(2);
    expect(plan.shortfall).toEqual([{ zone: "a", missing: 1, reason: "InsufficientCapacity" }]);
  });

  it("reports a zone without any eligible node", () => {
    const plan = planSlotPlacement({
      pool: pool({ zones: [{ name: "z", slots: 2 }] }),
      slots: [],
      nodes: [node("a1", "a")],
      claims: [],
    });
    expect(plan.shortfall).toEqual([{ zone: "z", missing: 2, reason: "NoEligibleNode" }]);
  });

  it("replaces a slot a storage service took: reserved slots come on top of the zone's count", () => {
    const plan = planSlotPlacement({
      pool: pool({ zones: [{ name: "a", slots: 2 }] }),
      slots: [slot("a", 0, "a1", serviceHolder("db")), slot("a", 1, "a1")],
      nodes: [node("a1", "a"), node("a2", "a")],
      claims: [],
    });
    expect(plan.create).toEqual([{ leaseName: "slot-p-a-2", zone: "a", index: 2, node: "a2" }]);
    expect(plan.remove).toEqual([]);
  });
});

describe("planSlotPlacement: shrinking", () => {
  const nodes = [node("a1", "a"), node("a2", "a")];

  it("removes free slots first, stranded ones before the highest index", () => {
    const plan = planSlotPlacement({
      pool: pool({ zones: [{ name: "a", slots: 1 }] }),
      slots: [
        slot("a", 0, "a1"),
        slot("a", 1, "gone"),
        slot("a", 2, "a2"),
        slot("a", 3, "a1", claimHolder("x")),
      ],
      nodes,
      claims: [claim("x")],
    });
    expect(plan.remove.map((r) => r.slot.leaseName)).toEqual(["slot-p-a-1", "slot-p-a-2", "slot-p-a-0"]);
    expect(plan.remove.every((r) => r.revoke === undefined)).toBe(true);
  });

  it("then leased slots by lowest bid, then youngest lease, with the planned grace", () => {
    const plan = planSlotPlacement({
      pool: pool({ zones: [{ name: "a", slots: 1 }] }),
      slots: [
        slot("a", 0, "a1", claimHolder("rich"), { acquiredAt: 1 }),
        slot("a", 1, "a1", claimHolder("old"), { acquiredAt: 1 }),
        slot("a", 2, "a2", claimHolder("young"), { acquiredAt: 5 }),
      ],
      nodes,
      claims: [claim("rich", { bid: 100 }), claim("old", { bid: 5 }), claim("young", { bid: 5 })],
    });
    expect(plan.remove).toEqual([
      {
        slot: expect.objectContaining({ leaseName: "slot-p-a-2" }),
        revoke: { claim: { namespace: "t", name: "young" }, graceSeconds: 30 },
      },
      {
        slot: expect.objectContaining({ leaseName: "slot-p-a-1" }),
        revoke: { claim: { namespace: "t", name: "old" }, graceSeconds: 30 },
      },
    ]);
  });

  it("never removes a slot reserved by a service, and empties zones the pool dropped", () => {
    const plan = planSlotPlacement({
      pool: pool({ zones: [{ name: "a", slots: 0 }] }),
      slots: [
        slot("a", 0, "a1", serviceHolder("db")),
        slot("a", 1, "a1"),
        slot("x", 0, "x1", claimHolder("y")),
      ],
      nodes: [...nodes, node("x1", "x")],
      claims: [],
    });
    expect(plan.remove.map((r) => r.slot.leaseName)).toEqual(["slot-p-a-1", "slot-p-x-0"]);
    expect(plan.remove[1]!.revoke?.claim.name).toBe("y");
  });
});

describe("planSlotPlacement: stranded slots", () => {
  it("moves free slots off gone or NotReady nodes and reports leased and reserved ones", () => {
    const plan = planSlotPlacement({
      pool: pool({ zones: [{ name: "a", slots: 3 }] }),
      slots: [
        slot("a", 0, "gone"),
        slot("a", 1, "sick", claimHolder("x")),
        slot("a", 2, "sick"),
        slot("a", 3, "sick", serviceHolder("db")),
      ],
      nodes: [node("sick", "a", { ready: false }), node("a1", "a")],
      claims: [claim("x")],
    });
    expect(plan.move.map((m) => [m.slot.leaseName, m.cause, m.toNode])).toEqual([
      ["slot-p-a-0", "NodeGone", "a1"],
      ["slot-p-a-2", "NodeNotReady", "a1"],
    ]);
    expect(plan.stranded.map((s) => [s.slot.leaseName, s.cause, s.held])).toEqual([
      ["slot-p-a-1", "NodeNotReady", "Leased"],
      ["slot-p-a-3", "NodeNotReady", "Reserved"],
    ]);
    expect(plan.create).toEqual([]);
  });

  it("reports a free stranded slot with nowhere to go", () => {
    const plan = planSlotPlacement({
      pool: pool({ zones: [{ name: "a", slots: 1 }] }),
      slots: [slot("a", 0, "gone")],
      nodes: [],
      claims: [],
    });
    expect(plan.stranded).toEqual([
      { slot: expect.objectContaining({ index: 0 }), cause: "NodeGone", held: "NoRoom" },
    ]);
  });
});

// Property-based: random clusters and pools.
const zones = ["a", "b", "c"];
const nodeArb = fc.record({
  zone: fc.constantFrom(...zones),
  ready: fc.nat(4).map((n) => n > 0),
  unschedulable: fc.boolean(),
  cpu: fc.integer({ min: 0, max: 6000 }),
  usedCpu: fc.integer({ min: 0, max: 6000 }),
  memGiB: fc.integer({ min: 0, max: 16 }),
  pods: fc.integer({ min: 0, max: 5 }),
});
const clusterArb = fc
  .record({
    nodes: fc.array(nodeArb, { maxLength: 8 }),
    desired: fc.tuple(fc.nat(6), fc.nat(6), fc.nat(6)),
    slots: fc.array(
      fc.record({
        zone: fc.constantFrom(...zones, "gone-zone"),
        node: fc.nat(10),
        holder: fc.constantFrom("free", "claim", "service"),
        bid: fc.integer({ min: 0, max: 5 }),
      }),
      { maxLength: 12 },
    ),
  })
  .map(({ nodes: specs, desired, slots: slotSpecs }) => {
    const nodes = specs.map((s, i) =>
      node(`n${i}`, s.zone, {
        ready: s.ready,
        unschedulable: s.unschedulable,
        allocatable: { cpuMillis: s.cpu, memoryBytes: s.memGiB * GiB, pods: s.pods },
        requested: { cpuMillis: Math.min(s.usedCpu, s.cpu), memoryBytes: 0, pods: 0 },
      }),
    );
    const counters = new Map<string, number>();
    const slots: SlotView[] = slotSpecs.map((s, i) => {
      const index = counters.get(s.zone) ?? 0;
      counters.set(s.zone, index + 1);
      const holder =
        s.holder === "free" ? FREE : s.holder === "claim" ? claimHolder(`c${i}`) : serviceHolder(`s${i}`);
      return slot(s.zone, index, `n${s.node}`, holder, { acquiredAt: i });
    });
    const claims = slotSpecs.map((s, i) => claim(`c${i}`, { bid: s.bid, phase: "Bound" }));
    const p = pool({ zones: zones.map((name, i) => ({ name, slots: desired[i]! })) });
    return { pool: p, nodes, slots, claims };
  });

describe("planSlotPlacement: properties", () => {
  it("never overfills a node and never places on a node that cannot take the slot", () => {
    fc.assert(
      fc.property(clusterArb, (input) => {
        const plan = planSlotPlacement(input);
        const placed = new Map<string, number>();
        for (const target of [...plan.create.map((c) => c.node), ...plan.move.map((m) => m.toNode)]) {
          placed.set(target, (placed.get(target) ?? 0) + 1);
        }
        for (const [name, count] of placed) {
          const n = input.nodes.find((x) => x.name === name)!;
          expect(n.ready && !n.unschedulable).toBe(true);
          expect(n.requested.cpuMillis + count * 1000).toBeLessThanOrEqual(n.allocatable.cpuMillis);
          expect(n.requested.memoryBytes + count * 2 * GiB).toBeLessThanOrEqual(n.allocatable.memoryBytes);
          expect(n.requested.pods + count).toBeLessThanOrEqual(n.allocatable.pods);
        }
        for (const c of plan.create) expect(input.nodes.find((x) => x.name === c.node)!.zone).toBe(c.zone);
        for (const m of plan.move)
          expect(input.nodes.find((x) => x.name === m.toNode)!.zone).toBe(m.slot.zone);
      }),
    );
  });

  it("reaches each zone's count, or says why not, and never removes a reserved slot", () => {
    fc.assert(
      fc.property(clusterArb, (input) => {
        const plan = planSlotPlacement(input);
        expect(plan.remove.some((r) => r.slot.holder.kind === "service")).toBe(false);
        for (const zone of [...zones, "gone-zone"]) {
          const want = input.pool.zones.find((z) => z.name === zone)?.slots ?? 0;
          const tenant = input.slots.filter((s) => s.zone === zone && s.holder.kind !== "service").length;
          const removed = plan.remove.filter((r) => r.slot.zone === zone).length;
          const created = plan.create.filter((c) => c.zone === zone).length;
          const missing = plan.shortfall.find((s) => s.zone === zone)?.missing ?? 0;
          expect(removed).toBe(Math.max(0, tenant - want));
          expect(tenant - removed + created + missing).toBe(want);
          const indices = [
            ...input.slots.filter((s) => s.zone === zone).map((s) => s.index),
            ...plan.create.filter((c) => c.zone === zone).map((c) => c.index),
          ];
          expect(new Set(indices).size).toBe(indices.length);
        }
        // Removal order: no leased slot goes while a free one of its zone stays.
        for (const r of plan.remove.filter((x) => x.slot.holder.kind === "claim")) {
          const keptFree = input.slots.filter(
            (s) =>
              s.zone === r.slot.zone &&
              s.holder.kind === "free" &&
              !plan.remove.some((x) => x.slot.leaseName === s.leaseName),
          );
          expect(keptFree).toEqual([]);
        }
      }),
    );
  });

  it("is deterministic: the order of its input does not matter", () => {
    fc.assert(
      fc.property(clusterArb, fc.nat(), (input, seed) => {
        const shuffle = <T>(xs: readonly T[]): T[] => {
          const out = [...xs];
          let s = seed;
          for (let i = out.length - 1; i > 0; i--) {
            s = (s * 1103515245 + 12345) % 2 ** 31;
            const j = s % (i + 1);
            [out[i], out[j]] = [out[j]!, out[i]!];
          }
          return out;
        };
        const shuffled = {
          ...input,
          nodes: shuffle(input.nodes),
          slots: shuffle(input.slots),
          claims: shuffle(input.claims),
        };
        expect(planSlotPlacement(shuffled)).toEqual(planSlotPlacement(input));
      }),
    );
  });
});
