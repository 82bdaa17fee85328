// Failure: a whole zone is lost. Every node of the head's zone reports NotReady and every process
// there dies, the zone's server included: the head moves to another zone and the two servers left
// still make a write quorum (W = 2 of R = 3).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeZoneNotReady, nodesInZone } from "../support/kube.ts";
import { commonFailures, runScenario, RUNS, type Fault } from "./support/scenario.ts";
import { secureByDefault as secure, Stage } from "./support/stage.ts";

let stage: Stage;
beforeAll(async () => {
  stage = await Stage.create({ prefix: secure ? "e2e-zone-tls" : "e2e-zone" });
});
afterAll(async () => {
  await stage?.teardown();
});

const fault: Fault = {
  name: "zone-lost",
  async inject(ctx) {
    const nodes = await nodesInZone(ctx.stage.client, ctx.headZone);
    for (const node of nodes) ctx.stage.touched(node);
    await Promise.all([
      ...nodes.map((node) => ctx.stage.runner.killNode(node)),
      makeZoneNotReady(ctx.stage.client, ctx.headZone),
    ]);
  },
};

describe(`a whole zone lost${secure ? " (TLS and client authentication on)" : ""}`, () => {
  for (let run = 0; run < RUNS; run++) {
    it(`run ${run + 1}/${RUNS}: the head moves to another zone; no acknowledged write lost, no stale read`, async () => {
      const report = await runScenario(stage, fault, run);
      expect(commonFailures(report)).toEqual([]);
      expect(report.lastFailover.fromZone).toBe("zone-a");
      expect(["zone-b", "zone-c"]).toContain(report.lastFailover.toZone);
    });
  }
});
