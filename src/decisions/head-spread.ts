// Where failed-over heads should go so that one outage does not pile them up: the heads a pool
// carries (its slots held by storage services) counted per zone and per node, and the slots among
// candidates that keep those counts even. Taken one failover after another, as the ledger records
// each, the heads a zone outage moves spread over the surviving zones (no zone takes more than its
// share while another has a usable slot) and over the nodes within a zone, so a second failure
// cannot take them all again. The pool replaces each taken slot in the zone it was taken from, on
// the node with the fewest of its slots (slot-placement.ts), so the replenished slots follow.
import type { SlotView } from "./types.ts";

export interface HeadLoad {
  byZone: ReadonlyMap<string, number>;
  byNode: ReadonlyMap<string, number>;
}

/** The heads on a pool's slots: slots a storage service holds, per zone and per node. */
export function headLoad(slots: readonly SlotView[]): HeadLoad {
  const byZone = new Map<string, number>();
  const byNode = new Map<string, number>();
  for (const slot of slots) {
    if (slot.holder.kind !== "service") continue;
    byZone.set(slot.zone, (byZone.get(slot.zone) ?? 0) + 1);
    byNode.set(slot.node, (byNode.get(slot.node) ?? 0) + 1);
  }
  return { byZone, byNode };
}

/** The candidates in the zones carrying the fewest heads (every candidate when none carries any). */
export function leastLoadedZones(candidates: readonly SlotView[], load: HeadLoad): SlotView[] {
  const heads = (slot: SlotView) => load.byZone.get(slot.zone) ?? 0;
  const fewest = Math.min(...candidates.map(heads));
  return candidates.filter((slot) => heads(slot) === fewest);
}

/** Orders slots by how many heads their node carries, fewest first (stable otherwise). */
export const byNodeLoad =
  (load: HeadLoad) =>
  (a: SlotView, b: SlotView): number =>
    (load.byNode.get(a.node) ?? 0) - (load.byNode.get(b.node) ?? 0);
