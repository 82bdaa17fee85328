import { describe, expect, it } from "vitest";
import {
  normalizedWorkloadPodSpec,
  planWorkload,
  type WorkloadObserved,
  type WorkloadPodView,
} from "../../../src/decisions/workload-pods.ts";
import { claimHolder, slot } from "./fixtures.ts";

const s0 = slot("a", 0, "a1", claimHolder("w"));
const s1 = slot("b", 0, "b1", claimHolder("w"));
const ok = { admitted: true as const };
const refused = { admitted: false as const, reason: "PodExceedsSlot" as const, message: "too big" };

function pod(name: string, overrides: Partial<WorkloadPodView> = {}): WorkloadPodView {
  return {
    name,
    createdAt: 1,
    gated: true,
    terminating: false,
    finished: false,
    admission: ok,
    ...overrides,
  };
}

function observed(overrides: Partial<WorkloadObserved> = {}): WorkloadObserved {
  return {
    now: 10_000,
    deleting: false,
    claimAdmission: ok,
    grace: { plannedGraceSeconds: 30, emergencyGraceSeconds: 2 },
    held: [],
    revoked: [],
    pods: [],
    slotsMax: 5,
    gang: false,
    expired: false,
    ...overrides,
  };
}

describe("planWorkload", () => {
  it("asks for a slot per waiting pod, up to spec.slots", () => {
    const pods = ["p1", "p2", "p3"].map((n) => pod(n));
    expect(planWorkload(observed({ pods })).slotsWanted).toBe(3);
    expect(planWorkload(observed({ pods, slotsMax: 2 })).slotsWanted).toBe(2);
  });

  it("gives held slots to waiting pods, oldest first, then lifts each gate once the pod is pinned", () => {
    const pods = [pod("young", { createdAt: 5 }), pod("old", { createdAt: 1 })];
    const plan = planWorkload(observed({ held: [s0], pods }));
    expect(plan.actions).toEqual([{ kind: "assign", pod: "old", slot: s0 }]);
    expect(plan.waiting).toBe(1);
    expect(plan.slotsWanted).toBe(1);
    const pinned = [pod("old", { slot: s0.leaseName }), pod("young", { createdAt: 5 })];
    expect(planWorkload(observed({ held: [s0], pods: pinned })).actions).toEqual([
      { kind: "ungate", pod: "old", slot: s0 },
    ]);
  });

  it("frees a held slot whose pod finished or went, unless a pod of the claim waits for it", () => {
    const done = pod("done", { slot: s0.leaseName, gated: false, finished: true });
    expect(planWorkload(observed({ held: [s0], pods: [done] })).actions).toEqual([
      { kind: "freeSlot", slot: s0 },
    ]);
    expect(planWorkload(observed({ held: [s0], pods: [] })).actions).toEqual([
      { kind: "freeSlot", slot: s0 },
    ]);
    expect(planWorkload(observed({ held: [s0], pods: [done, pod("next")] })).actions).toEqual([
      { kind: "assign", pod: "next", slot: s0 },
    ]);
  });

  it("keeps a slot while its pod is stopping: the pod goes first", () => {
    const stopping = pod("bye", { slot: s0.leaseName, gated: false, terminating: true });
    expect(planWorkload(observed({ held: [s0], pods: [stopping] })).actions).toEqual([]);
  });

  it("evicts a pod whose slot was taken back: the emergency grace for a failover, the planned one otherwise", () => {
    const onLost = (reason: string) =>
      planWorkload(
        observed({
          revoked: [{ leaseName: s1.leaseName, reason }],
          pods: [pod("p", { slot: s1.leaseName, gated: false })],
        }),
      ).actions;
    expect(onLost("Failover")).toEqual([{ kind: "evict", pod: "p", reason: "Failover", graceSeconds: 2 }]);
    expect(onLost("PoolShrunk")).toEqual([
      { kind: "evict", pod: "p", reason: "PoolShrunk", graceSeconds: 30 },
    ]);
    // One that was pinned but never ran goes at once (its affinity cannot be moved to another node).
    const pinnedOnly = planWorkload(
      observed({
        revoked: [{ leaseName: s1.leaseName, reason: "PoolShrunk" }],
        pods: [pod("p", { slot: s1.leaseName })],
      }),
    );
    expect(pinnedOnly.actions).toEqual([{ kind: "evict", pod: "p", reason: "PoolShrunk", graceSeconds: 0 }]);
  });

  it("never lets two pods run on one slot", () => {
    const first = pod("first", { slot: s0.leaseName, gated: false, createdAt: 1 });
    const second = pod("second", { slot: s0.leaseName, gated: false, createdAt: 2 });
    const plan = planWorkload(observed({ held: [s0], pods: [second, first] }));
    expect(plan.actions).toEqual([{ kind: "evict", pod: "second", reason: "SlotTaken", graceSeconds: 30 }]);
    expect(plan.podOnSlot.get(s0.leaseName)).toBe("first");
  });

  it("refuses a gated pod admission refuses, and revokes the slot of a running one that stops passing", () => {
    const plan = planWorkload(observed({ pods: [pod("big", { admission: refused })] }));
    expect(plan.refused).toEqual([{ pod: "big", reason: "PodExceedsSlot", message: "too big" }]);
    expect(plan.slotsWanted).toBe(0);
    const running = pod("r", { slot: s0.leaseName, gated: false, admission: refused });
    expect(planWorkload(observed({ held: [s0], pods: [running] })).actions).toEqual([
      {
        kind: "revokeSlot",
        slot: s0,
        reason: "PodExceedsSlot",
        message: "pod r no longer passes admission: too big",
        graceSeconds: 30,
      },
    ]);
  });

  it("a gang asks for nothing until all its pods wait, then for all of them", () => {
    const three = ["a", "b", "c"].map((n) => pod(n));
    expect(planWorkload(observed({ gang: true, slotsMax: 4, pods: three })).slotsWanted).toBe(0);
    expect(planWorkload(observed({ gang: true, slotsMax: 3, pods: three })).slotsWanted).toBe(3);
  });

  it("takes every slot back when the claim expires, and asks for no more", () => {
    const running = pod("r", { slot: s0.leaseName, gated: false });
    const plan = planWorkload(
      observed({ held: [s0], pods: [running, pod("w")], expiresAt: 10_000, maxDurationSeconds: 60 }),
    );
    expect(plan.expiring).toBe(true);
    expect(plan.actions).toEqual([
      {
        kind: "revokeSlot",
        slot: s0,
        reason: "Expired",
        message: "the claim reached its maximum duration of 60s",
        graceSeconds: 30,
      },
    ]);
    expect(plan.slotsWanted).toBe(0);
  });

  it("a deleted claim evicts its running pods, frees its slots once they are gone, then lets go", () => {
    const running = pod("r", { slot: s0.leaseName, gated: false });
    expect(planWorkload(observed({ deleting: true, held: [s0], pods: [running] })).actions).toEqual([
      { kind: "evict", pod: "r", reason: "ClaimDeleted", graceSeconds: 30 },
    ]);
    expect(planWorkload(observed({ deleting: true, held: [s0] })).actions).toEqual([
      { kind: "freeSlot", slot: s0 },
    ]);
    expect(planWorkload(observed({ deleting: true })).actions).toEqual([{ kind: "removeFinalizer" }]);
  });
});

describe("normalizedWorkloadPodSpec", () => {
  it("leaves out what the API server, the scheduler and the operator filled in, and keeps the tenant's own", () => {
    const spec = {
      containers: [{ name: "w", image: "x" }],
      schedulingGates: [{ name: "understudy.dev/slot" }, { name: "other" }],
      schedulerName: "default-scheduler",
      priority: 0,
      preemptionPolicy: "PreemptLowerPriority",
      nodeName: "a1",
      affinity: { nodeAffinity: {} },
      tolerations: [
        {
          key: "node.kubernetes.io/not-ready",
          operator: "Exists",
          effect: "NoExecute",
          tolerationSeconds: 300,
        },
        { key: "mine", operator: "Exists" },
      ],
    };
    expect(normalizedWorkloadPodSpec(spec, "understudy.dev/slot", true)).toEqual({
      containers: [{ name: "w", image: "x" }],
      schedulingGates: [{ name: "other" }],
      tolerations: [{ key: "mine", operator: "Exists" }],
    });
    // A pod the operator did not pin keeps its own affinity and node name, to be judged.
    expect(normalizedWorkloadPodSpec(spec, "understudy.dev/slot", false)).toMatchObject({
      nodeName: "a1",
      affinity: { nodeAffinity: {} },
    });
  });
});
