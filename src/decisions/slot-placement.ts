// Where a pool's slots should be: which to create, which to remove when the pool shrinks, and
// which are stranded on a node that is gone or NotReady.
import { fits, freeResources, nodeAcceptsPool, slotResources, subtract } from "./node-fit.ts";
import { refKey, slotLeaseName } from "./names.ts";
import { compareNumbers, compareStrings } from "./order.ts";
import type { ClaimRef, ClaimView, NodeView, PoolView, Resources, SlotView } from "./types.ts";

export interface SlotPlacementInput {
  pool: PoolView;
  /** The pool's slot leases; leases of other pools are ignored. */
  slots: readonly SlotView[];
  nodes: readonly NodeView[];
  /** Claims, to rank leased slots by bid when the pool shrinks. */
  claims: readonly ClaimView[];
}

export interface SlotCreation {
  leaseName: string;
  zone: string;
  index: number;
  node: string;
}

interface SlotRemoval {
  slot: SlotView;
  /** Set for a leased slot: its claim is revoked with the pool's planned grace before the slot goes. */
  revoke?: { claim: ClaimRef; graceSeconds: number };
}

export const StrandedCause = { NodeGone: "NodeGone", NodeNotReady: "NodeNotReady" } as const;
export type StrandedCause = (typeof StrandedCause)[keyof typeof StrandedCause];

export interface SlotMove {
  slot: SlotView;
  cause: StrandedCause;
  toNode: string;
}

/** A stranded slot that stays where it is: leased, reserved by a service, or free with nowhere to go. */
interface StrandedSlot {
  slot: SlotView;
  cause: StrandedCause;
  held: "Leased" | "Reserved" | "NoRoom";
}

interface SlotShortfall {
  zone: string;
  missing: number;
  reason: "NoEligibleNode" | "InsufficientCapacity";
}

export interface SlotPlan {
  create: SlotCreation[];
  remove: SlotRemoval[];
  move: SlotMove[];
  stranded: StrandedSlot[];
  shortfall: SlotShortfall[];
}

/**
 * Plans a pool's slots against the nodes.
 *
 * - Each zone of the pool keeps `slots` tenant slots (free or leased). Slots reserved by a storage
 *   service come on top: the pool replaces capacity a failover took, and such slots are never removed.
 *   Zones no longer in the pool keep no tenant slots.
 * - New slots take the lowest unused indices. Each goes to a node of its zone that is Ready,
 *   schedulable, selected by the pool, tolerates its taints and has room for the slot size after what
 *   is requested and what this plan already placed; among those, the node with the fewest slots of the
 *   pool, then by name. What cannot be placed is reported as a shortfall.
 * - Shrinking removes free slots first (stranded ones, then the highest indices), then leased slots by
 *   lowest bid, youngest lease, highest index; a leased slot carries the claim to revoke with the
 *   planned grace.
 * - A slot on a node that is gone or NotReady is stranded: a free one moves to a node chosen as for a
 *   new slot; leased, reserved or unmovable ones are reported.
 *
 * Deterministic: the output depends only on the input's content, not its order.
 */
export function planSlotPlacement(input: SlotPlacementInput): SlotPlan {
  const { pool } = input;
  const plan: SlotPlan = { create: [], remove: [], move: [], stranded: [], shortfall: [] };
  const nodes = new Map(input.nodes.map((node) => [node.name, node]));
  const bids = new Map(input.claims.filter((c) => c.pool === pool.name).map((c) => [refKey(c), c.bid]));
  const desired = new Map(pool.zones.map((zone) => [zone.name, Math.max(0, zone.slots)]));
  const slots = input.slots.filter((slot) => slot.pool === pool.name);
  const zones = [...new Set([...desired.keys(), ...slots.map((slot) => slot.zone)])].sort(compareStrings);
  const room = new Map<string, Resources>();
  for (const node of nodes.values()) room.set(node.name, freeResources(node));
  const need = slotResources(pool);

  const strandedCause = (slot: SlotView): StrandedCause | undefined => {
    const node = nodes.get(slot.node);
    if (!node) return StrandedCause.NodeGone;
    return node.ready ? undefined : StrandedCause.NodeNotReady;
  };

  for (const zone of zones) {
    const zoneSlots = slots.filter((slot) => slot.zone === zone).sort((a, b) => a.index - b.index);
    const tenantSlots = zoneSlots.filter((slot) => slot.holder.kind !== "service");
    const want = desired.get(zone) ?? 0;

    const removed = chooseRemovals(tenantSlots, tenantSlots.length - want, bids, strandedCause);
    for (const slot of removed) {
      const removal: SlotRemoval = { slot };
      if (slot.holder.kind === "claim") {
        removal.revoke = {
          claim: { namespace: slot.holder.namespace, name: slot.holder.name },
          graceSeconds: pool.revocation.plannedGraceSeconds,
        };
      }
      plan.remove.push(removal);
    }
    const removedNames = new Set(removed.map((slot) => slot.leaseName));
    const kept = zoneSlots.filter((slot) => !removedNames.has(slot.leaseName));

    // Spread by the pool's slots per node, counting only slots that stay on healthy nodes.
    const slotsOnNode = new Map<string, number>();
    for (const slot of kept) {
      if (strandedCause(slot) === undefined)
        slotsOnNode.set(slot.node, (slotsOnNode.get(slot.node) ?? 0) + 1);
    }
    const candidates = [...nodes.values()].filter(
      (node) => node.zone === zone && nodeAcceptsPool(node, pool),
    );
    const placeOne = (): string | undefined => {
      let best: NodeView | undefined;
      for (const node of candidates) {
        if (!fits(need, room.get(node.name)!)) continue;
        if (!best || isBetterNode(node, best, slotsOnNode)) best = node;
      }
      if (!best) return undefined;
      room.set(best.name, subtract(room.get(best.name)!, need));
      slotsOnNode.set(best.name, (slotsOnNode.get(best.name) ?? 0) + 1);
      return best.name;
    };

    for (const slot of kept) {
      const cause = strandedCause(slot);
      if (cause === undefined) continue;
      if (slot.holder.kind !== "free") {
        plan.stranded.push({ slot, cause, held: slot.holder.kind === "claim" ? "Leased" : "Reserved" });
        continue;
      }
      const toNode = placeOne();
      if (toNode) plan.move.push({ slot, cause, toNode });
      else plan.stranded.push({ slot, cause, held: "NoRoom" });
    }

    const missing = want - tenantSlots.length;
    if (missing > 0) {
      const usedIndices = new Set(zoneSlots.map((slot) => slot.index));
      let index = 0;
      let placed = 0;
      while (placed < missing) {
        while (usedIndices.has(index)) index++;
        const node = placeOne();
        if (!node) break;
        usedIndices.add(index);
        plan.create.push({ leaseName: slotLeaseName(pool.name, zone, index), zone, index, node });
        placed++;
      }
      if (placed < missing) {
        plan.shortfall.push({
          zone,
          missing: missing - placed,
          reason: candidates.length === 0 ? "NoEligibleNode" : "InsufficientCapacity",
        });
      }
    }
  }
  return plan;
}

function isBetterNode(node: NodeView, best: NodeView, slotsOnNode: Map<string, number>): boolean {
  const difference = (slotsOnNode.get(node.name) ?? 0) - (slotsOnNode.get(best.name) ?? 0);
  return difference < 0 || (difference === 0 && node.name < best.name);
}

/** The `count` tenant slots to remove: free ones first, then leased ones by lowest bid, youngest lease. */
function chooseRemovals(
  tenantSlots: readonly SlotView[],
  count: number,
  bids: Map<string, number>,
  strandedCause: (slot: SlotView) => StrandedCause | undefined,
): SlotView[] {
  if (count <= 0) return [];
  const free = tenantSlots
    .filter((slot) => slot.holder.kind === "free")
    .sort((a, b) => {
      const stranded = Number(strandedCause(b) !== undefined) - Number(strandedCause(a) !== undefined);
      return stranded !== 0 ? stranded : b.index - a.index;
    });
  // A lease naming a claim that no longer exists ranks below every bid: nobody loses anything.
  const bidOf = (slot: SlotView): number =>
    slot.holder.kind === "claim" ? (bids.get(refKey(slot.holder)) ?? -Infinity) : -Infinity;
  const leased = tenantSlots
    .filter((slot) => slot.holder.kind === "claim")
    .sort(
      (a, b) =>
        compareNumbers(bidOf(a), bidOf(b)) ||
        (b.acquiredAt ?? 0) - (a.acquiredAt ?? 0) ||
        b.index - a.index ||
        compareStrings(a.leaseName, b.leaseName),
    );
  return [...free, ...leased].slice(0, count);
}
