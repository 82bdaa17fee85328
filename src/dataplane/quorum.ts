// Quorum arithmetic and what a set of replica replies means for a write.

export function writeQuorum(replicationFactor: number): number {
  return Math.floor(replicationFactor / 2) + 1;
}

/** The smallest read quorum that intersects every write quorum. */
export function minimumReadQuorum(replicationFactor: number, w: number): number {
  return replicationFactor - w + 1;
}

/**
 * How one replica answered a request:
 * - ok: it did what was asked (for a write: the record, or a newer one, is durable there)
 * - fenced: it refused the request's epoch (a newer head exists)
 * - refused: it rejected the request before touching storage (bad request, shutting down)
 * - not_sent: the connection failed before the request left (nothing happened there)
 * - unknown: the request may or may not have been applied (timeout, reset, server error)
 */
export type ReplicaReply = "ok" | "fenced" | "refused" | "not_sent" | "unknown";

export type WriteOutcome = "acknowledged" | "not_applied" | "unknown";

/**
 * A write is acknowledged once `w` replicas made it durable. A write that failed is
 * known not to have been applied only if no replica may hold it; otherwise a later
 * read may still surface it, so its outcome is unknown.
 *
 * `pending`: replicas that have not answered yet. The outcome is decided as soon as no
 * pending answer can change it (null until then): a replica that never answers is waited
 * for only when its answer still decides between acknowledged, unknown and not_applied,
 * never once a quorum acknowledged or once the write is known to be unknown.
 */
export function writeOutcome(replies: readonly ReplicaReply[], w: number, pending = 0): WriteOutcome | null {
  const acks = replies.filter((r) => r === "ok").length;
  if (acks >= w) return "acknowledged";
  if (acks + pending >= w) return null;
  if (replies.some((r) => r === "ok" || r === "unknown")) return "unknown";
  return pending === 0 ? "not_applied" : null;
}

/** Whether `needed` successes are still possible with `failed` of `total` replies lost. */
export function stillPossible(total: number, failed: number, needed: number): boolean {
  return total - failed >= needed;
}
