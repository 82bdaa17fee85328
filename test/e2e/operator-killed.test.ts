// Failure: the operator is killed during a failover. The head process dies (kill -9, no restart),
// the operator starts failing over, and is killed right after the failover's first step is in
// status; a new operator process resumes from status and finishes, doing nothing twice: the epoch
// goes up by one and the service holds exactly one slot (both checked by commonFailures). The long
// run also crashes the operator at each later step (UNDERSTUDY_CRASH_AT), right after the step is
// recorded and before its effects.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import { eventually } from "../support/kube.ts";
import { commonFailures, runScenario, RUNS, type Fault, type FaultContext } from "./support/scenario.ts";
import { LONG, Stage } from "./support/stage.ts";

let stage: Stage;
beforeAll(async () => {
  stage = await Stage.create({ prefix: "e2e-operator" });
});
afterAll(async () => {
  await stage?.teardown();
});

const killHead = async (ctx: FaultContext) => {
  await ctx.stage.runner.kill(ctx.headPod, "SIGKILL", { namespace: ctx.stage.serviceNs, restart: false });
};

/** Kill -9 of the operator as soon as status shows the failover under way; then a new one starts. */
const killedAfterStart: Fault = {
  name: "operator-killed",
  inject: killHead,
  async duringFailover(ctx) {
    const step = await eventually(
      "the failover to start",
      () => ctx.directory.object()?.status?.failover?.step,
      60_000,
      5,
    );
    ctx.stage.controllers.process.kill("SIGKILL");
    await ctx.stage.controllers.exited;
    console.log(`[e2e] operator process killed at failover step ${step}`);
    await sleep(300);
    await ctx.stage.startControlPlane();
  },
};

/** The operator exits at `step` (crash point) and is restarted without one. */
const crashedAt = (step: string): Fault => ({
  // A service name: a crash point's ":<n>" (the n-th effect after the step) becomes "-<n>".
  name: `operator-crash-${step.toLowerCase().replace(":", "-")}`,
  inject: killHead,
  async duringFailover(ctx) {
    const code = await Promise.race([ctx.stage.controllers.exited, sleep(60_000).then(() => "no crash")]);
    console.log(`[e2e] operator process exited with ${code} at crash point ${step}`);
    await ctx.stage.startControlPlane();
  },
});

describe("operator killed during a failover", () => {
  for (let run = 0; run < RUNS; run++) {
    it(`run ${run + 1}/${RUNS}: a restarted operator finishes the failover once; no acknowledged write lost`, async () => {
      const report = await runScenario(stage, killedAfterStart, run);
      expect(commonFailures(report)).toEqual([]);
    });
  }

  if (LONG) {
    // SlotChosen:4: the head pod created, Revoked and HeadStarted not yet recorded (one write).
    for (const step of ["SlotChosen", "SlotChosen:4", "HeadStarted", "RoutingSwitched", "OldHeadFenced"]) {
      it(`crash at ${step}: the restarted operator resumes and finishes once`, async () => {
        await stage.controllers.stop();
        await stage.startControlPlane({ UNDERSTUDY_CRASH_AT: step });
        const report = await runScenario(stage, crashedAt(step), 0);
        expect(commonFailures(report)).toEqual([]);
      });
    }
  }
});
