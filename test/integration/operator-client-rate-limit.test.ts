import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeClient, mergePatchOptions } from "../../src/kube/client.ts";
import { Informer } from "../../src/kube/informer.ts";
import { RateLimitedKubeConfig } from "../../src/operator/client-rate-limit.ts";
import { EventRecorder } from "../../src/operator/events.ts";
import { TokenBucket } from "../../src/operator/rate-limiter.ts";
import { CountingBucket } from "../support/counting-bucket.ts";
import { deleteNamespace, freshNamespace, testClient, testKubeConfig } from "../support/kube.ts";

// The client-side QPS limit covers every way the operator calls the API: the generated clients
// (also with per-call options such as a merge-patch content type), the generic object client, JSON
// patches and the informers' lists.

const admin = testClient();
let namespace: string;

beforeAll(async () => {
  namespace = await freshNamespace(admin, "op-ratelimit");
});
afterAll(async () => {
  await deleteNamespace(admin, namespace);
});

describe("RateLimitedKubeConfig", () => {
  it("takes a token for every request, whichever client sends it", async () => {
    const bucket = new CountingBucket(1000, 1000);
    const kc = new RateLimitedKubeConfig(testKubeConfig(), bucket);
    const client = new KubeClient(kc, "rate-limit-test");
    const header = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "limited", namespace } };
    const tokensFor = async (call: () => Promise<unknown>) => {
      const before = bucket.taken;
      await call();
      return bucket.taken - before;
    };

    expect(
      await tokensFor(() =>
        client.core.createNamespacedConfigMap({ namespace, body: { metadata: { name: "limited" } } }),
      ),
    ).toBe(1);
    expect(
      await tokensFor(() =>
        client.core.patchNamespacedConfigMap(
          { name: "limited", namespace, body: { data: { a: "1" } } },
          mergePatchOptions,
        ),
      ),
    ).toBe(1);
    expect(await tokensFor(() => client.coordination.listNamespacedLease({ namespace }))).toBe(1);
    // The generic clients may first ask discovery where the kind lives: that is a request too.
    expect(await tokensFor(() => client.objects.read(header))).toBeGreaterThanOrEqual(1);
    expect(await tokensFor(() => client.mergePatch(header, { data: { b: "2" } }))).toBe(1);
    expect(
      await tokensFor(() => client.jsonPatch(header, [{ op: "add", path: "/data/c", value: "3" }])),
    ).toBeGreaterThanOrEqual(1);
    const informer = new Informer(kc, {
      resource: { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true },
      namespace,
    });
    expect(await tokensFor(() => informer.start())).toBeGreaterThanOrEqual(1);
    informer.stop();

    const cm = await admin.core.readNamespacedConfigMap({ name: "limited", namespace });
    expect(cm.data).toEqual({ a: "1", b: "2", c: "3" });
  });

  it("makes requests beyond the burst wait for their token", async () => {
    const bucket = new CountingBucket(20, 3);
    const client = new KubeClient(new RateLimitedKubeConfig(testKubeConfig(), bucket));
    await Promise.all(Array.from({ length: 3 }, () => client.core.listNamespacedConfigMap({ namespace })));
    expect(bucket.delayed).toBe(0);
    await Promise.all(Array.from({ length: 4 }, () => client.core.listNamespacedConfigMap({ namespace })));
    expect(bucket.taken).toBe(7);
    expect(bucket.delayed).toBeGreaterThanOrEqual(1);
  });

  it.each([
    [true, "goes before the routine requests waiting"],
    [false, "waits its turn with the lanes turned off"],
  ])("serves a request made inside urgent() first (lanes %s): it %s", async (lanes) => {
    // 10 QPS, burst 1: the first routine request takes the token, the others queue 100 ms apart.
    const kc = new RateLimitedKubeConfig(testKubeConfig(), new TokenBucket(10, 1), { lanes });
    const client = new KubeClient(kc, "rate-limit-test");
    const finished: string[] = [];
    const list = (name: string) =>
      client.core.listNamespacedConfigMap({ namespace }).then(() => finished.push(name));
    const routine = Array.from({ length: 5 }, (_, i) => list(`routine-${i}`));
    await new Promise((resolve) => setImmediate(resolve));
    // Through the generic client and a helper's own promise chain: the lane follows the async context.
    const urgent = kc.urgent(async () => {
      await new Promise((resolve) => setImmediate(resolve));
      await list("urgent");
    });
    await Promise.all([...routine, urgent]);
    if (lanes) expect(finished.indexOf("urgent")).toBeLessThanOrEqual(1);
    else expect(finished.indexOf("urgent")).toBe(5);
  });

  it("writes an Event recorded inside urgent() in the routine lane, as the manager's recorder does", async () => {
    // 10 QPS, burst 1, as above: the routine requests queue 100 ms apart.
    const kc = new RateLimitedKubeConfig(testKubeConfig(), new TokenBucket(10, 1), { lanes: true });
    const client = new KubeClient(kc, "rate-limit-test");
    const recorder = new EventRecorder({ client, detach: (write) => kc.routine(write) });
    const finished: string[] = [];
    const list = (name: string) =>
      client.core.listNamespacedConfigMap({ namespace }).then(() => finished.push(name));
    const routine = Array.from({ length: 3 }, (_, i) => list(`routine-${i}`));
    await new Promise((resolve) => setImmediate(resolve));
    const involved = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "lanes", namespace } };
    const urgent = kc.urgent(async () => {
      const event = recorder
        .record(involved, "Normal", "LaneTest", "written in the routine lane")
        .then(() => finished.push("event"));
      await list("urgent");
      await event;
    });
    await Promise.all([...routine, urgent]);
    expect(finished.indexOf("urgent")).toBeLessThanOrEqual(1);
    expect(finished.at(-1)).toBe("event");
    const events = await admin.core.listNamespacedEvent({ namespace });
    expect(events.items.filter((e) => e.reason === "LaneTest").map((e) => e.message)).toEqual([
      "written in the routine lane",
    ]);
  });
});
