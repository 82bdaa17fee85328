import type * as k8s from "@kubernetes/client-node";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventRecorder } from "../../src/operator/events.ts";
import { createLogger } from "../../src/operator/logger.ts";
import { deleteNamespace, eventually, freshNamespace, testClient } from "../support/kube.ts";

// Events the recorder writes are visible through the API, like kubectl describe shows them;
// repeats count up on one Event, and a failed write never reaches the caller.

const client = testClient();
let namespace: string;
let subject: k8s.V1ConfigMap;

beforeAll(async () => {
  namespace = await freshNamespace(client, "op-events");
  const cm = await client.core.createNamespacedConfigMap({
    namespace,
    body: { metadata: { name: "subject" } },
  });
  subject = { ...cm, apiVersion: "v1", kind: "ConfigMap" };
});
afterAll(async () => {
  await deleteNamespace(client, namespace);
});

async function eventsFor(name: string): Promise<k8s.CoreV1Event[]> {
  const list = await client.core.listNamespacedEvent({
    namespace,
    fieldSelector: `involvedObject.name=${name}`,
  });
  return list.items;
}

describe("EventRecorder", () => {
  it("writes an Event naming the object, and counts repeats on the same Event", async () => {
    const recorder = new EventRecorder({ client, component: "understudy-test", instance: "replica-1" });
    await recorder.record(subject, "Normal", "SlotGranted", "granted slot zone-a/0");
    const [event] = await eventsFor("subject");
    expect(event).toMatchObject({
      type: "Normal",
      reason: "SlotGranted",
      message: "granted slot zone-a/0",
      count: 1,
      source: { component: "understudy-test" },
      reportingComponent: "understudy-test",
      reportingInstance: "replica-1",
      involvedObject: {
        apiVersion: "v1",
        kind: "ConfigMap",
        name: "subject",
        namespace,
        uid: subject.metadata!.uid,
      },
    });

    await recorder.record(subject, "Normal", "SlotGranted", "granted slot zone-a/0");
    await recorder.record(subject, "Normal", "SlotGranted", "granted slot zone-a/0");
    const counted = await eventsFor("subject");
    expect(counted).toHaveLength(1);
    expect(counted[0]!.count).toBe(3);
    expect(counted[0]!.metadata!.name).toBe(event!.metadata!.name);
    expect(new Date(counted[0]!.lastTimestamp!).getTime()).toBeGreaterThanOrEqual(
      new Date(event!.firstTimestamp!).getTime(),
    );

    // A different reason or type is a different Event.
    await recorder.record(subject, "Warning", "SlotRevoked", "revoked for a failover");
    const all = await eventsFor("subject");
    expect(all.map((e) => `${e.type}/${e.reason}/${e.count}`).sort()).toEqual([
      "Normal/SlotGranted/3",
      "Warning/SlotRevoked/1",
    ]);
  });

  it("counts concurrent repeats instead of racing to create several Events", async () => {
    const cm = await client.core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: "busy" } },
    });
    const recorder = new EventRecorder({ client });
    const busy = { ...cm, apiVersion: "v1", kind: "ConfigMap" };
    await Promise.all(Array.from({ length: 5 }, () => recorder.record(busy, "Normal", "Tick", "again")));
    const events = await eventsFor("busy");
    expect(events).toHaveLength(1);
    expect(events[0]!.count).toBe(5);
  });

  it("starts a new Event once the window has passed", async () => {
    let now = Date.now();
    const cm = await client.core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: "slow" } },
    });
    const recorder = new EventRecorder({ client, dedupWindowMs: 60_000, now: () => now });
    const slow = { ...cm, apiVersion: "v1", kind: "ConfigMap" };
    await recorder.record(slow, "Normal", "Tick", "again");
    now += 61_000;
    await recorder.record(slow, "Normal", "Tick", "again");
    expect((await eventsFor("slow")).map((e) => e.count)).toEqual([1, 1]);
  });

  it("the fire-and-forget forms write too", async () => {
    const recorder = new EventRecorder({ client });
    recorder.warning(subject, "HeadUnreachable", "probe failed 3 times");
    await eventually("the warning Event", async () =>
      (await eventsFor("subject")).some((e) => e.reason === "HeadUnreachable" && e.type === "Warning"),
    );
  });

  it("never throws when the write fails, and logs it", async () => {
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _e, callback) {
        for (const l of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(l));
        callback();
      },
    });
    const recorder = new EventRecorder({ client, log: createLogger({ destination }) });
    const ghost = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "ghost", namespace: "no-such-namespace-for-events" },
    };
    await expect(recorder.record(ghost, "Warning", "Nope", "cannot be written")).resolves.toBeUndefined();
    expect(() => recorder.normal(ghost, "Nope", "also not")).not.toThrow();
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: "could not record event", name: "ghost", reason: "Nope" }),
    );
  });
});
