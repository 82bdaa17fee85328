// Failure: the head process is killed (kill -9) while its pod stays Running; the kubelet (here the
// pod runner) reports it not Ready and restarts the container, but a restarted head cannot take its
// own epoch back (the servers' epoch belongs to the killed process), so it never becomes Ready
// again: the operator's probe or the pod's readiness tells, whichever first.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { commonFailures, runScenario, RUNS, type Fault } from "./support/scenario.ts";
import { secureByDefault as secure, Stage } from "./support/stage.ts";

// UNDERSTUDY_E2E_SECURE=1: the same scenario with TLS required on every hop and client authentication.

let stage: Stage;
beforeAll(async () => {
  stage = await Stage.create({ prefix: secure ? "e2e-killed-tls" : "e2e-killed" });
});
afterAll(async () => {
  await stage?.teardown();
});

const fault: Fault = {
  name: "head-killed",
  async inject(ctx) {
    await ctx.stage.runner.kill(ctx.headPod, "SIGKILL", { namespace: ctx.stage.serviceNs });
  },
};

describe(`head process killed${secure ? " (TLS and client authentication on)" : ""}`, () => {
  for (let run = 0; run < RUNS; run++) {
    it(`run ${run + 1}/${RUNS}: fails over onto a slot in another zone with no acknowledged write lost and no stale read`, async () => {
      const report = await runScenario(stage, fault, run);
      expect(commonFailures(report)).toEqual([]);
      expect(report.lastFailover.fromPod).toBe(report.oldHeadPod);
      expect(report.lastFailover.fromZone).toBe("zone-a");
      expect(report.lastFailover.toZone).not.toBe("zone-a");
      if (run === 0) {
        // Every slot is leased: the lowest bid outside the failed zone is revoked (zone-b's, bid 20).
        expect(report.lastFailover.revokedClaim).toBe(`${stage.tenantNs}/tenant-zone-b-0`);
      }
    });
  }
});
