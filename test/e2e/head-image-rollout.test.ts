// Not a failure: a new spec.head.image, rolled out as a planned switchover while clients write. The
// new head (next epoch, new image) starts on a pool slot, fences the servers and takes the routing
// once Ready; the old head is then deleted with its grace period. No acknowledged write may be lost
// and the history must stay linearizable, as for every failure scenario.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mergePatchOptions } from "../../src/kube/client.ts";
import { commonFailures, runScenario, RUNS, type Fault } from "./support/scenario.ts";
import { Stage } from "./support/stage.ts";
import { storageServices } from "./support/traffic.ts";

let stage: Stage;
beforeAll(async () => {
  stage = await Stage.create({ prefix: "e2e-rollout" });
});
afterAll(async () => {
  await stage?.teardown();
});

const NEW_IMAGE = "registry.example/understudy:next";

const fault: Fault = {
  name: "image-rollout",
  async inject(ctx) {
    await ctx.stage.client.custom.patchNamespacedCustomObject(
      {
        ...storageServices,
        namespace: ctx.stage.serviceNs,
        name: ctx.service,
        body: { spec: { head: { image: NEW_IMAGE } } },
      },
      mergePatchOptions,
    );
  },
};

describe("head image changed", () => {
  for (let run = 0; run < RUNS; run++) {
    it(`run ${run + 1}/${RUNS}: rolls the new image out as a switchover with no acknowledged write lost and no stale read`, async () => {
      const report = await runScenario(stage, fault, run);
      expect(commonFailures(report)).toEqual([]);
      expect(report.lastFailover.reason).toBe("ImageRollout");
      expect(report.lastFailover.fromPod).toBe(report.oldHeadPod);
      const head = await stage.client.core.readNamespacedPod({
        name: `${report.service}-head-${report.toEpoch}`,
        namespace: stage.serviceNs,
      });
      expect(head.spec!.containers[0]!.image).toBe(NEW_IMAGE);
    });
  }
});
