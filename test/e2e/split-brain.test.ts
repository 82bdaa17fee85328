// Failure: split brain. The head pod is made NotReady while its process keeps running and serving:
// its node is cut off from the API server but not from clients, so whatever the operator does to
// the pod, the old head lives on, and some clients keep sending it traffic. The new head's epoch
// fences it: once the new head is ready, the old one must never get a write acknowledged again.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makePodNotReady } from "../support/kube.ts";
import { commonFailures, defaultClients, runScenario, RUNS, type Fault } from "./support/scenario.ts";
import { Stage } from "./support/stage.ts";

let stage: Stage;
beforeAll(async () => {
  stage = await Stage.create({ prefix: "e2e-split" });
});
afterAll(async () => {
  await stage?.teardown();
});

const fault: Fault = {
  name: "split-brain",
  // Four clients follow the head as usual; two stay pinned to the old head's address throughout.
  clients: (ctx) => [
    ...defaultClients(ctx).slice(0, 4),
    ...Array.from({ length: 2 }, () => ({
      resolve: async () => ({ url: ctx.headUrl, serviceUid: ctx.before.metadata!.uid!, pod: ctx.headPod }),
      label: "pinned",
      maxAttempts: 10,
    })),
  ],
  async inject(ctx) {
    ctx.stage.runner.partition(ctx.headPod, ctx.stage.serviceNs);
    await makePodNotReady(ctx.stage.client, ctx.stage.serviceNs, ctx.headPod);
  },
};

/** Twice the other scenarios' runs: split brain is where an old head's writes race the new head's. */
const SPLIT_BRAIN_RUNS = 2 * RUNS;

describe("split brain: the old head keeps running and serving pinned clients", () => {
  for (let run = 0; run < SPLIT_BRAIN_RUNS; run++) {
    it(`run ${run + 1}/${SPLIT_BRAIN_RUNS}: the old head is fenced; no acknowledged write lost, no stale read`, async () => {
      const report = await runScenario(stage, fault, run);
      expect(commonFailures(report)).toEqual([]);
      // The old head was alive and serving, as itself, when the new head became ready (the operator
      // removes its pod later, at OldHeadFenced, which a partitioned node never hears of).
      const serviceUid = report.serviceUid;
      expect(report.oldHeadAtNewHeadReady, "the old head when the new one became ready").toMatchObject({
        running: true,
        identity: { service: serviceUid, role: "head", pod: report.oldHeadPod },
      });
      expect(report.lastFailover.fromPod).toBe(report.oldHeadPod);
      expect(Number.isFinite(report.newHeadReadyAt)).toBe(true);
      // The pinned clients did reach the old head, and it refused them once fenced.
      const pinned = Object.entries(report.outcomes).filter(([k]) => k.startsWith("pinned:"));
      expect(pinned.some(([k, n]) => k.endsWith(":ok") && n > 0)).toBe(true);
      expect(pinned.some(([k, n]) => k.endsWith(":not_applied") && n > 0)).toBe(true);
      const lateAcks = report.writeAcks.filter((a) => a.label === "pinned" && a.call > report.newHeadReadyAt);
      expect(lateAcks).toEqual([]);
    });
  }
});
