// What a ContingencyPool's reconciler does next, decided from an observed snapshot. A pass has two
// stages, each a pure decision here and applied by the reconciler (observe, decide, apply, record):
//
// 1. The ledger: create, move and remove slot Leases, revoke a leased slot the pool shrank away, and
//    free a slot whose claim vanished without releasing it. When any of these is needed, the pass
//    applies them and stops: grants are decided on a cache that shows the new ledger.
// 2. Grants and placeholders: free slots go to claims by bid (grants.ts), then every free slot gets
//    exactly one placeholder on its node and a held slot none; the counts are reported.
import type { SlotCounts } from "../api/pool.ts";
import { planGrants, type GrantPlan } from "./grants.ts";
import { refKey } from "./names.ts";
import { planSlotPlacement, type SlotCreation, type SlotMove, type SlotPlan } from "./slot-placement.ts";
import type { ClaimRef, ClaimView, NodeView, PoolView, SlotView } from "./types.ts";

/** A pod on one of the pool's slots that belongs to a tenant, as the pool controller sees it. */
export interface TenantPodOnSlot {
  /** The slot Lease named by the pod's `understudy.dev/slot` label. */
  leaseName: string;
  /** The claim the pod is proven to belong to ("namespace/name"). */
  claim: string;
  /** Succeeded or Failed: it no longer occupies anything. */
  finished: boolean;
}

export interface PoolSlotObservation {
  slot: SlotView;
  /** The claim the Lease says last lost the slot (annotation `understudy.dev/revoked-claim`). */
  revokedClaim?: string;
}

export interface PoolLedgerObserved {
  pool: PoolView;
  slots: readonly PoolSlotObservation[];
  nodes: readonly NodeView[];
  claims: readonly ClaimView[];
  /** Claims that exist ("namespace/name"), deleted or not: a slot naming another is orphaned. */
  existingClaims: ReadonlySet<string>;
  tenantPods: readonly TenantPodOnSlot[];
  /** Slots a claim's usage record still counts as held: removed only once the record closed them. */
  usageHolds?: ReadonlySet<string>;
}

export type PoolLedgerAction =
  | { kind: "createSlot"; creation: SlotCreation }
  | { kind: "moveSlot"; move: SlotMove }
  /** The pool shrank under a leased slot: take it back (Lease first, then the notice); removed later. */
  | { kind: "revokeSlot"; slot: SlotView; claim: ClaimRef; graceSeconds: number }
  | { kind: "removeSlot"; slot: SlotView }
  /** The slot's claim is gone and no pod of it is left: the slot goes back to the pool. */
  | { kind: "releaseOrphan"; slot: SlotView };

export interface PoolLedgerDecision {
  actions: PoolLedgerAction[];
  /** What could not be placed, for the Ready condition. */
  shortfall: SlotPlan["shortfall"];
  /**
   * Slots the pool shrank away, removed now or once their last claim's usage record closed them:
   * never granted again meanwhile (a revoked slot would go straight back to the tenant it was taken from).
   */
  withdrawn: ReadonlySet<string>;
}

/**
 * Slots on which a tenant pod still runs or stops (finished pods aside): a pod of the claim that
 * holds the slot or last lost it. A pod of any other claim proves nothing about the slot.
 */
export function occupiedSlots(
  slots: readonly PoolSlotObservation[],
  tenantPods: readonly TenantPodOnSlot[],
): Set<string> {
  const tenantsOf = new Map<string, string[]>();
  for (const { slot, revokedClaim } of slots) {
    const claims = revokedClaim ? [revokedClaim] : [];
    if (slot.holder.kind === "claim") claims.push(refKey(slot.holder));
    tenantsOf.set(slot.leaseName, claims);
  }
  const out = new Set<string>();
  for (const pod of tenantPods)
    if (!pod.finished && tenantsOf.get(pod.leaseName)?.includes(pod.claim)) out.add(pod.leaseName);
  return out;
}

/** Stage 1: the ledger changes this pass needs, in the order they are applied. */
export function nextPoolLedgerActions(o: PoolLedgerObserved): PoolLedgerDecision {
  const plan = planSlotPlacement({
    pool: o.pool,
    slots: o.slots.map((s) => s.slot),
    nodes: o.nodes,
    claims: o.claims,
  });
  const actions: PoolLedgerAction[] = [
    ...plan.create.map((creation): PoolLedgerAction => ({ kind: "createSlot", creation })),
    ...plan.move.map((move): PoolLedgerAction => ({ kind: "moveSlot", move })),
    ...plan.remove.flatMap((removal): PoolLedgerAction[] => {
      if (removal.revoke) return [{ kind: "revokeSlot", slot: removal.slot, ...removal.revoke }];
      // A slot taken from a claim stays until the claim's usage record has seen why it went.
      if (o.usageHolds?.has(removal.slot.leaseName)) return [];
      return [{ kind: "removeSlot", slot: removal.slot }];
    }),
  ];
  // A slot whose claim is gone (deleted before it could release the slot, e.g. while no operator
  // led) goes back to the pool once no pod of that tenant is left on it.
  const occupied = occupiedSlots(o.slots, o.tenantPods);
  for (const { slot } of o.slots) {
    if (slot.holder.kind !== "claim" || occupied.has(slot.leaseName)) continue;
    if (o.existingClaims.has(refKey(slot.holder))) continue;
    actions.push({ kind: "releaseOrphan", slot });
  }
  const withdrawn = new Set(plan.remove.map((removal) => removal.slot.leaseName));
  return { actions, shortfall: plan.shortfall, withdrawn };
}

/**
 * Stage 2: grants over the slots that may be granted. A free slot whose last tenant's pod has not
 * gone yet is not grantable: two tenants never share a slot. Nor is a slot stage 1 withdrew.
 */
export function planPoolGrants(
  o: Omit<PoolLedgerObserved, "existingClaims">,
  withdrawn: ReadonlySet<string> = new Set(),
): GrantPlan {
  const occupied = occupiedSlots(o.slots, o.tenantPods);
  const grantable = o.slots
    .map((s) => s.slot)
    .filter((s) => s.holder.kind !== "free" || (!occupied.has(s.leaseName) && !withdrawn.has(s.leaseName)));
  return planGrants({ pool: o.pool, slots: grantable, claims: o.claims, nodes: o.nodes });
}

/** A placeholder pod as observed: where it runs and how it stands. */
export interface PlaceholderView {
  node?: string;
  phase?: string;
  terminating: boolean;
  /** It carries the annotations that keep autoscalers off its node (placeholders of earlier versions lack them). */
  annotated: boolean;
}

export interface PlaceholderPlan {
  create: SlotView[];
  /** Slots whose placeholder goes: the slot is held, it sits on the wrong node, or it failed. */
  remove: SlotView[];
  /** Slots whose placeholder stays but lacks the autoscaler annotations. */
  annotate: SlotView[];
}

/** A free slot has exactly one placeholder, on its node; a held slot has none. */
export function planPlaceholders(
  slots: readonly SlotView[],
  placeholders: ReadonlyMap<string, PlaceholderView>,
): PlaceholderPlan {
  const plan: PlaceholderPlan = { create: [], remove: [], annotate: [] };
  for (const slot of slots) {
    const existing = placeholders.get(slot.leaseName);
    const wanted = slot.holder.kind === "free";
    if (existing && (!wanted || existing.node !== slot.node || existing.phase === "Failed")) {
      if (!existing.terminating) plan.remove.push(slot);
      continue;
    }
    if (wanted && !existing) plan.create.push(slot);
    else if (wanted && existing && !existing.terminating && !existing.annotated) plan.annotate.push(slot);
  }
  return plan;
}

/** A pool's slot counts, whole and per zone, as its status reports them. */
export type PoolSlotCounts = SlotCounts & { zones: (SlotCounts & { name: string })[] };

/**
 * Slots by zone and state: leased (a claim), reserved (a service), free (its placeholder Running on
 * the slot's node) or pending (free, capacity not held yet). Zones of the spec come first, in order.
 */
export function countSlots(
  poolZones: readonly string[],
  slots: readonly SlotView[],
  placeholders: ReadonlyMap<string, PlaceholderView>,
): PoolSlotCounts {
  const zoneNames = [...new Set([...poolZones, ...slots.map((s) => s.zone)])];
  const zones = zoneNames.map((name): PoolSlotCounts["zones"][number] => ({
    name,
    slots: 0,
    free: 0,
    leased: 0,
    reserved: 0,
    pending: 0,
  }));
  const byName = new Map(zones.map((z) => [z.name, z]));
  for (const slot of slots) {
    const z = byName.get(slot.zone)!;
    z.slots++;
    if (slot.holder.kind === "claim") z.leased++;
    else if (slot.holder.kind === "service") z.reserved++;
    else {
      const placeholder = placeholders.get(slot.leaseName);
      if (placeholder?.phase === "Running" && placeholder.node === slot.node) z.free++;
      else z.pending++;
    }
  }
  const sum = (k: keyof SlotCounts) => zones.reduce((a, z) => a + z[k], 0);
  return {
    slots: sum("slots"),
    free: sum("free"),
    leased: sum("leased"),
    reserved: sum("reserved"),
    pending: sum("pending"),
    zones,
  };
}
