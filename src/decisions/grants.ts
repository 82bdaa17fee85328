// Which Pending claims get which free slots.
import { refKey } from "./names.ts";
import { compareStrings } from "./order.ts";
import type { ClaimRef, ClaimView, NodeView, PoolView, SlotView } from "./types.ts";

export interface GrantInput {
  pool: PoolView;
  /** The pool's slot leases; leases of other pools are ignored. */
  slots: readonly SlotView[];
  claims: readonly ClaimView[];
  nodes: readonly NodeView[];
}

interface Grant {
  claim: ClaimRef;
  slot: SlotView;
  /**
   * The lease already names this claim (the grant's compare-and-swap happened, the claim's status
   * write did not): finish binding without another swap.
   */
  adopted: boolean;
}

export const GrantWaitReason = {
  NoFreeSlot: "NoFreeSlot",
  NoFreeSlotInZone: "NoFreeSlotInZone",
  HotSparesReserved: "HotSparesReserved",
} as const;
export type GrantWaitReason = (typeof GrantWaitReason)[keyof typeof GrantWaitReason];

export interface GrantPlan {
  grants: Grant[];
  waiting: { claim: ClaimRef; reason: GrantWaitReason }[];
}

/**
 * Assigns free slots to the pool's admitted Pending claims.
 *
 * - Order: highest bid first, then oldest claim (createdAt), then namespace/name.
 * - A grantable slot is free, on a Ready node, in a zone of the pool.
 * - `hotSpares` grantable slots stay unleased. Claims without a zone take a slot from the zone with
 *   the most free slots left (then by zone name), which keeps the remaining spares spread across
 *   zones; a claim with a zone only takes a slot in that zone. Within a zone, the lowest index.
 * - A claim that cannot be served does not block lower claims that can (for instance in another zone).
 * - A Pending inline claim that a lease already names is adopted, not given a second slot.
 * - A workload claim gets up to its slotsWanted slots, each placed as above; a gang claim gets all
 *   of them in this pass or none (what it would have taken stays for the claims behind).
 *
 * No slot is given to two claims, an inline claim gets one slot. Deterministic.
 */
export function planGrants(input: GrantInput): GrantPlan {
  const { pool } = input;
  const plan: GrantPlan = { grants: [], waiting: [] };
  const readyNodes = new Set(input.nodes.filter((node) => node.ready).map((node) => node.name));
  const poolZones = new Set(pool.zones.map((zone) => zone.name));
  const slots = input.slots.filter((slot) => slot.pool === pool.name).sort(bySlotOrder);

  const heldBy = new Map<string, SlotView>();
  for (const slot of slots) {
    if (slot.holder.kind === "claim" && !heldBy.has(refKey(slot.holder)))
      heldBy.set(refKey(slot.holder), slot);
  }

  const freeByZone = new Map<string, SlotView[]>();
  let freeCount = 0;
  for (const slot of slots) {
    if (slot.holder.kind !== "free" || !readyNodes.has(slot.node) || !poolZones.has(slot.zone)) continue;
    const list = freeByZone.get(slot.zone) ?? [];
    list.push(slot);
    freeByZone.set(slot.zone, list);
    freeCount++;
  }
  let budget = Math.max(0, freeCount - Math.max(0, pool.hotSpares));

  const claims = input.claims
    .filter((claim) => claim.pool === pool.name && claim.refusal === undefined && slotsWanted(claim) > 0)
    .sort(
      (a, b) =>
        b.bid - a.bid ||
        a.createdAt - b.createdAt ||
        compareStrings(a.namespace, b.namespace) ||
        compareStrings(a.name, b.name),
    );

  for (const claim of claims) {
    const ref = { namespace: claim.namespace, name: claim.name };
    const held = claim.slotsWanted === undefined ? heldBy.get(refKey(claim)) : undefined;
    if (held) {
      plan.grants.push({ claim: ref, slot: held, adopted: true });
      continue;
    }
    const picked: SlotView[] = [];
    let waitReason: GrantWaitReason | undefined;
    for (let i = 0; i < slotsWanted(claim); i++) {
      const zone = claim.zone !== undefined ? claim.zone : zoneWithMostFree(freeByZone);
      const candidates = zone !== undefined ? (freeByZone.get(zone) ?? []) : [];
      if (candidates.length === 0) {
        waitReason = claim.zone !== undefined ? GrantWaitReason.NoFreeSlotInZone : GrantWaitReason.NoFreeSlot;
        break;
      }
      if (budget === 0) {
        waitReason = GrantWaitReason.HotSparesReserved;
        break;
      }
      picked.push(candidates.shift()!);
      budget--;
    }
    if (waitReason !== undefined && claim.gang) {
      // All or nothing: what was picked goes back for the claims behind.
      for (const slot of picked) freeByZone.get(slot.zone)!.push(slot);
      for (const list of freeByZone.values()) list.sort(bySlotOrder);
      budget += picked.length;
      picked.length = 0;
    }
    for (const slot of picked) plan.grants.push({ claim: ref, slot, adopted: false });
    if (waitReason !== undefined) plan.waiting.push({ claim: ref, reason: waitReason });
  }
  return plan;
}

/** Slots a claim asks for now: an inline claim one while Pending, a workload claim its slotsWanted. */
function slotsWanted(claim: ClaimView): number {
  if (claim.slotsWanted !== undefined) return claim.phase === "Expired" ? 0 : claim.slotsWanted;
  return claim.phase === "Pending" ? 1 : 0;
}

const bySlotOrder = (a: SlotView, b: SlotView) =>
  compareStrings(a.zone, b.zone) || a.index - b.index || compareStrings(a.leaseName, b.leaseName);

function zoneWithMostFree(freeByZone: Map<string, SlotView[]>): string | undefined {
  let best: string | undefined;
  let bestCount = 0;
  for (const [zone, list] of freeByZone) {
    if (list.length === 0) continue;
    if (best === undefined || list.length > bestCount || (list.length === bestCount && zone < best)) {
      best = zone;
      bestCount = list.length;
    }
  }
  return best;
}
