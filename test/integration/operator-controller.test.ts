import type * as k8s from "@kubernetes/client-node";
import { performance } from "node:perf_hooks";
import { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isNotFound } from "../../src/kube/errors.ts";
import { Informer } from "../../src/kube/informer.ts";
import { Controller } from "../../src/operator/controller.ts";
import { parseKey } from "../../src/operator/keys.ts";
import { createLogger } from "../../src/operator/logger.ts";
import { OperatorMetrics } from "../../src/operator/metrics.ts";
import { ExponentialBackoff } from "../../src/operator/rate-limiter.ts";
import { deleteNamespace, eventually, freshNamespace, testClient, testKubeConfig } from "../support/kube.ts";

// A Controller fed by a real Informer: whatever sequence of creates, updates and deletes happens,
// the reconciler — which reads the current state itself — ends on the final state of every key,
// never runs twice at once for one key, and retries a failing key with growing delays.

const client = testClient();
let namespace: string;

beforeAll(async () => {
  namespace = await freshNamespace(client, "op-controller");
});
afterAll(async () => {
  await deleteNamespace(client, namespace);
});

const configMaps = { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true };

function informerFor(suite: string): Informer<k8s.V1ConfigMap> {
  return new Informer<k8s.V1ConfigMap>(testKubeConfig(), {
    resource: configMaps,
    namespace,
    labelSelector: `suite=${suite}`,
  });
}

const create = (name: string, suite: string, value: string) =>
  client.core.createNamespacedConfigMap({
    namespace,
    body: { metadata: { name, labels: { suite } }, data: { value } },
  });

/** Collects the JSON lines a logger writes. */
function capturedLogger() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      callback();
    },
  });
  return { log: createLogger({ level: "info", destination }), lines };
}

describe("Controller with an Informer", () => {
  it("converges on the final state of every key and never reconciles one key concurrently", async () => {
    const names = ["cm-0", "cm-1", "cm-2", "cm-3", "cm-4", "cm-5"];
    // Objects that exist before the controller starts reach it through the informer's cache.
    await Promise.all(names.map((n) => create(n, "converge", "0")));

    const observed = new Map<string, string>();
    const inFlight = new Set<string>();
    const overlaps: string[] = [];
    let parallel = 0;
    let maxParallel = 0;
    const controller = new Controller({
      name: "converge",
      kind: "ConfigMap",
      concurrency: 4,
      log: createLogger({ level: "warn" }),
      reconcile: async (key) => {
        if (inFlight.has(key)) overlaps.push(key);
        inFlight.add(key);
        maxParallel = Math.max(maxParallel, ++parallel);
        try {
          const { namespace: ns, name } = parseKey(key);
          let value = "absent";
          try {
            const cm = await client.core.readNamespacedConfigMap({ name, namespace: ns! });
            value = cm.data?.value ?? "";
          } catch (err) {
            if (!isNotFound(err)) throw err;
          }
          await sleep(30); // widen the window in which a second run of the same key could start
          observed.set(name, value);
        } finally {
          parallel--;
          inFlight.delete(key);
        }
      },
    });
    const informer = informerFor("converge");
    controller.watch(informer);
    await informer.start();
    controller.start();

    for (let round = 1; round <= 5; round++) {
      await Promise.all(
        names.map((name) =>
          client.core.patchNamespacedConfigMap({
            name,
            namespace,
            body: [{ op: "replace", path: "/data/value", value: String(round) }],
          }),
        ),
      );
    }
    await client.core.deleteNamespacedConfigMap({ name: "cm-4", namespace });
    await client.core.deleteNamespacedConfigMap({ name: "cm-5", namespace });
    await create("cm-6", "converge", "late");

    const expected = {
      "cm-0": "5",
      "cm-1": "5",
      "cm-2": "5",
      "cm-3": "5",
      "cm-4": "absent",
      "cm-5": "absent",
      "cm-6": "late",
    };
    await eventually("the reconciler to see the final state", () => {
      const now = Object.fromEntries([...observed].sort(([a], [b]) => a.localeCompare(b)));
      return (
        JSON.stringify(now) === JSON.stringify(expected) &&
        inFlight.size === 0 &&
        controller.queueDepth() === 0
      );
    });
    expect(overlaps).toEqual([]);
    expect(maxParallel).toBeGreaterThan(1); // different keys did run at once
    expect(await controller.stop()).toBe(true);
    informer.stop();
  });

  it("retries a failing key with exponential backoff, logging the error with the key", async () => {
    await create("flaky", "retry", "v");
    const { log, lines } = capturedLogger();
    const metrics = new OperatorMetrics({ defaultMetrics: false });
    const attempts: { at: number; retries: number }[] = [];
    const base = 200;
    const controller = new Controller({
      name: "retry",
      kind: "ConfigMap",
      log,
      metrics: metrics.controller,
      rateLimiter: new ExponentialBackoff(base, 10_000),
      reconcile: async (key, { retries }) => {
        await client.core.readNamespacedConfigMap({ name: parseKey(key).name, namespace });
        attempts.push({ at: performance.now(), retries });
        if (attempts.length <= 3) throw new Error(`attempt ${attempts.length} fails`);
      },
    });
    const informer = informerFor("retry");
    controller.watch(informer);
    await informer.start();
    controller.start();

    await eventually("four attempts", () => attempts.length >= 4, 30_000);
    await sleep(500);
    expect(attempts.map((a) => a.retries)).toEqual([0, 1, 2, 3]); // the 4th succeeded: no 5th
    const gaps = attempts.slice(1).map((a, i) => a.at - attempts[i]!.at);
    // Each retry waited at least its backoff: 200, 400, 800 ms (timers never fire early).
    gaps.forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual(base * 2 ** i - 1));

    const errors = lines.filter((l) => l.msg === "reconcile failed; retrying with backoff");
    expect(errors).toHaveLength(3);
    expect(errors[0]).toMatchObject({
      controller: "retry",
      kind: "ConfigMap",
      namespace,
      name: "flaky",
      key: `${namespace}/flaky`,
      reason: "attempt 1 fails",
    });
    const text = await metrics.registry.metrics();
    expect(text).toContain('understudy_reconcile_errors_total{controller="retry"} 3');
    expect(text).toContain('understudy_reconcile_total{controller="retry",result="success"} 1');
    expect(text).toMatch(
      /understudy_reconcile_duration_seconds_count\{controller="retry",result="error"\} 3/,
    );
    expect(text).toContain('understudy_workqueue_depth{controller="retry"} 0');
    // Every reconcile (3 failures, 1 success) was handed out once from the routine lane.
    expect(text).toMatch(
      /understudy_workqueue_queue_duration_seconds_count\{controller="retry",lane="routine"\} 4/,
    );
    await controller.stop();
    informer.stop();
  });
});
