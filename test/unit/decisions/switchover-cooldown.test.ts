import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { switchoverCooldown } from "../../../src/decisions/switchover-cooldown.ts";

const ENDED = 1_700_000_000_000;
const COOLDOWN = 300_000;

describe("switchoverCooldown", () => {
  it("lets a switchover that would revoke a tenant start only once the cooldown since the last failover passed", () => {
    const input = { lastFailoverFinishedAt: ENDED, cooldownMs: COOLDOWN, revokesTenant: true };
    expect(switchoverCooldown({ ...input, now: ENDED + 1000 })).toEqual({
      kind: "wait",
      notBefore: ENDED + COOLDOWN,
      waitMs: COOLDOWN - 1000,
    });
    expect(switchoverCooldown({ ...input, now: ENDED + COOLDOWN - 1 })).toEqual({
      kind: "wait",
      notBefore: ENDED + COOLDOWN,
      waitMs: 1,
    });
    expect(switchoverCooldown({ ...input, now: ENDED + COOLDOWN })).toEqual({ kind: "start" });
    expect(switchoverCooldown({ ...input, now: ENDED + COOLDOWN + 5000 })).toEqual({ kind: "start" });
  });

  it("never delays a switchover onto a free slot, a first switchover, or a cooldown of 0", () => {
    const now = ENDED + 1;
    expect(
      switchoverCooldown({ now, lastFailoverFinishedAt: ENDED, cooldownMs: COOLDOWN, revokesTenant: false }),
    ).toEqual({ kind: "start" });
    expect(switchoverCooldown({ now, cooldownMs: COOLDOWN, revokesTenant: true })).toEqual({ kind: "start" });
    expect(
      switchoverCooldown({ now, lastFailoverFinishedAt: ENDED, cooldownMs: 0, revokesTenant: true }),
    ).toEqual({ kind: "start" });
  });

  it("waits exactly until the end of the last failover plus the cooldown, never longer", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 86_400_000 }),
        fc.integer({ min: -1_000_000, max: 100_000_000 }),
        fc.boolean(),
        (cooldownMs, sinceEnd, revokesTenant) => {
          const now = ENDED + sinceEnd;
          const decision = switchoverCooldown({
            now,
            lastFailoverFinishedAt: ENDED,
            cooldownMs,
            revokesTenant,
          });
          const inside = revokesTenant && now < ENDED + cooldownMs;
          expect(decision.kind).toBe(inside ? "wait" : "start");
          if (decision.kind === "wait") {
            expect(decision.notBefore).toBe(ENDED + cooldownMs);
            expect(now + decision.waitMs).toBe(decision.notBefore);
            expect(decision.waitMs).toBeGreaterThan(0);
          }
        },
      ),
    );
  });
});
