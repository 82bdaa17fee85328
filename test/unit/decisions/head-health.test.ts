import { describe, expect, it } from "vitest";
import {
  assessHeadHealth,
  judgeProbeAnswer,
  recordProbe,
  type HeadHealthInput,
  type HeadPodView,
  type ProbeOutcome,
  type ProbeRecord,
} from "../../../src/decisions/head-health.ts";
import { node } from "./fixtures.ts";

const NOW = 100_000;
const runningPod: HeadPodView = {
  name: "db-head-1",
  phase: "Running",
  ready: true,
  createdAt: 0,
  node: "n1",
};
const healthyNode = node("n1", "a", { lease: { renewTime: NOW - 5_000, leaseDurationSeconds: 40 } });

function assess(overrides: Partial<HeadHealthInput>) {
  return assessHeadHealth({
    now: NOW,
    recordedHead: "db-head-1",
    pod: runningPod,
    node: healthyNode,
    probe: { consecutiveFailures: 0, failureThreshold: 3 },
    notReadyGraceMs: 2000,
    ...overrides,
  });
}

describe("assessHeadHealth", () => {
  it("finds a Running, Ready head on a healthy node healthy", () => {
    expect(assess({})).toEqual({ healthy: true, starting: false });
  });

  it("NoHead when there is no pod and none on record", () => {
    expect(assess({ pod: undefined, recordedHead: undefined })).toMatchObject({
      healthy: false,
      reason: "NoHead",
      detectedAt: NOW,
    });
  });

  it("PodDeleted when the recorded pod is gone or terminating", () => {
    expect(assess({ pod: undefined })).toMatchObject({ reason: "PodDeleted" });
    expect(assess({ pod: { ...runningPod, deletionTimestamp: 99_000 } })).toMatchObject({
      reason: "PodDeleted",
      since: 99_000,
    });
  });

  it("PodFailed when the pod terminated", () => {
    expect(assess({ pod: { ...runningPod, phase: "Failed" } })).toMatchObject({ reason: "PodFailed" });
    expect(assess({ pod: { ...runningPod, phase: "Succeeded" } })).toMatchObject({ reason: "PodFailed" });
  });

  it("NodeNotReady when the node is gone or not Ready", () => {
    expect(assess({ node: undefined })).toMatchObject({ reason: "NodeNotReady" });
    expect(assess({ node: { ...healthyNode, ready: false, readyTransitionAt: 90_000 } })).toMatchObject({
      reason: "NodeNotReady",
      since: 90_000,
    });
  });

  it("NodeLeaseExpired as soon as the node's heartbeat lease is older than its duration", () => {
    const stale = { ...healthyNode, lease: { renewTime: NOW - 41_000, leaseDurationSeconds: 40 } };
    expect(assess({ node: stale })).toMatchObject({ reason: "NodeLeaseExpired", since: NOW - 1_000 });
    const justInTime = { ...healthyNode, lease: { renewTime: NOW - 40_000, leaseDurationSeconds: 40 } };
    expect(assess({ node: justInTime })).toEqual({ healthy: true, starting: false });
  });

  it("ProbeFailed when consecutive failures reach the threshold", () => {
    expect(assess({ probe: { consecutiveFailures: 2, failureThreshold: 3 } }).healthy).toBe(true);
    expect(
      assess({ probe: { consecutiveFailures: 3, failureThreshold: 3, firstFailureAt: 97_000 } }),
    ).toMatchObject({
      reason: "ProbeFailed",
      since: 97_000,
    });
  });

  it("PodNotReady once a Running pod has been not Ready for the grace period", () => {
    expect(assess({ pod: { ...runningPod, ready: false, readyTransitionAt: NOW - 1999 } }).healthy).toBe(
      true,
    );
    expect(assess({ pod: { ...runningPod, ready: false, readyTransitionAt: NOW - 2000 } })).toMatchObject({
      reason: "PodNotReady",
      since: NOW - 2000,
    });
  });

  it("a Pending pod is starting, not failed, unless its node failed", () => {
    const pending = { ...runningPod, phase: "Pending" as const, ready: false };
    expect(assess({ pod: pending, probe: { consecutiveFailures: 9, failureThreshold: 3 } })).toEqual({
      healthy: true,
      starting: true,
    });
    expect(assess({ pod: pending, node: { ...healthyNode, ready: false } })).toMatchObject({
      reason: "NodeNotReady",
    });
  });

  it("reports the most definitive evidence first", () => {
    const everything = assess({
      pod: { ...runningPod, ready: false, deletionTimestamp: 1 },
      node: { ...healthyNode, ready: false },
      probe: { consecutiveFailures: 9, failureThreshold: 3 },
    });
    expect(everything).toMatchObject({ reason: "PodDeleted" });
    expect(
      assess({
        node: { ...healthyNode, ready: false },
        probe: { consecutiveFailures: 9, failureThreshold: 3 },
      }),
    ).toMatchObject({
      reason: "NodeNotReady",
    });
  });
});

describe("judging a probe answer by whom it names", () => {
  const expected = { service: "uid-kv", pod: "kv-head-4", epoch: 4 };
  const own = { service: "uid-kv", role: "head", pod: "kv-head-4", epoch: 4 } as const;

  it("ok only when the head answers as itself with a success status", () => {
    expect(judgeProbeAnswer(expected, { status: 200, identity: own })).toEqual({ kind: "ok" });
    expect(judgeProbeAnswer(expected, { status: 503, identity: own })).toEqual({ kind: "failed" });
    expect(judgeProbeAnswer(expected, undefined)).toEqual({ kind: "failed" });
  });

  it.each([
    [
      "another service's head",
      { ...own, service: "uid-other", pod: "other-head-2", epoch: 2 },
      "service uid-other",
    ],
    ["an older head of this service", { ...own, pod: "kv-head-3", epoch: 3 }, "pod kv-head-3, not kv-head-4"],
    ["a server", { service: "uid-kv", role: "server", pod: "kv-server-zone-a-0" }, "role server, not head"],
    ["a process naming nobody", undefined, "names no understudy identity"],
  ] as const)("an impostor, whatever its status: %s", (_what, identity, message) => {
    const outcome = judgeProbeAnswer(expected, { status: 200, identity });
    expect(outcome.kind).toBe("impostor");
    expect((outcome as { message: string }).message).toContain(message);
  });
});

describe("recording probes", () => {
  const fresh: ProbeRecord = { consecutiveFailures: 0, failureThreshold: 2 };
  const run = (outcomes: ProbeOutcome[], from = fresh) =>
    outcomes.reduce((record, outcome, i) => recordProbe(record, outcome, 1000 + i), from);
  const impostor: ProbeOutcome = { kind: "impostor", message: "answered as service uid-other, not uid-kv" };

  it("plain failures count only once the head answered as itself", () => {
    expect(run([{ kind: "failed" }, { kind: "failed" }])).toEqual(fresh);
    expect(run([{ kind: "ok" }, { kind: "failed" }, { kind: "failed" }])).toEqual({
      consecutiveFailures: 2,
      failureThreshold: 2,
      answered: true,
      firstFailureAt: 1001,
    });
  });

  it("an impostor's answers count from the first, and fail the head with the reason", () => {
    const record = run([impostor, impostor]);
    expect(record).toMatchObject({
      consecutiveFailures: 2,
      firstFailureAt: 1000,
      impostor: impostor.message,
    });
    expect(record.answered).toBeUndefined();
    expect(assess({ probe: record })).toMatchObject({
      healthy: false,
      reason: "ProbeFailed",
      since: 1000,
      message: expect.stringContaining(
        "another process answers at its address (answered as service uid-other",
      ),
    });
  });

  it("the head answering as itself again clears the count and the impostor", () => {
    expect(run([impostor, { kind: "ok" }])).toEqual({
      consecutiveFailures: 0,
      failureThreshold: 2,
      answered: true,
    });
  });
});
