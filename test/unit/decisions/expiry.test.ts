import { describe, expect, it } from "vitest";
import { claimExpiresAt, findExpiredClaims } from "../../../src/decisions/expiry.ts";
import { claim } from "./fixtures.ts";

describe("findExpiredClaims", () => {
  const bound = (name: string, boundAt: number, maxDurationSeconds?: number) =>
    claim(name, {
      phase: "Bound",
      boundAt,
      ...(maxDurationSeconds !== undefined ? { maxDurationSeconds } : {}),
    });

  it("returns bound claims past maxDurationSeconds, earliest first, and the next deadline", () => {
    const plan = findExpiredClaims(
      [bound("late", 0, 50), bound("early", 0, 10), bound("later", 0, 200), bound("forever", 0)],
      60_000,
    );
    expect(plan).toEqual({
      expired: [
        { claim: { namespace: "t", name: "early" }, expiresAt: 10_000 },
        { claim: { namespace: "t", name: "late" }, expiresAt: 50_000 },
      ],
      nextExpiryAt: 200_000,
    });
  });

  it("treats the deadline itself as expired", () => {
    expect(findExpiredClaims([bound("x", 1000, 1)], 2000).expired).toHaveLength(1);
    expect(findExpiredClaims([bound("x", 1000, 1)], 1999)).toEqual({ expired: [], nextExpiryAt: 2000 });
  });

  it("never expires claims that are not Bound", () => {
    const others = (["Pending", "Revoking", "Revoked", "Expired"] as const).map((phase) =>
      claim(phase, { phase, boundAt: 0, maxDurationSeconds: 1 }),
    );
    expect(findExpiredClaims(others, 1e9)).toEqual({ expired: [] });
  });

  it("has no deadline without a limit or a bind time", () => {
    expect(claimExpiresAt(claim("x", { maxDurationSeconds: 5 }))).toBeUndefined();
    expect(claimExpiresAt(claim("x", { boundAt: 5 }))).toBeUndefined();
  });
});
