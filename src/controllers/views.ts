// Converting API objects into the plain views the decisions read. Nothing else in the controllers
// interprets raw objects, so a decision sees the same facts whichever controller asks.
import type * as k8s from "@kubernetes/client-node";
import type { ContingencyPool, PoolClaim, StorageService } from "../api/index.ts";
import { admitClaim, type AdmissionDecision } from "../decisions/claim-admission.ts";
import type { HeadPlacementRule } from "../decisions/head-placement.ts";
import { parseHolderIdentity } from "../decisions/names.ts";
import { parseCpuMillis, parseMemoryBytes } from "../decisions/quantity.ts";
import type {
  ClaimView,
  NodeView,
  PoolView,
  Resources,
  SlotView,
  Taint,
  Toleration,
} from "../decisions/types.ts";
import { perObject } from "./derived.ts";
import { annotations, labels } from "./labels.ts";
import { slotHeadTolerations } from "./storage-service/manifests.ts";

export const time = (t: Date | string | undefined | null): number | undefined =>
  t === undefined || t === null ? undefined : new Date(t).getTime();

const safeCpu = (q: unknown) => {
  try {
    return q === undefined ? 0 : parseCpuMillis(q as string);
  } catch {
    return 0;
  }
};
const safeMemory = (q: unknown) => {
  try {
    return q === undefined ? 0 : parseMemoryBytes(q as string);
  } catch {
    return 0;
  }
};

export const isTerminated = (pod: k8s.V1Pod) =>
  pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";

/** A pod's requests as the scheduler counts them: the larger of the sum of containers and any init container. */
export function podRequests(pod: k8s.V1Pod): Resources {
  const sum = (cs: k8s.V1Container[] | undefined) =>
    (cs ?? []).reduce(
      (acc, c) => ({
        cpuMillis: acc.cpuMillis + safeCpu(c.resources?.requests?.cpu),
        memoryBytes: acc.memoryBytes + safeMemory(c.resources?.requests?.memory),
      }),
      { cpuMillis: 0, memoryBytes: 0 },
    );
  const main = sum(pod.spec?.containers);
  const init = (pod.spec?.initContainers ?? []).map((c) => sum([c]));
  return {
    cpuMillis: Math.max(main.cpuMillis, ...init.map((r) => r.cpuMillis)),
    memoryBytes: Math.max(main.memoryBytes, ...init.map((r) => r.memoryBytes)),
    pods: 1,
  };
}

/** Sum of requests of the live pods bound to each node. */
export function requestedByNode(pods: readonly k8s.V1Pod[]): Map<string, Resources> {
  const out = new Map<string, Resources>();
  for (const pod of pods) {
    const node = pod.spec?.nodeName;
    if (!node || isTerminated(pod)) continue;
    const r = podRequests(pod);
    const acc = out.get(node) ?? { cpuMillis: 0, memoryBytes: 0, pods: 0 };
    out.set(node, {
      cpuMillis: acc.cpuMillis + r.cpuMillis,
      memoryBytes: acc.memoryBytes + r.memoryBytes,
      pods: acc.pods + 1,
    });
  }
  return out;
}

export function toNodeView(
  node: k8s.V1Node,
  requested: Resources | undefined,
  nodeLease?: k8s.V1Lease,
): NodeView {
  const ready = node.status?.conditions?.find((c) => c.type === "Ready");
  const alloc = node.status?.allocatable ?? {};
  return {
    name: node.metadata!.name!,
    zone: node.metadata?.labels?.[labels.nodeZone],
    ready: ready?.status === "True",
    readyTransitionAt: time(ready?.lastTransitionTime),
    unschedulable: node.spec?.unschedulable === true,
    allocatable: {
      cpuMillis: safeCpu(alloc.cpu),
      memoryBytes: safeMemory(alloc.memory),
      pods: Number(alloc.pods ?? 110),
    },
    requested: requested ?? { cpuMillis: 0, memoryBytes: 0, pods: 0 },
    labels: node.metadata?.labels ?? {},
    taints: (node.spec?.taints ?? []).map((t) => ({
      key: t.key,
      value: t.value,
      effect: t.effect as Taint["effect"],
    })),
    lease: nodeLease
      ? {
          renewTime: time(nodeLease.spec?.renewTime as unknown as string),
          leaseDurationSeconds: nodeLease.spec?.leaseDurationSeconds,
        }
      : undefined,
  };
}

/** A slot Lease as a view; undefined for a Lease that is not a slot or names a holder we never write. */
export const toSlotView = perObject(slotViewOf);

function slotViewOf(lease: k8s.V1Lease): SlotView | undefined {
  const l = lease.metadata?.labels ?? {};
  const holder = parseHolderIdentity(lease.spec?.holderIdentity);
  const node = lease.metadata?.annotations?.[annotations.node];
  if (!l[labels.pool] || !l[labels.zone] || l[labels.slot] === undefined || !holder || !node)
    return undefined;
  return {
    leaseName: lease.metadata!.name!,
    pool: l[labels.pool]!,
    zone: l[labels.zone]!,
    index: Number(l[labels.slot]),
    node,
    holder,
    acquiredAt: time(lease.spec?.acquireTime as unknown as string),
    resourceVersion: lease.metadata!.resourceVersion!,
  };
}

export function toPoolView(pool: ContingencyPool): PoolView {
  const s = pool.spec;
  return {
    name: pool.metadata.name!,
    zones: s.zones.map((z) => ({ name: z.name, slots: z.slots })),
    slotSize: { cpuMillis: parseCpuMillis(s.slotSize.cpu), memoryBytes: parseMemoryBytes(s.slotSize.memory) },
    allowedNamespaces: s.allowedNamespaces,
    hotSpares: s.hotSpares,
    nodeSelector: s.nodeSelector ?? {},
    tolerations: (s.tolerations ?? []) as Toleration[],
    revocation: s.revocation,
    tenantPods: s.tenantPods,
  };
}

/**
 * Where the service's head may run: its nodeSelector, and the tolerations its pod carries, with the
 * pool's on a slot of `pool` (headPod gives both), its own alone in its zone.
 */
export function toHeadPlacementRule(service: StorageService, pool?: ContingencyPool): HeadPlacementRule {
  return {
    nodeSelector: service.spec.head.nodeSelector ?? {},
    tolerations: (pool
      ? slotHeadTolerations(service, pool.spec.tolerations)
      : (service.spec.head.tolerations ?? [])) as Toleration[],
  };
}

/** The admission verdict on a parsed claim against its pool (undefined: the pool does not exist). */
export function admit(claim: PoolClaim, pool: ContingencyPool | undefined): AdmissionDecision {
  return admitClaim({
    claim: { namespace: claim.metadata.namespace!, pool: claim.spec.pool, zone: claim.spec.zone },
    pool: pool ? toPoolView(pool) : undefined,
    podSpec: claim.spec.template?.spec,
    podMetadata: claim.spec.template?.metadata,
  });
}

/** Admission of the claim itself, without a pod: pool, namespace, zone (what a workload claim is judged on). */
export function admitClaimTarget(claim: PoolClaim, pool: ContingencyPool | undefined): AdmissionDecision {
  return admitClaim({
    claim: { namespace: claim.metadata.namespace!, pool: claim.spec.pool, zone: claim.spec.zone },
    pool: pool ? toPoolView(pool) : undefined,
  });
}

export function toClaimView(claim: PoolClaim, refusal?: ClaimView["refusal"]): ClaimView {
  return {
    namespace: claim.metadata.namespace!,
    name: claim.metadata.name!,
    pool: claim.spec.pool,
    zone: claim.spec.zone,
    bid: claim.spec.bid,
    createdAt: time(claim.metadata.creationTimestamp) ?? 0,
    phase: claim.status?.phase ?? "Pending",
    requeueOnRevoke: claim.spec.requeueOnRevoke,
    maxDurationSeconds: claim.spec.maxDurationSeconds,
    boundAt: time(claim.status?.boundAt),
    refusal,
  };
}
