// What a PoolClaim's reconciler does next, decided from an observed snapshot. The reconciler
// observes (the claim, its pool, the slot Lease naming it, its pod), asks nextClaimAction for ONE
// action, applies it and records the outcome; the next reconcile observes again. Nothing lives in
// memory between two calls, so a restarted operator picks up where the cluster stands.
//
// Orders of change, as everywhere in the ledger: a revocation (expiry, admission lost) swaps the
// Lease first and then tells the tenant; a release (the claim deleted) stops the pod first and
// frees the Lease once it is gone, so the claim holds its slot for as long as its pod runs on it.
import type { AdmissionDecision } from "./claim-admission.ts";
import type { ClaimPhase, SlotView } from "./types.ts";

/** The claim's own tenant pod (under its controller reference), as observed. */
export interface ClaimPodView {
  /** The pod carries a deletionTimestamp. */
  terminating: boolean;
  /** Its phase is Succeeded or Failed. */
  finished: boolean;
  /** Its phase is Succeeded. */
  succeeded: boolean;
  /** It runs on the slot the claim holds now (its node and slot label match). */
  onHeldSlot: boolean;
}

export interface ClaimObserved {
  now: number;
  /** The claim carries a deletionTimestamp. */
  deleting: boolean;
  phase: ClaimPhase;
  /** The claim's pool's planned grace; undefined when the pool is missing or invalid. */
  plannedGraceSeconds?: number;
  /** Admission of the claim as it stands, against its pool. */
  verdict: AdmissionDecision;
  /** The slot whose Lease names the claim, if any. */
  held?: SlotView;
  /** When the claim's hold of `held` began (status.boundAt for the same Lease, else now). */
  boundAt?: number;
  /** When the claim runs out its maxDurationSeconds, counted from boundAt. */
  expiresAt?: number;
  maxDurationSeconds?: number;
  requeueOnRevoke: boolean;
  pod?: ClaimPodView;
  /** A pod someone else put under the claim's pod name. */
  podNameTaken: boolean;
  /** Why the claim lost its slot: the revoker's reason on the Lease, else status, else generic. */
  revocationReason: string;
  /** status.message, kept when the claim ends Revoked. */
  statusMessage?: string;
}

/** Why a claim that is not deleted and holds no slot tells its pod to stop. */
export const ORPHAN_POD_MESSAGE = "the claim no longer holds its slot";

export type ClaimAction =
  /** Release, first half: stop the claim's pod with the pool's planned grace. */
  | { kind: "stopPodForRelease"; graceSeconds: number | undefined }
  /** Release, second half: the pod is gone; free the Lease (compare-and-swap). */
  | { kind: "freeSlot"; slot: SlotView }
  /** Release done: let go of the claim object. */
  | { kind: "removeFinalizer" }
  /** The Lease still names a revoked claim: the cache has not caught up with the revoker yet. */
  | { kind: "waitForCache" }
  /** Take the slot back (Lease first) and tell the tenant. */
  | {
      kind: "revoke";
      slot: SlotView;
      reason: string;
      message: string;
      phase: "Revoking" | "Expired";
      graceSeconds: number;
    }
  /** The claim's pod finished on its slot: the slot goes back to the pool at once, the claim is Completed. */
  | { kind: "complete"; slot: SlotView; succeeded: boolean }
  /** The claim holds its slot: run its pod there and report Bound. */
  | { kind: "runPod"; slot: SlotView; boundAt: number; expiresAt?: number }
  /** A pod outlived its claim's hold on the slot: stop it, as a revocation would. */
  | { kind: "stopOrphanPod"; reason: string; graceSeconds: number; phase: "Revoking" | "Expired" }
  /** A pod is still stopping; the phase moves on once it is gone. */
  | { kind: "waitForPodGone" }
  /** The pod is gone after a revocation: the claim ends Revoked, or waits again (requeueOnRevoke). */
  | { kind: "recordRevoked"; next: "Pending" | "Revoked"; reason: string; message: string }
  /** Admission refuses the claim: it waits, refused, and is never granted. */
  | { kind: "refuse"; reason: string; message: string }
  /** Admitted, waiting for the pool to grant a slot. */
  | { kind: "waitForSlot" }
  | { kind: "none" };

/** The planned grace when the pool is unknown (Kubernetes' default termination grace). */
const FALLBACK_GRACE_SECONDS = 30;

/** The one next action for a claim. Pure and total: every snapshot gets exactly one answer. */
export function nextClaimAction(o: ClaimObserved): ClaimAction {
  if (o.deleting) {
    if (o.pod && !o.pod.finished) return { kind: "stopPodForRelease", graceSeconds: o.plannedGraceSeconds };
    if (o.held) return { kind: "freeSlot", slot: o.held };
    return { kind: "removeFinalizer" };
  }
  const pooled = o.plannedGraceSeconds !== undefined;
  if (o.held && pooled) return heldSlotAction(o, o.held, o.plannedGraceSeconds!);

  // No slot held (or no pool to run it in). A pod still running here outlived its lease.
  const { phase } = o;
  if (phase === "Bound" || phase === "Revoking" || phase === "Expired" || o.pod) {
    if (o.pod && !o.pod.terminating && !o.pod.finished)
      return {
        kind: "stopOrphanPod",
        reason: o.revocationReason,
        graceSeconds: o.plannedGraceSeconds ?? FALLBACK_GRACE_SECONDS,
        phase: phase === "Expired" ? "Expired" : "Revoking",
      };
    if (o.pod && !o.pod.finished) return { kind: "waitForPodGone" };
    if (phase === "Bound" || phase === "Revoking") {
      const next = o.requeueOnRevoke ? "Pending" : "Revoked";
      return {
        kind: "recordRevoked",
        next,
        reason: o.revocationReason,
        message:
          next === "Pending"
            ? "revoked; waiting for another slot (requeueOnRevoke)"
            : (o.statusMessage ?? "revoked"),
      };
    }
    if (phase === "Expired") return { kind: "none" };
  }
  if (phase === "Revoked" || phase === "Completed") return { kind: "none" };
  if (!o.verdict.admitted) return { kind: "refuse", reason: o.verdict.reason, message: o.verdict.message };
  return { kind: "waitForSlot" };
}

function heldSlotAction(o: ClaimObserved, slot: SlotView, plannedGraceSeconds: number): ClaimAction {
  // A revoker swaps the Lease before it writes the claim's status: a Lease still naming a revoked
  // claim is a cache that has not caught up yet.
  if (o.phase === "Revoking" || o.phase === "Revoked" || o.phase === "Expired" || o.phase === "Completed")
    return { kind: "waitForCache" };
  // Admission holds for as long as the claim runs, not only at the grant.
  if (!o.verdict.admitted)
    return {
      kind: "revoke",
      slot,
      reason: o.verdict.reason,
      message: `the claim no longer passes admission: ${o.verdict.message}`,
      phase: "Revoking",
      graceSeconds: plannedGraceSeconds,
    };
  if (o.expiresAt !== undefined && o.expiresAt <= o.now)
    return {
      kind: "revoke",
      slot,
      reason: "Expired",
      message: `the claim reached its maximum duration of ${o.maxDurationSeconds}s`,
      phase: "Expired",
      graceSeconds: plannedGraceSeconds,
    };
  // A finished pod gives its slot back at once: a slot is lent for work, not for a pod's remains.
  if (o.pod?.finished && o.pod.onHeldSlot) return { kind: "complete", slot, succeeded: o.pod.succeeded };
  return { kind: "runPod", slot, boundAt: o.boundAt ?? o.now, expiresAt: o.expiresAt };
}
