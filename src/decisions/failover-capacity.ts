// How ready a pool is for failovers right now: for each storage service drawing on it, would its
// head find a slot at once if it failed alone; and if a whole zone failed now, what share of that
// zone's heads would find one. Both come from chooseFailoverSlot over the current ledger, so they
// shrink as soon as the pool does (slots pending, nodes NotReady, heads crowding one zone).
import { chooseFailoverSlot } from "./failover-slot.ts";
import type { HeadPlacementRule } from "./head-placement.ts";
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

export function estimateFailoverCapacity(input: FailoverCapacityInput): FailoverCapacity {
  const services = [...input.services].sort(
    (a, b) => compareStrings(a.namespace, b.namespace) || compareStrings(a.name, b.name),
  );
  const base = { slots: input.slots, nodes: input.nodes, claims: input.claims };
  const alone = services.filter(
    (s) => chooseFailoverSlot({ ...base, service: s, failedZone: s.zone, ...placementOf(s) }).kind === "slot",
  ).length;

  let zoneOutage = 1;
  let worstZone: string | undefined;
  const zones = [...new Set(services.map((s) => s.zone))].sort(compareStrings);
  for (const zone of zones) {
    const heads = services.filter((s) => s.zone === zone);
    const share = foundInOutage(input, zone, heads) / heads.length;
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

/** The zone's nodes go NotReady and its heads fail over one after another, each taking its slot. */
function foundInOutage(
  input: FailoverCapacityInput,
  zone: string,
  heads: readonly ServiceHeadView[],
): number {
  const nodes = input.nodes.map((n) => (n.zone === zone ? { ...n, ready: false } : n));
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
