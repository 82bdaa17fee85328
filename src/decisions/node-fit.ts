// Whether a node may carry a pool's slots: the scheduler's predicates that matter for a pod pinned
// with nodeName (which skips the scheduler), checked by the operator itself.
import type { NodeView, PoolView, Resources, Taint, Toleration } from "./types.ts";

/** Kubernetes toleration semantics: empty key with Exists tolerates every taint; empty effect matches all. */
export function tolerates(toleration: Toleration, taint: Taint): boolean {
  if (toleration.effect && toleration.effect !== taint.effect) return false;
  const operator = toleration.operator ?? "Equal";
  if (operator === "Exists") return !toleration.key || toleration.key === taint.key;
  return toleration.key === taint.key && (toleration.value ?? "") === (taint.value ?? "");
}

/** PreferNoSchedule taints never block; NoSchedule and NoExecute ones must each be tolerated. */
export function toleratesAll(tolerations: readonly Toleration[], taints: readonly Taint[]): boolean {
  return taints.every(
    (taint) => taint.effect === "PreferNoSchedule" || tolerations.some((t) => tolerates(t, taint)),
  );
}

function matchesSelector(labels: Record<string, string>, selector: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

/** Ready, schedulable, in a zone, selected by the pool and tolerating its taints. */
export function nodeAcceptsPool(node: NodeView, pool: PoolView): boolean {
  return (
    node.ready &&
    !node.unschedulable &&
    node.zone !== undefined &&
    matchesSelector(node.labels, pool.nodeSelector) &&
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
