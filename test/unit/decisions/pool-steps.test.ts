import { describe, expect, it } from "vitest";
import {
  countSlots,
  nextPoolLedgerActions,
  occupiedSlots,
  planPlaceholders,
  planPoolGrants,
  type PlaceholderView,
} from "../../../src/decisions/pool-steps.ts";
import { claim, claimHolder, node, pool, serviceHolder, slot } from "./fixtures.ts";

const nodes = [node("a1", "a"), node("b1", "b"), node("c1", "c")];
const freeA = slot("a", 0, "a1");
const heldB = slot("b", 0, "b1", claimHolder("x"));
const reservedC = slot("c", 0, "c1", serviceHolder("kv"));

describe("occupiedSlots", () => {
  it("counts a pod of the holder or of the claim that last lost the slot, never a finished one or a stranger's", () => {
    const slots = [{ slot: freeA, revokedClaim: "t/old" }, { slot: heldB }];
    expect(
      occupiedSlots(slots, [
        { leaseName: freeA.leaseName, claim: "t/old", finished: false },
        { leaseName: heldB.leaseName, claim: "t/x", finished: true },
      ]),
    ).toEqual(new Set([freeA.leaseName]));
    expect(occupiedSlots(slots, [{ leaseName: heldB.leaseName, claim: "t/other", finished: false }])).toEqual(
      new Set(),
    );
  });
});

describe("nextPoolLedgerActions", () => {
  const base = { pool: pool(), nodes, claims: [], tenantPods: [] };
  const twoZones = pool({
    zones: [
      { name: "a", slots: 1 },
      { name: "b", slots: 1 },
    ],
  });

  it("creates the missing slots and nothing else", () => {
    const decision = nextPoolLedgerActions({ ...base, slots: [], existingClaims: new Set() });
    expect(decision.actions.map((a) => a.kind)).toEqual(["createSlot", "createSlot", "createSlot"]);
  });

  it("frees a slot whose claim is gone, but only once no pod of it is left", () => {
    const slots = [{ slot: freeA }, { slot: heldB }];
    expect(
      nextPoolLedgerActions({ ...base, pool: twoZones, slots, existingClaims: new Set() }).actions,
    ).toEqual([{ kind: "releaseOrphan", slot: heldB }]);
    const podLeft = [{ leaseName: heldB.leaseName, claim: "t/x", finished: false }];
    expect(
      nextPoolLedgerActions({
        ...base,
        pool: twoZones,
        slots,
        tenantPods: podLeft,
        existingClaims: new Set(),
      }).actions,
    ).toEqual([]);
    expect(
      nextPoolLedgerActions({ ...base, pool: twoZones, slots, existingClaims: new Set(["t/x"]) }).actions,
    ).toEqual([]);
  });

  it("revokes a leased slot the pool shrank away, with the planned grace", () => {
    const shrunk = pool({
      zones: [
        { name: "a", slots: 1 },
        { name: "b", slots: 0 },
        { name: "c", slots: 0 },
      ],
    });
    const decision = nextPoolLedgerActions({
      ...base,
      pool: shrunk,
      claims: [claim("x", { phase: "Bound" })],
      slots: [{ slot: freeA }, { slot: heldB }],
      existingClaims: new Set(["t/x"]),
    });
    expect(decision.actions).toEqual([
      { kind: "revokeSlot", slot: heldB, claim: { namespace: "t", name: "x" }, graceSeconds: 30 },
    ]);
  });
});

describe("removing a slot taken from a claim", () => {
  it("waits until no claim's usage record still counts it as held", () => {
    const shrunk = pool({ zones: [{ name: "a", slots: 0 }] });
    const observed = {
      pool: shrunk,
      nodes,
      claims: [],
      tenantPods: [],
      slots: [{ slot: freeA }],
      existingClaims: new Set<string>(),
    };
    expect(nextPoolLedgerActions({ ...observed, usageHolds: new Set([freeA.leaseName]) }).actions).toEqual(
      [],
    );
    expect(nextPoolLedgerActions({ ...observed, usageHolds: new Set() }).actions).toEqual([
      { kind: "removeSlot", slot: freeA },
    ]);
  });

  it("grants it to no one meanwhile, not even the claim it was taken from, whose pods still wait", () => {
    const shrunk = pool({ zones: [{ name: "a", slots: 0 }] });
    const observed = {
      pool: shrunk,
      nodes,
      claims: [claim("x", { slotsWanted: 1 })],
      tenantPods: [],
      slots: [{ slot: freeA, revokedClaim: "t/x" }],
      usageHolds: new Set([freeA.leaseName]),
    };
    const ledger = nextPoolLedgerActions({ ...observed, existingClaims: new Set(["t/x"]) });
    expect(ledger.actions).toEqual([]);
    expect(ledger.withdrawn).toEqual(new Set([freeA.leaseName]));
    expect(planPoolGrants(observed, ledger.withdrawn).grants).toEqual([]);
    // The same slot in a pool that keeps it is granted.
    const kept = { ...observed, pool: pool({ zones: [{ name: "a", slots: 1 }] }) };
    const keptLedger = nextPoolLedgerActions({ ...kept, existingClaims: new Set(["t/x"]) });
    expect(keptLedger.withdrawn).toEqual(new Set());
    expect(planPoolGrants(kept, keptLedger.withdrawn).grants.map((g) => g.slot)).toEqual([freeA]);
  });
});

describe("planPoolGrants", () => {
  it("does not grant a free slot while the last tenant's pod is still on it", () => {
    const slots = [{ slot: freeA, revokedClaim: "t/old" }];
    const pending = [claim("new")];
    const stillThere = [{ leaseName: freeA.leaseName, claim: "t/old", finished: false }];
    expect(
      planPoolGrants({ pool: pool(), nodes, slots, claims: pending, tenantPods: stillThere }).grants,
    ).toEqual([]);
    expect(
      planPoolGrants({ pool: pool(), nodes, slots, claims: pending, tenantPods: [] }).grants,
    ).toHaveLength(1);
  });
});

describe("planPlaceholders and countSlots", () => {
  const running = (n: string): PlaceholderView => ({
    node: n,
    phase: "Running",
    terminating: false,
    annotated: true,
  });

  it("keeps one placeholder on each free slot's node and none on a held slot", () => {
    const placeholders = new Map<string, PlaceholderView>([
      [heldB.leaseName, running("b1")],
      [reservedC.leaseName, { node: "c1", phase: "Running", terminating: true, annotated: true }],
    ]);
    expect(planPlaceholders([freeA, heldB, reservedC], placeholders)).toEqual({
      create: [freeA],
      remove: [heldB],
      annotate: [],
    });
    const misplaced = new Map([[freeA.leaseName, running("a2")]]);
    expect(planPlaceholders([freeA], misplaced)).toEqual({ create: [], remove: [freeA], annotate: [] });
    const failed = new Map([[freeA.leaseName, { ...running("a1"), phase: "Failed" }]]);
    expect(planPlaceholders([freeA], failed)).toEqual({ create: [], remove: [freeA], annotate: [] });
  });

  it("annotates a kept placeholder an earlier version made without the autoscaler annotations", () => {
    const old = new Map([[freeA.leaseName, { ...running("a1"), annotated: false }]]);
    expect(planPlaceholders([freeA], old)).toEqual({ create: [], remove: [], annotate: [freeA] });
    const leaving = new Map([[freeA.leaseName, { ...running("a1"), annotated: false, terminating: true }]]);
    expect(planPlaceholders([freeA], leaving)).toEqual({ create: [], remove: [], annotate: [] });
  });

  it("counts free only where the placeholder runs on the slot's node", () => {
    const freeA1 = slot("a", 1, "a1");
    const counts = countSlots(
      ["a", "b", "c"],
      [freeA, freeA1, heldB, reservedC],
      new Map([[freeA.leaseName, running("a1")]]),
    );
    expect(counts).toMatchObject({ slots: 4, free: 1, pending: 1, leased: 1, reserved: 1 });
    expect(counts.zones[0]).toEqual({ name: "a", slots: 2, free: 1, leased: 0, reserved: 0, pending: 1 });
  });
});
