// Whether a node may carry a pool's slots: the scheduler's predicates that matter for a pod pinned
// with nodeName (which skips the scheduler), checked by the operator itself.
import type { NodeView, PoolView, Resources, Taint, Toleration } from "./types.ts";

/**
 * Kubernetes' Toleration.ToleratesTaint, line for line: an effect, when given, must match; a key, when
 * given, must match; then Exists matches any value and Equal (the default) the same value. So an empty
 * key with Exists tolerates every taint (validation refuses an empty key with Equal).
 */
export function tolerates(toleration: Toleration, taint: Taint): boolean {
  if (toleration.effect && toleration.effect !== taint.effect) return false;
  if (toleration.key && toleration.key !== taint.key) return false;
  const operator = toleration.operator || "Equal";
  if (operator === "Exists") return true;
  return (toleration.value ?? "") === (taint.value ?? "");
}

/** The taints that keep a pod off the node: NoSchedule and NoExecute ones no toleration tolerates (PreferNoSchedule never does). */
export function untoleratedTaints(tolerations: readonly Toleration[], taints: readonly Taint[]): Taint[] {
  return taints.filter(
    (taint) => taint.effect !== "PreferNoSchedule" && !tolerations.some((t) => tolerates(t, taint)),
  );
}

export function toleratesAll(tolerations: readonly Toleration[], taints: readonly Taint[]): boolean {
  return untoleratedTaints(tolerations, taints).length === 0;
}

/** The entries of a nodeSelector the labels do not carry. */
export function missingLabels(
  labels: Record<string, string>,
  selector: Record<string, string>,
): [string, string][] {
  return Object.entries(selector).filter(([key, value]) => labels[key] !== value);
}

/** Ready, schedulable, in a zone, selected by the pool and tolerating its taints. */
export function nodeAcceptsPool(node: NodeView, pool: PoolView): boolean {
  return (
    node.ready &&
    !node.unschedulable &&
    node.zone !== undefined &&
    missingLabels(node.labels, pool.nodeSelector).length === 0 &&
    toleratesAll(pool.tolerations, node.taints)
  );
}

export function freeResources(node: NodeView): Resources {
  return {
    cpuMillis: node.allocatable.cpuMillis - node.requested.cpuMillis,
    memoryBytes: node.allocatable.memoryBytes - node.requested.memoryBytes,
    pods: node.allocatable.pods - node.requested.pods,
  };
}

/** One slot: the pool's slot size and one pod (the placeholder or the tenant pod). */
export function slotResources(pool: PoolView): Resources {
  return { cpuMillis: pool.slotSize.cpuMillis, memoryBytes: pool.slotSize.memoryBytes, pods: 1 };
}

export function fits(need: Resources, free: Resources): boolean {
  return need.cpuMillis <= free.cpuMillis && need.memoryBytes <= free.memoryBytes && need.pods <= free.pods;
}

export function subtract(a: Resources, b: Resources): Resources {
  return {
    cpuMillis: a.cpuMillis - b.cpuMillis,
    memoryBytes: a.memoryBytes - b.memoryBytes,
    pods: a.pods - b.pods,
  };
}
