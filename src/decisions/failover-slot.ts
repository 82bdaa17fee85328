// Which slot a failing-over storage service takes, and whose lease it revokes for it.
import { headMisfit, noFitMessage, type HeadPlacementRule } from "./head-placement.ts";
import { byNodeLoad, headLoad, leastLoadedZones } from "./head-spread.ts";
import { refKey } from "./names.ts";
import { compareNumbers, compareStrings } from "./order.ts";
import type { ClaimView, NodeView, ServiceRef, SlotView } from "./types.ts";

export interface FailoverSlotInput {
  service: ServiceRef;
  /** The pool's slot leases. */
  slots: readonly SlotView[];
  nodes: readonly NodeView[];
  claims: readonly ClaimView[];
  /** The failed head's zone. */
  failedZone?: string;
  /** Other zones the failure touched (for instance zones with NotReady nodes): avoided when possible. */
  failedZones?: readonly string[];
  /** Lease names not to choose. */
  exclude?: readonly string[];
  /** Nodes where a head of this failover did not become Ready: slots elsewhere are preferred. */
  avoidNodes?: readonly string[];
  /** The head's nodeSelector and tolerations: a slot on a node that does not fit them is never chosen. */
  placement?: HeadPlacementRule;
}

interface FailoverVictim {
  namespace: string;
  name: string;
  /** The claim's bid; undefined when the lease names a claim that no longer exists. */
  bid?: number;
}

export type FailoverSlotChoice =
  | {
      kind: "slot";
      slot: SlotView;
      /** The claim whose lease is revoked; undefined for a free slot. */
      victim?: FailoverVictim;
      /** True when no slot outside the failed zones was usable and a failed zone was used. */
      zoneFallback: boolean;
    }
  | {
      kind: "none";
      reason: "NoSlots" | "NoSlotOnReadyNode" | "NoSlotFitsPlacement" | "NamespaceNotAllowed";
      message: string;
    };

/**
 * Chooses the failover slot:
 * 1. only slots that no storage service holds and whose node exists, is Ready and fits the head's
 *    placement (head-placement.ts); slots on `avoidNodes` only when no other slot is left;
 * 2. zones in this order: zones the failure did not touch, then zones in `failedZones`, then the
 *    failed head's own zone (the fallback when nothing else is left: a head in the same zone beats no
 *    head);
 * 3. within the first zone group that has a slot, only the zones carrying the fewest heads of the
 *    pool (slots held by services, head-spread.ts): the heads one outage moves spread over the
 *    surviving zones instead of piling into the first, at the cost of revoking a tenant where a
 *    loaded zone still had a free slot;
 * 4. among those: a free slot before a leased one, each on the node carrying the fewest heads first;
 *    free slots then by zone, index; leased slots by the lowest bid (a lease naming a vanished claim
 *    first), then the youngest lease (latest acquiredAt), then lease name.
 * Returns "none" with NoSlots when the pool has no slot a service could take, NoSlotOnReadyNode when
 * none of those is on a Ready node, NoSlotFitsPlacement when none on a Ready node fits the placement.
 */
export function chooseFailoverSlot(input: FailoverSlotInput): FailoverSlotChoice {
  const excluded = new Set(input.exclude ?? []);
  const taken = input.slots.filter((slot) => slot.holder.kind !== "service" && !excluded.has(slot.leaseName));
  if (taken.length === 0) {
    return {
      kind: "none",
      reason: "NoSlots",
      message: "the pool has no slot that is free or leased to a tenant",
    };
  }
  const readyNodes = new Map(input.nodes.filter((node) => node.ready).map((node) => [node.name, node]));
  const onReady = taken.filter((slot) => readyNodes.has(slot.node));
  if (onReady.length === 0) {
    return {
      kind: "none",
      reason: "NoSlotOnReadyNode",
      message: `none of the pool's ${taken.length} available slots is on a Ready node`,
    };
  }
  const placement = input.placement;
  const fitting = placement
    ? onReady.filter((slot) => headMisfit(readyNodes.get(slot.node)!, placement) === undefined)
    : onReady;
  if (fitting.length === 0) {
    const nodes = [...new Set(onReady.map((slot) => slot.node))].map((name) => readyNodes.get(name)!);
    return {
      kind: "none",
      reason: "NoSlotFitsPlacement",
      message: `none of the pool's ${onReady.length} available slots on Ready nodes fits the head's nodeSelector and tolerations: ${noFitMessage(nodes, placement!)}`,
    };
  }
  const avoided = new Set(input.avoidNodes ?? []);
  const elsewhere = fitting.filter((slot) => !avoided.has(slot.node));
  const usable = elsewhere.length > 0 ? elsewhere : fitting;

  const zoneRank = zoneRanker(input);
  const bestRank = Math.min(...usable.map((slot) => zoneRank(slot.zone)));
  const load = headLoad(input.slots);
  const group = leastLoadedZones(
    usable.filter((slot) => zoneRank(slot.zone) === bestRank),
    load,
  );
  const nodeLoad = byNodeLoad(load);

  // The first slot in each order, found in one pass: the pool may hold thousands.
  const free = firstBy(
    group.filter((slot) => slot.holder.kind === "free"),
    (a, b) =>
      nodeLoad(a, b) ||
      compareStrings(a.zone, b.zone) ||
      a.index - b.index ||
      compareStrings(a.leaseName, b.leaseName),
  );
  if (free) return { kind: "slot", slot: free, zoneFallback: bestRank > 0 };

  const bids = new Map(input.claims.map((claim) => [refKey(claim), claim.bid]));
  const bidOf = new Map(
    group.map((slot) => [
      slot,
      slot.holder.kind === "claim" ? (bids.get(refKey(slot.holder)) ?? -Infinity) : -Infinity,
    ]),
  );
  const leased = firstBy(
    group,
    (a, b) =>
      nodeLoad(a, b) ||
      compareNumbers(bidOf.get(a)!, bidOf.get(b)!) ||
      (b.acquiredAt ?? 0) - (a.acquiredAt ?? 0) ||
      compareStrings(a.leaseName, b.leaseName),
  );
  const slot = leased!;
  const holder = slot.holder as { kind: "claim"; namespace: string; name: string };
  const bid = bids.get(refKey(holder));
  const victim: FailoverVictim =
    bid === undefined
      ? { namespace: holder.namespace, name: holder.name }
      : { namespace: holder.namespace, name: holder.name, bid };
  return { kind: "slot", slot, victim, zoneFallback: bestRank > 0 };
}

/** Zones in the order a failover takes them: untouched (0), touched by the failure (1), the failed head's own (2). */
function zoneRanker(input: Pick<FailoverSlotInput, "failedZone" | "failedZones">): (zone: string) => number {
  const touched = new Set(input.failedZones ?? []);
  return (zone) => (zone === input.failedZone ? 2 : touched.has(zone) ? 1 : 0);
}

type SlotChosen = Extract<FailoverSlotChoice, { kind: "slot" }>;

/**
 * Whether `alternative` is as good a failover slot as `best` by every rule that ranks above spreading
 * the heads: not in a zone the failure touched when `best` is not, not on a node to avoid when
 * `best` is not, no tenant revoked where `best` is free (a switchover's cooldown was judged on
 * `best`).
 */
export function asGoodSlot(
  alternative: SlotChosen,
  best: SlotChosen,
  input: Pick<FailoverSlotInput, "failedZone" | "failedZones" | "avoidNodes">,
): boolean {
  const zoneRank = zoneRanker(input);
  const avoided = (node: string) => input.avoidNodes?.includes(node) ?? false;
  return (
    zoneRank(alternative.slot.zone) <= zoneRank(best.slot.zone) &&
    (!avoided(alternative.slot.node) || avoided(best.slot.node)) &&
    (alternative.victim === undefined || best.victim !== undefined)
  );
}

/** The item a sort by `compare` would put first (the earliest of equals), in one pass. */
function firstBy<T>(items: readonly T[], compare: (a: T, b: T) => number): T | undefined {
  let first: T | undefined;
  for (const item of items) if (first === undefined || compare(item, first) < 0) first = item;
  return first;
}
