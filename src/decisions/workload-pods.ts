// Workload mode: a claim without a template lends its slots to the tenant's own pods (of a Job, a
// Deployment, a StatefulSet, or bare ones), as Kueue admits workloads. Each pod is created by the
// tenant, with the tenant's rights, carrying the scheduling gate SLOT_SCHEDULING_GATE and the label
// CLAIM_LABEL=<claim>. The operator gives a waiting pod one of the claim's held slots by labelling
// it with the slot and narrowing its node affinity to the slot's node (both allowed on a gated
// pod), then lifts the gate. A pod on a slot the claim no longer holds is evicted; its controller
// recreates it, gated, and it waits for the next slot.
//
// planWorkload decides every action for one claim from a snapshot; each action is idempotent and
// guarded by what it observed, so applying a plan twice, or one decided on a stale cache, changes
// nothing a second time (a slot's holder changes only by compare-and-swap; a pod is assigned only
// while gated, and a gated pod with a stale assignment is replaced, not reassigned).
import type { AdmissionDecision } from "./claim-admission.ts";
import { compareStrings } from "./order.ts";
import type { SlotView } from "./types.ts";

/** One of the claim's pods (in its namespace, labelled with its name, not an inline claim's pod). */
export interface WorkloadPodView {
  name: string;
  createdAt: number;
  /** Carries the operator's scheduling gate. */
  gated: boolean;
  /** The slot Lease named by its `understudy.dev/slot` label: the slot it was given. */
  slot?: string;
  terminating: boolean;
  /** Succeeded or Failed: it occupies nothing. */
  finished: boolean;
  /** Admission of the pod's spec and metadata against the pool (see normalizedWorkloadPod). */
  admission: AdmissionDecision;
}

/** A slot revoked from the claim, as its Lease records it. */
export interface RevokedSlot {
  leaseName: string;
  reason: string;
}

export interface WorkloadObserved {
  now: number;
  deleting: boolean;
  /** Admission of the claim itself (pool exists, namespace allowed, zone in the pool). */
  claimAdmission: AdmissionDecision;
  /** The pool's grace periods; undefined when the pool is missing or invalid. */
  grace?: { plannedGraceSeconds: number; emergencyGraceSeconds: number };
  /** The slots whose Lease names the claim. */
  held: readonly SlotView[];
  /** Slots the claim lost, with the revoker's reason (Lease annotations). */
  revoked: readonly RevokedSlot[];
  pods: readonly WorkloadPodView[];
  /** spec.slots */
  slotsMax: number;
  gang: boolean;
  /** When the claim runs out its maxDurationSeconds (from its first slot), if it has one. */
  expiresAt?: number;
  maxDurationSeconds?: number;
  /** The claim already Expired: it takes no more slots. */
  expired: boolean;
}

export type WorkloadAction =
  /** Give a waiting pod a held slot: label it with the slot, narrow its node affinity to the slot's node. */
  | { kind: "assign"; pod: string; slot: SlotView }
  /** The pod was given a held slot: lift the gate so the scheduler places it there. */
  | { kind: "ungate"; pod: string; slot: SlotView }
  /** Evict a pod with the grace given (0 for a pod that never ran); its controller recreates it gated. */
  | { kind: "evict"; pod: string; reason: string; graceSeconds: number }
  /** A held slot no pod uses and none waits for goes back to the pool (compare-and-swap). */
  | { kind: "freeSlot"; slot: SlotView }
  /** Take a held slot back, the Lease first; its pod is evicted once the Lease says so. */
  | { kind: "revokeSlot"; slot: SlotView; reason: string; message: string; graceSeconds: number }
  /** The claim is deleted and holds nothing: let go of it. */
  | { kind: "removeFinalizer" };

export interface WorkloadPlan {
  actions: WorkloadAction[];
  /** Admitted pods waiting for a slot (after this plan's assignments). */
  waiting: number;
  /** Gated pods admission refuses, with why. */
  refused: { pod: string; reason: string; message: string }[];
  /** Slots to ask the pool for now (see slotsWanted in ClaimView). */
  slotsWanted: number;
  /** Which pod is on each held slot, after this plan. */
  podOnSlot: ReadonlyMap<string, string>;
  /** Every slot is to be taken back because the claim reached its maximum duration. */
  expiring: boolean;
}

/** Why a revocation is an emergency: a storage service's head needs the slot now. */
export const EMERGENCY_REVOCATION_REASONS: ReadonlySet<string> = new Set(["Failover"]);

/** Fallback grace when the pool is unknown (Kubernetes' default termination grace). */
const FALLBACK_GRACE_SECONDS = 30;

const byAge = (a: WorkloadPodView, b: WorkloadPodView) =>
  a.createdAt - b.createdAt || compareStrings(a.name, b.name);
const bySlot = (a: SlotView, b: SlotView) =>
  compareStrings(a.zone, b.zone) || a.index - b.index || compareStrings(a.leaseName, b.leaseName);

/** Every action for one workload claim now. Pure; deterministic for a snapshot in any order. */
export function planWorkload(o: WorkloadObserved): WorkloadPlan {
  const actions: WorkloadAction[] = [];
  const planned = o.grace?.plannedGraceSeconds ?? FALLBACK_GRACE_SECONDS;
  const emergency = o.grace?.emergencyGraceSeconds ?? planned;
  const heldByName = new Map(o.held.map((s) => [s.leaseName, s]));
  const revokedReason = new Map(o.revoked.map((r) => [r.leaseName, r.reason]));
  const live = o.pods.filter((p) => !p.finished).sort(byAge);
  const podOnSlot = new Map<string, string>();
  const refused: WorkloadPlan["refused"] = [];

  // Slots taken back wholesale: the claim stops passing admission, or reaches its maximum duration.
  const expiring = !o.deleting && o.expiresAt !== undefined && o.expiresAt <= o.now && o.held.length > 0;
  const wholesale: { reason: string; message: string } | undefined = expiring
    ? { reason: "Expired", message: `the claim reached its maximum duration of ${o.maxDurationSeconds}s` }
    : !o.deleting && !o.claimAdmission.admitted && o.grace
      ? {
          reason: o.claimAdmission.reason,
          message: `the claim no longer passes admission: ${o.claimAdmission.message}`,
        }
      : undefined;

  const revokedSlots = new Set<string>();
  const revoke = (slot: SlotView, reason: string, message: string) => {
    if (revokedSlots.has(slot.leaseName)) return;
    revokedSlots.add(slot.leaseName);
    actions.push({ kind: "revokeSlot", slot, reason, message, graceSeconds: planned });
  };
  if (wholesale)
    for (const slot of [...o.held].sort(bySlot)) revoke(slot, wholesale.reason, wholesale.message);

  // Pods that were given a slot: they run on it while the claim holds it, else they go.
  const waiting: WorkloadPodView[] = [];
  for (const pod of live) {
    if (pod.slot === undefined) {
      if (pod.gated && !pod.terminating) waiting.push(pod);
      continue;
    }
    const slot = heldByName.get(pod.slot);
    // Taken back in this very plan: the Lease first; the pod is evicted once the Lease says why.
    if (slot && revokedSlots.has(slot.leaseName)) continue;
    if (slot && !podOnSlot.has(slot.leaseName)) {
      podOnSlot.set(slot.leaseName, pod.name);
      if (pod.terminating) continue;
      if (o.deleting) {
        actions.push({ kind: "evict", pod: pod.name, reason: "ClaimDeleted", graceSeconds: planned });
        continue;
      }
      // Admission holds for as long as the pod runs: the pool or namespace list may change under it.
      if (!pod.admission.admitted) {
        revoke(
          slot,
          pod.admission.reason,
          `pod ${pod.name} no longer passes admission: ${pod.admission.message}`,
        );
        continue;
      }
      if (pod.gated) actions.push({ kind: "ungate", pod: pod.name, slot });
      continue;
    }
    if (pod.terminating) continue;
    // On a slot the claim does not hold (revoked, or a second pod on one slot): evicted. A pod that
    // never ran goes at once; a running one gets the notice its revocation allows.
    const reason = revokedReason.get(pod.slot) ?? (slot ? "SlotTaken" : "SlotRevoked");
    const graceSeconds = pod.gated ? 0 : EMERGENCY_REVOCATION_REASONS.has(reason) ? emergency : planned;
    actions.push({ kind: "evict", pod: pod.name, reason, graceSeconds });
  }

  // Waiting pods: admitted ones take the held slots nobody uses, oldest pod first.
  const admitted: WorkloadPodView[] = [];
  for (const pod of waiting) {
    if (pod.admission.admitted) admitted.push(pod);
    else refused.push({ pod: pod.name, reason: pod.admission.reason, message: pod.admission.message });
  }
  const unused = o.held
    .filter((s) => !podOnSlot.has(s.leaseName) && !revokedSlots.has(s.leaseName))
    .sort(bySlot);
  const assignable = o.deleting || wholesale ? [] : admitted;
  let next = 0;
  for (const slot of unused) {
    const pod = assignable[next];
    if (pod) {
      next++;
      podOnSlot.set(slot.leaseName, pod.name);
      actions.push({ kind: "assign", pod: pod.name, slot });
    } else actions.push({ kind: "freeSlot", slot });
  }
  const stillWaiting = admitted.length - next;

  if (o.deleting && o.held.length === 0) actions.push({ kind: "removeFinalizer" });

  const asking = !o.deleting && !wholesale && !o.expired && o.claimAdmission.admitted;
  const inUse = o.held.length - unused.length + next; // held slots with a pod, after assignments
  const demand = Math.min(o.slotsMax, inUse + stillWaiting);
  const slotsWanted = !asking
    ? 0
    : o.gang && inUse + stillWaiting < o.slotsMax
      ? 0
      : Math.max(0, demand - o.held.length + (unused.length - next));
  return { actions, waiting: stillWaiting, refused, slotsWanted, podOnSlot, expiring };
}

/** Tolerations the API server adds to every pod (DefaultTolerationSeconds): not the tenant's choice. */
const DEFAULT_TOLERATION_KEYS = new Set(["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]);

type Obj = Record<string, unknown>;
const asObject = (v: unknown): Obj | undefined =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;

/**
 * A tenant's pod as admission judges it: what the tenant wrote, without what the API server,
 * controllers and the operator itself filled in: the operator's gate, the node affinity it added
 * and the node the scheduler bound the pod to (a pod it gave a slot), the default scheduler, the priority and preemption policy resolved
 * from priorityClassName (which is judged), and the default NoExecute tolerations.
 */
export function normalizedWorkloadPodSpec(spec: unknown, gate: string, assigned: boolean): Obj {
  const out: Obj = { ...(asObject(spec) ?? {}) };
  const gates = Array.isArray(out.schedulingGates)
    ? out.schedulingGates.filter((g) => asObject(g)?.name !== gate)
    : [];
  if (gates.length === 0) delete out.schedulingGates;
  else out.schedulingGates = gates;
  if (out.schedulerName === "default-scheduler") delete out.schedulerName;
  delete out.priority;
  delete out.preemptionPolicy;
  if (assigned) {
    // The operator's: the slot's node affinity, and the node the scheduler bound the pod to by it.
    delete out.affinity;
    delete out.nodeName;
  }
  if (Array.isArray(out.tolerations)) {
    const own = out.tolerations.filter((t) => {
      const o = asObject(t);
      return !(
        o &&
        DEFAULT_TOLERATION_KEYS.has(String(o.key)) &&
        o.effect === "NoExecute" &&
        o.operator === "Exists"
      );
    });
    if (own.length === 0) delete out.tolerations;
    else out.tolerations = own;
  }
  return out;
}
