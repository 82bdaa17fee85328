// Whether a storage service's head may run on a slot's node: the node carries the head's
// nodeSelector, and the head's tolerations tolerate every NoSchedule and NoExecute taint of the
// node. A head on a slot is pinned with nodeName, which skips the scheduler, so the operator makes
// the scheduler's two checks itself before it takes the slot.
import { missingLabels, untoleratedTaints } from "./node-fit.ts";
import { compareStrings } from "./order.ts";
import type { NodeView, Taint, Toleration } from "./types.ts";

export interface HeadPlacementRule {
  /** The service's spec.head.nodeSelector. */
  nodeSelector: Record<string, string>;
  /** Every toleration the head pod carries on a slot: the service's spec.head.tolerations and the pool's. */
  tolerations: readonly Toleration[];
}

/** Nodes named in a no-fit message; the rest are counted. */
const NODES_NAMED = 3;

const taintText = (taint: Taint) => `${taint.key}${taint.value ? `=${taint.value}` : ""}:${taint.effect}`;

/** Why a head with this rule cannot run on the node, or undefined when it can. */
export function headMisfit(node: NodeView, rule: HeadPlacementRule): string | undefined {
  const missing = missingLabels(node.labels, rule.nodeSelector);
  if (missing.length > 0)
    return `node ${node.name} lacks label ${missing.map(([key, value]) => `${key}=${value}`).join(", ")}`;
  const taints = untoleratedTaints(rule.tolerations, node.taints);
  if (taints.length > 0)
    return `node ${node.name} has taint ${taints.map(taintText).join(", ")}, not tolerated`;
  return undefined;
}

/** Why none of these nodes fits: one reason per node, the first few by name. */
export function noFitMessage(nodes: readonly NodeView[], rule: HeadPlacementRule): string {
  const reasons = [...nodes]
    .sort((a, b) => compareStrings(a.name, b.name))
    .flatMap((node) => headMisfit(node, rule) ?? []);
  const named = reasons.slice(0, NODES_NAMED).join("; ");
  const more = reasons.length - NODES_NAMED;
  return more > 0 ? `${named}; and ${more} more node${more === 1 ? "" : "s"}` : named;
}
