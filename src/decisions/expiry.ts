// Claims whose lease on a slot has run for their maximum duration.
import { compareStrings } from "./order.ts";
import type { ClaimRef, ClaimView } from "./types.ts";

interface ExpiredClaim {
  claim: ClaimRef;
  expiresAt: number;
}

export interface ExpiryPlan {
  /** Bound claims past their deadline, earliest deadline first. */
  expired: ExpiredClaim[];
  /** The next deadline still ahead, to requeue at; undefined when none. */
  nextExpiryAt?: number;
}

/** When a claim's lease expires: boundAt + maxDurationSeconds, or undefined when it has no limit. */
export function claimExpiresAt(claim: Pick<ClaimView, "maxDurationSeconds" | "boundAt">): number | undefined {
  if (claim.maxDurationSeconds === undefined || claim.boundAt === undefined) return undefined;
  return claim.boundAt + claim.maxDurationSeconds * 1000;
}

/**
 * Bound claims with a maxDurationSeconds whose deadline is at or before `now` (a deadline is
 * inclusive). Claims in other phases never expire: Pending holds nothing, and Revoking, Revoked and
 * Expired are already on their way out.
 */
export function findExpiredClaims(claims: readonly ClaimView[], now: number): ExpiryPlan {
  const expired: ExpiredClaim[] = [];
  let nextExpiryAt: number | undefined;
  for (const claim of claims) {
    if (claim.phase !== "Bound") continue;
    const expiresAt = claimExpiresAt(claim);
    if (expiresAt === undefined) continue;
    if (expiresAt <= now)
      expired.push({ claim: { namespace: claim.namespace, name: claim.name }, expiresAt });
    else if (nextExpiryAt === undefined || expiresAt < nextExpiryAt) nextExpiryAt = expiresAt;
  }
  expired.sort(
    (a, b) =>
      a.expiresAt - b.expiresAt ||
      compareStrings(a.claim.namespace, b.claim.namespace) ||
      compareStrings(a.claim.name, b.claim.name),
  );
  return nextExpiryAt === undefined ? { expired } : { expired, nextExpiryAt };
}
