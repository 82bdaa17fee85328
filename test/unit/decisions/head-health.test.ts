import { describe, expect, it } from "vitest";
import {
  assessHeadHealth,
  type HeadHealthInput,
  type HeadPodView,
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
