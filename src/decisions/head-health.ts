// Whether a storage service's head has failed, from what the API server and the operator's own probe
// show, without waiting for Kubernetes' node eviction.
import { identityMismatch, type ExpectedIdentity, type Identity } from "../dataplane/identity.ts";
import type { NodeView, PodPhase } from "./types.ts";

export const HeadFailureReason = {
  NoHead: "NoHead",
  PodDeleted: "PodDeleted",
  PodFailed: "PodFailed",
  NodeNotReady: "NodeNotReady",
  NodeLeaseExpired: "NodeLeaseExpired",
  ProbeFailed: "ProbeFailed",
  PodNotReady: "PodNotReady",
} as const;
export type HeadFailureReason = (typeof HeadFailureReason)[keyof typeof HeadFailureReason];

export interface HeadPodView {
  name: string;
  phase: PodPhase;
  /** The pod's Ready condition is True. */
  ready: boolean;
  /** When the Ready condition last changed; the pod's creation when unknown. */
  readyTransitionAt?: number;
  createdAt: number;
  deletionTimestamp?: number;
  /** `spec.nodeName`; undefined while unscheduled. */
  node?: string;
}

/** The operator's active probe of the head. */
export interface ProbeRecord {
  consecutiveFailures: number;
  failureThreshold: number;
  /** When the current run of failures began. */
  firstFailureAt?: number;
  /** The head has answered as itself at least once: only then do plain failures count. */
  answered?: boolean;
  /** Why the last answer was not the head's own (another process at its address), if it was not. */
  impostor?: string;
}

/** What one probe of the head found. */
export type ProbeOutcome =
  /** The head answered as itself, healthy. */
  | { kind: "ok" }
  /** No answer, or the head answered as itself with an error status. */
  | { kind: "failed" }
  /** Something answered that is not this head (another service's head, an older head of this one). */
  | { kind: "impostor"; message: string };

/**
 * Judges one probe answer (undefined: none came) against the head pod probed. An answer that does
 * not name the pod's service, the pod, role head and the pod's epoch is another process at the
 * pod's IP, which proves the head itself is not serving there: never healthy, whatever its status.
 */
export function judgeProbeAnswer(
  expected: ExpectedIdentity,
  answer: { status: number; identity: Identity | undefined } | undefined,
): ProbeOutcome {
  if (answer === undefined) return { kind: "failed" };
  const mismatch = identityMismatch({ ...expected, role: "head" }, answer.identity);
  if (mismatch !== null) return { kind: "impostor", message: mismatch };
  return answer.status >= 200 && answer.status < 300 ? { kind: "ok" } : { kind: "failed" };
}

/**
 * The record after one more probe. Plain failures count only once the head has answered as itself
 * (a head that never did is not failed but not started, which its pod's readiness covers, and an
 * image without the endpoint is not failed over again and again); an impostor's answer always
 * counts, since the head's address is taken by another process.
 */
export function recordProbe(record: ProbeRecord, outcome: ProbeOutcome, at: number): ProbeRecord {
  if (outcome.kind === "ok") {
    const { firstFailureAt: _first, impostor: _impostor, ...rest } = record;
    return { ...rest, answered: true, consecutiveFailures: 0 };
  }
  if (outcome.kind === "failed" && !record.answered) return record;
  const { impostor: _impostor, ...rest } = record;
  return {
    ...rest,
    consecutiveFailures: record.consecutiveFailures + 1,
    firstFailureAt: record.firstFailureAt ?? at,
    ...(outcome.kind === "impostor" ? { impostor: outcome.message } : {}),
  };
}

export interface HeadHealthInput {
  now: number;
  /** The head pod named in the service's status; undefined when the service has never had one. */
  recordedHead?: string;
  /** The head pod as found, or undefined when it does not exist. */
  pod: HeadPodView | undefined;
  /** The head pod's node as found, or undefined when it does not exist. */
  node: NodeView | undefined;
  probe?: ProbeRecord;
  /** How long a started head may stay not Ready before that is a failure. */
  notReadyGraceMs: number;
}

export type HeadHealth =
  | {
      healthy: true;
      /** The pod exists but has not started (phase Pending): not available, not failed either. */
      starting: boolean;
    }
  | {
      healthy: false;
      reason: HeadFailureReason;
      /** When the failure was detected: `now`. */
      detectedAt: number;
      /** When the evidence began, when the snapshot shows it (node transition, lease expiry, ...). */
      since?: number;
      message: string;
    };

/**
 * Assesses the head, most definitive evidence first:
 * NoHead (no pod and none on record), PodDeleted (gone, or carrying a deletionTimestamp), PodFailed
 * (phase Failed or Succeeded: a head never exits), NodeNotReady (node gone or its Ready condition not
 * True), NodeLeaseExpired (node heartbeat lease older than its duration, which comes well before the
 * node controller marks the node NotReady), ProbeFailed (consecutive probe failures reached the
 * threshold), PodNotReady (a Running pod not Ready for at least notReadyGraceMs). A Pending pod is
 * healthy but `starting`.
 */
export function assessHeadHealth(input: HeadHealthInput): HeadHealth {
  const { now, pod, node, probe } = input;
  const fail = (reason: HeadFailureReason, message: string, since?: number): HeadHealth =>
    since === undefined
      ? { healthy: false, reason, detectedAt: now, message }
      : { healthy: false, reason, detectedAt: now, since, message };

  if (!pod) {
    if (input.recordedHead === undefined)
      return fail(HeadFailureReason.NoHead, "the service has no head pod");
    return fail(HeadFailureReason.PodDeleted, `head pod ${input.recordedHead} no longer exists`);
  }
  if (pod.deletionTimestamp !== undefined) {
    return fail(HeadFailureReason.PodDeleted, `head pod ${pod.name} is being deleted`, pod.deletionTimestamp);
  }
  if (pod.phase === "Failed" || pod.phase === "Succeeded") {
    return fail(HeadFailureReason.PodFailed, `head pod ${pod.name} terminated (phase ${pod.phase})`);
  }
  if (pod.node !== undefined) {
    if (!node)
      return fail(
        HeadFailureReason.NodeNotReady,
        `node ${pod.node} of head pod ${pod.name} no longer exists`,
      );
    if (!node.ready) {
      return fail(
        HeadFailureReason.NodeNotReady,
        `node ${node.name} of head pod ${pod.name} is not Ready`,
        node.readyTransitionAt,
      );
    }
    const renewTime = node.lease?.renewTime;
    const duration = node.lease?.leaseDurationSeconds;
    if (renewTime !== undefined && duration !== undefined && renewTime + duration * 1000 < now) {
      return fail(
        HeadFailureReason.NodeLeaseExpired,
        `node ${node.name} has not renewed its lease for ${Math.round((now - renewTime) / 1000)}s (duration ${duration}s)`,
        renewTime + duration * 1000,
      );
    }
  }
  if (pod.phase === "Pending") return { healthy: true, starting: true };
  if (probe && probe.failureThreshold > 0 && probe.consecutiveFailures >= probe.failureThreshold) {
    return fail(
      HeadFailureReason.ProbeFailed,
      `head pod ${pod.name} failed ${probe.consecutiveFailures} consecutive probes (threshold ${probe.failureThreshold})` +
        (probe.impostor ? `; another process answers at its address (${probe.impostor})` : ""),
      probe.firstFailureAt,
    );
  }
  if (!pod.ready) {
    const since = pod.readyTransitionAt ?? pod.createdAt;
    if (now - since >= input.notReadyGraceMs) {
      return fail(
        HeadFailureReason.PodNotReady,
        `head pod ${pod.name} has not been Ready for ${now - since}ms`,
        since,
      );
    }
  }
  return { healthy: true, starting: false };
}
