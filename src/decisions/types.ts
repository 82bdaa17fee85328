// The observed snapshot the decisions read: plain, minimal views that controllers build from API
// objects. Nothing here knows about the Kubernetes client.
//
// Conventions for every view:
// - times are milliseconds since the Unix epoch (controllers convert RFC 3339 strings once);
// - cpu is in millicores and memory in bytes (see quantity.ts);
// - lists may come in any order: every decision sorts what it reads, so its output is deterministic.
import type { TenantPodPolicy } from "./tenant-pod-fields.ts";

/** An amount of the three resources a slot consumes on a node. */
export interface Resources {
  cpuMillis: number;
  memoryBytes: number;
  pods: number;
}

type TaintEffect = "NoSchedule" | "PreferNoSchedule" | "NoExecute";

export interface Taint {
  key: string;
  value?: string;
  effect: TaintEffect;
}

/** A toleration as in the core API: operator defaults to Equal, empty effect matches every effect. */
export interface Toleration {
  key?: string;
  operator?: "Exists" | "Equal";
  value?: string;
  effect?: TaintEffect | "";
}

/** A node's heartbeat Lease in kube-node-lease. */
interface NodeLeaseView {
  renewTime?: number;
  leaseDurationSeconds?: number;
}

export interface NodeView {
  name: string;
  /** Value of `topology.kubernetes.io/zone`; undefined when the node carries no zone label. */
  zone?: string;
  /** The node's Ready condition is True. */
  ready: boolean;
  /** When the Ready condition last changed, if known. */
  readyTransitionAt?: number;
  /** `spec.unschedulable` (cordoned). */
  unschedulable: boolean;
  allocatable: Resources;
  /** Sum of the requests of every pod bound to the node, including the pods that hold slots. */
  requested: Resources;
  labels: Record<string, string>;
  taints: Taint[];
  lease?: NodeLeaseView;
}

export interface ClaimRef {
  namespace: string;
  name: string;
}

export interface ServiceRef {
  namespace: string;
  name: string;
}

/** Who holds a slot, as written in its Lease's `spec.holderIdentity`. */
export type SlotHolder =
  | { kind: "free" }
  | { kind: "claim"; namespace: string; name: string }
  | { kind: "service"; namespace: string; name: string };

export interface SlotView {
  leaseName: string;
  pool: string;
  zone: string;
  index: number;
  /** The node the slot's capacity sits on (annotation `understudy.dev/node`). */
  node: string;
  holder: SlotHolder;
  /** When the current holder acquired the slot (Lease `spec.acquireTime`). */
  acquiredAt?: number;
  /** The Lease's resourceVersion: every change of holder is a compare-and-swap against it. */
  resourceVersion: string;
}

export const ClaimPhase = {
  Pending: "Pending",
  Bound: "Bound",
  Revoking: "Revoking",
  Revoked: "Revoked",
  Expired: "Expired",
  Completed: "Completed",
} as const;
export type ClaimPhase = (typeof ClaimPhase)[keyof typeof ClaimPhase];

export interface ClaimView {
  namespace: string;
  name: string;
  pool: string;
  zone?: string;
  bid: number;
  createdAt: number;
  phase: ClaimPhase;
  requeueOnRevoke: boolean;
  maxDurationSeconds?: number;
  boundAt?: number;
  /**
   * Workload mode: how many more slots the claim asks for now (its pods waiting, up to spec.slots
   * less the slots it holds). Unset for an inline claim, which asks for one slot while Pending.
   */
  slotsWanted?: number;
  /** Workload mode: all of slotsWanted at once, or none. */
  gang?: boolean;
  /** Set when admission refused the claim; a refused claim is never granted. */
  refusal?: { reason: string; message: string };
}

interface PoolZoneView {
  name: string;
  /** Slots to keep for tenants in this zone (slots reserved by a storage service come on top). */
  slots: number;
}

export interface PoolView {
  name: string;
  zones: PoolZoneView[];
  slotSize: { cpuMillis: number; memoryBytes: number };
  /** Namespaces whose claims may lease slots; `"*"` admits every namespace. */
  allowedNamespaces: string[];
  /** Free slots to keep unleased, ready for a failover. */
  hotSpares: number;
  nodeSelector: Record<string, string>;
  tolerations: Toleration[];
  revocation: { plannedGraceSeconds: number; emergencyGraceSeconds: number };
  /** What tenant pods may set beyond their own fields (see tenant-pod-fields.ts). */
  tenantPods: TenantPodPolicy;
}

export const PodPhase = {
  Pending: "Pending",
  Running: "Running",
  Succeeded: "Succeeded",
  Failed: "Failed",
  Unknown: "Unknown",
} as const;
export type PodPhase = (typeof PodPhase)[keyof typeof PodPhase];

/** Whether a named pod exists: terminating means it carries a deletionTimestamp. */
export type PodPresence = "absent" | "present" | "terminating";
