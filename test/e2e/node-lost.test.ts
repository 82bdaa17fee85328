// Failure: the head's node is lost. The node reports NotReady and everything on the machine dies
// (the head, and the zone's server if it shares the node); the operator must not wait for the node
// controller's eviction (300 s by default) but fail over within its own probe settings.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeNodeNotReady } from "../support/kube.ts";
import { commonFailures, runScenario, RUNS, type Fault } from "./support/scenario.ts";
import { secureByDefault as secure, Stage } from "./support/stage.ts";

let stage: Stage;
beforeAll(async () => {
  stage = await Stage.create({ prefix: secure ? "e2e-node-tls" : "e2e-node" });
});
afterAll(async () => {
  await stage?.teardown();
});

const fault: Fault = {
  name: "node-lost",
  async inject(ctx) {
    ctx.stage.touched(ctx.headNode);
    await Promise.all([
      ctx.stage.runner.killNode(ctx.headNode),
      makeNodeNotReady(ctx.stage.client, ctx.headNode),
    ]);
  },
};

describe(`the head's node lost${secure ? " (TLS and client authentication on)" : ""}`, () => {
  for (let run = 0; run < RUNS; run++) {
    it(`run ${run + 1}/${RUNS}: fails over off the lost node; no acknowledged write lost, no stale read`, async () => {
      const report = await runScenario(stage, fault, run);
      expect(commonFailures(report)).toEqual([]);
      expect(report.lastFailover.fromPod).toBe(report.oldHeadPod);
      expect(report.lastFailover.toNode).not.toBe(report.oldHeadNode);
      expect(report.lastFailover.toZone).not.toBe("zone-a");
    });
  }
});
