import { describe, expect, it } from "vitest";
import { failoverPause } from "../../../src/decisions/failover-pause.ts";

describe("failoverPause", () => {
  it("is paused by the service's own spec first, then by its pool's", () => {
    expect(failoverPause(false, { name: "p", failoverPaused: false })).toBeUndefined();
    expect(failoverPause(false, undefined)).toBeUndefined();
    expect(failoverPause(true, { name: "p", failoverPaused: true })).toMatchObject({
      by: "service",
      reason: "ServicePaused",
    });
    const byPool = failoverPause(false, { name: "p", failoverPaused: true });
    expect(byPool).toMatchObject({ by: "pool", reason: "PoolPaused" });
    expect(byPool!.message).toContain("pool p");
  });
});
