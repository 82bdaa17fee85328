// How ready a pool is for failovers right now: for each storage service drawing on it, would its
// head find a slot at once if it failed alone; and if a whole zone failed now, what share of that
// zone's heads would find one. Both come from chooseFailoverSlot over the current ledger, so they
// shrink as soon as the pool does (slots pending, nodes NotReady, heads crowding one zone).
import { chooseFailoverSlot } from "./failover-slot.ts";
import { headMisfit, type HeadPlacementRule } from "./head-placement.ts";
import { compareStrings } from "./order.ts";
import type { ClaimView, NodeView, SlotView } from "./types.ts";

export interface ServiceHeadView {
  namespace: string;
  name: string;
  /** The zone the head runs in now (its slot's zone while it is on one). */
  zone: string;
  /** The head's nodeSelector and tolerations on a slot: only slots that fit them count. */
  placement?: HeadPlacementRule;
}

export interface FailoverCapacityInput {
  /** The pool's slot leases. */
  slots: readonly SlotView[];
  nodes: readonly NodeView[];
  claims: readonly ClaimView[];
  services: readonly ServiceHeadView[];
}

export interface FailoverCapacity {
  services: number;
  /** Share of the services whose head, failing alone now, would find a slot at once (1 with no service). */
  singleFailure: number;
  /** The smallest share, over zones with heads, of a zone's heads that would find a slot at once if that zone failed now. */
  zoneOutage: number;
  /** The zone that smallest share is for. */
  worstZone?: string;
}

const placementOf = (s: ServiceHeadView) => (s.placement ? { placement: s.placement } : {});

/**
 * Whether a head with this placement may run on a node, remembered per placement and node: a pool's
 * services share a few placements and its slots a few nodes, so a thousand services cost no more
 * than their distinct placements. Given a placement, it answers for nodes.
 */
function fitMemo(): (placement: HeadPlacementRule | undefined) => (node: NodeView) => boolean {
  const memo = new Map<string, boolean>();
  return (placement) => {
    if (placement === undefined) return () => true;
    const rule = JSON.stringify(placement);
    return (node) => {
      const key = `${rule}\0${node.name}`;
      let fits = memo.get(key);
      if (fits === undefined) memo.set(key, (fits = headMisfit(node, placement) === undefined));
      return fits;
    };
  };
}

/**
 * The same answers as playing chooseFailoverSlot for every head (the definition, and what the tests
 * compare with), in time that grows with the pool, not with services times slots: a thousand
 * services on five thousand slots took the pool controller minutes per reconcile that way.
 */
export function estimateFailoverCapacity(input: FailoverCapacityInput): FailoverCapacity {
  const services = [...input.services].sort(
    (a, b) => compareStrings(a.namespace, b.namespace) || compareStrings(a.name, b.name),
  );
  const fits = fitMemo();
  // A head failing alone finds a slot at once exactly when chooseFailoverSlot has a usable one: a
  // slot no service holds, on a Ready node that fits the head's placement.
  const ready = new Map(input.nodes.filter((n) => n.ready).map((n) => [n.name, n]));
  const open = input.slots.filter((slot) => slot.holder.kind !== "service" && ready.has(slot.node));
  const openNodes = [...new Set(open.map((slot) => slot.node))].map((name) => ready.get(name)!);
  const alone = services.filter((s) => openNodes.some(fits(s.placement))).length;

  let zoneOutage = 1;
  let worstZone: string | undefined;
  const zones = [...new Set(services.map((s) => s.zone))].sort(compareStrings);
  for (const zone of zones) {
    const heads = services.filter((s) => s.zone === zone);
    const share = foundInOutage(input, zone, heads, open, fits) / heads.length;
    if (worstZone === undefined || share < zoneOutage) {
      zoneOutage = share;
      worstZone = zone;
    }
  }
  return {
    services: services.length,
    singleFailure: services.length ? alone / services.length : 1,
    zoneOutage,
    worstZone,
  };
}

/**
 * The zone's nodes go NotReady and its heads fail over one after another, each taking its slot.
 * When every head fits every node left with an open slot, which slot each takes changes nothing and
 * the count is the smaller number; otherwise the failovers are played one by one.
 */
function foundInOutage(
  input: FailoverCapacityInput,
  zone: string,
  heads: readonly ServiceHeadView[],
  open: readonly SlotView[],
  fits: ReturnType<typeof fitMemo>,
): number {
  const nodes = input.nodes.map((n) => (n.zone === zone ? { ...n, ready: false } : n));
  const stillReady = new Map(nodes.filter((n) => n.ready).map((n) => [n.name, n]));
  const left = open.filter((slot) => stillReady.has(slot.node));
  const leftNodes = [...new Set(left.map((slot) => slot.node))].map((name) => stillReady.get(name)!);
  if (heads.every((head) => leftNodes.every(fits(head.placement))))
    return Math.min(heads.length, left.length);
  let slots = [...input.slots];
  let found = 0;
  for (const head of heads) {
    const choice = chooseFailoverSlot({
      service: head,
      slots,
      nodes,
      claims: input.claims,
      failedZone: zone,
      failedZones: [zone],
      ...placementOf(head),
    });
    if (choice.kind !== "slot") continue;
    found++;
    slots = slots.map((s) =>
      s.leaseName === choice.slot.leaseName
        ? { ...s, holder: { kind: "service", namespace: head.namespace, name: head.name } }
        : s,
    );
  }
  return found;
}
