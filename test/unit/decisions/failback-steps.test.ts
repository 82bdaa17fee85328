import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { FailbackStatus, LastFailback } from "../../../src/api/index.ts";
import {
  nextFailbackAction,
  type FailbackAction,
  type FailbackObserved,
} from "../../../src/decisions/failback-steps.ts";

const NOW = 10_000_000;
const SERVICE = { namespace: "storage", name: "kv" };

function observed(overrides: Partial<FailbackObserved> = {}): FailbackObserved {
  return {
    now: NOW,
    service: SERVICE,
    epoch: 2,
    head: { pod: "kv-head-2", node: "b1", zone: "zone-b", slot: "slot-p-zone-b-0" },
    headServing: true,
    policy: "Automatic",
    stableMs: 60_000,
    lastFailoverFinishedAt: NOW - 120_000,
    primaryZone: "zone-a",
    primaryReadySince: NOW - 300_000,
    newHead: { presence: "absent", ready: false },
    oldHead: { presence: "present", nodeReady: true },
    ...overrides,
  };
}

const started: FailbackStatus = {
  step: "Started",
  startedAt: new Date(NOW - 1000).toISOString(),
  reason: "Automatic",
  fromPod: "kv-head-2",
  fromNode: "b1",
  fromZone: "zone-b",
  fromSlot: "slot-p-zone-b-0",
  toZone: "zone-a",
  epoch: 3,
  headPod: "kv-head-3",
};

describe("whether to fail back", () => {
  it("Automatic starts once the last failover and the primary zone's readiness are older than stableSeconds", () => {
    const action = nextFailbackAction(undefined, observed());
    expect(action).toEqual({
      kind: "start",
      record: { ...started, startedAt: new Date(NOW).toISOString() },
    });
  });

  it("Automatic waits out the stability window, and looks again when it ends", () => {
    expect(nextFailbackAction(undefined, observed({ lastFailoverFinishedAt: NOW - 10_000 }))).toEqual({
      kind: "idle",
      recheckAfterMs: 50_000,
    });
    expect(nextFailbackAction(undefined, observed({ primaryReadySince: NOW - 5_000 }))).toEqual({
      kind: "idle",
      recheckAfterMs: 55_000,
    });
    expect(nextFailbackAction(undefined, observed({ lastAbandonedAt: NOW - 1_000 }))).toEqual({
      kind: "idle",
      recheckAfterMs: 59_000,
    });
  });

  it("does nothing for a head not on a slot, a head not serving, or a Manual policy without a request", () => {
    const { slot: _slot, ...onNode } = observed().head!;
    expect(nextFailbackAction(undefined, observed({ head: onNode })).kind).toBe("idle");
    expect(nextFailbackAction(undefined, observed({ headServing: false })).kind).toBe("idle");
    expect(nextFailbackAction(undefined, observed({ policy: "Manual" })).kind).toBe("idle");
  });

  it("waits for a Ready node in the primary zone, checking back now and then", () => {
    expect(nextFailbackAction(undefined, observed({ primaryReadySince: undefined }))).toEqual({
      kind: "idle",
      recheckAfterMs: 10_000,
    });
  });

  it("a manual request starts at once, or is refused (and so handled) when it cannot be honoured", () => {
    const manual = nextFailbackAction(
      undefined,
      observed({ policy: "Manual", manualRequest: "r1", lastFailoverFinishedAt: NOW }),
    );
    expect(manual).toMatchObject({
      kind: "start",
      handledRequest: "r1",
      record: { reason: "Manual", epoch: 3 },
    });
    const { slot: _slot, ...onNode } = observed().head!;
    expect(nextFailbackAction(undefined, observed({ manualRequest: "r2", head: onNode }))).toMatchObject({
      kind: "refuse",
      request: "r2",
    });
    expect(
      nextFailbackAction(undefined, observed({ manualRequest: "r3", primaryReadySince: undefined })),
    ).toMatchObject({ kind: "refuse", request: "r3", message: expect.stringContaining("zone-a") });
  });
});

describe("a failback in progress", () => {
  it("starts the new head in the primary zone, switches the Service once it is Ready, then records it", () => {
    expect(nextFailbackAction(started, observed())).toEqual({
      kind: "createHead",
      podName: "kv-head-3",
      epoch: 3,
      zone: "zone-a",
    });
    expect(
      nextFailbackAction(
        started,
        observed({ newHead: { presence: "present", ready: false, phase: "Pending" } }),
      ),
    ).toMatchObject({ kind: "wait" });
    expect(
      nextFailbackAction(
        started,
        observed({ newHead: { presence: "present", ready: true, phase: "Running" } }),
      ),
    ).toEqual({ kind: "switchService", epoch: 3 });
    const routed = nextFailbackAction(
      started,
      observed({
        routedEpoch: 3,
        newHead: { presence: "present", ready: true, phase: "Running", node: "a1" },
      }),
    );
    expect(routed).toEqual({
      kind: "recordSwitched",
      record: { ...started, step: "RoutingSwitched" },
      epoch: 3,
      head: { pod: "kv-head-3", zone: "zone-a", node: "a1" },
    });
  });

  it("gives up a new head that is not Ready in time, but never one already routed", () => {
    const late = { now: NOW + 120_000 };
    expect(
      nextFailbackAction(
        started,
        observed({ ...late, newHead: { presence: "present", ready: false, phase: "Pending" } }),
      ),
    ).toEqual({ kind: "deleteNewHead", podName: "kv-head-3" });
    const abandoned = nextFailbackAction(started, observed(late));
    expect(abandoned).toMatchObject({ kind: "finish", last: { outcome: "Abandoned", epoch: 3 } });
    expect(
      nextFailbackAction(
        started,
        observed({ ...late, routedEpoch: 3, newHead: { presence: "present", ready: false } }),
      ).kind,
    ).toBe("recordSwitched");
    expect(
      nextFailbackAction(
        started,
        observed({ newHead: { presence: "present", ready: false, phase: "Failed" } }),
      ),
    ).toEqual({ kind: "deleteNewHead", podName: "kv-head-3" });
  });

  it("then removes the head on the slot, returns the slot, and finishes", () => {
    const switched: FailbackStatus = { ...started, step: "RoutingSwitched" };
    const held = { heldSlot: { leaseName: "slot-p-zone-b-0", resourceVersion: "41" } };
    expect(nextFailbackAction(switched, observed(held))).toEqual({
      kind: "deleteOldHead",
      podName: "kv-head-2",
      force: false,
    });
    expect(
      nextFailbackAction(
        switched,
        observed({ ...held, oldHead: { presence: "terminating", nodeReady: false } }),
      ),
    ).toEqual({ kind: "deleteOldHead", podName: "kv-head-2", force: true });
    expect(
      nextFailbackAction(
        switched,
        observed({ ...held, oldHead: { presence: "terminating", nodeReady: true } }),
      ).kind,
    ).toBe("wait");
    expect(
      nextFailbackAction(switched, observed({ ...held, oldHead: { presence: "absent", nodeReady: true } })),
    ).toEqual({
      kind: "releaseSlot",
      leaseName: "slot-p-zone-b-0",
      expectedResourceVersion: "41",
    });
    expect(
      nextFailbackAction(switched, observed({ oldHead: { presence: "absent", nodeReady: true } })),
    ).toMatchObject({
      kind: "finish",
      last: { outcome: "Succeeded", toZone: "zone-a", fromSlot: "slot-p-zone-b-0" },
    });
  });
});

/**
 * A small world the failback acts on: the status record, the pods of both heads, the Service, the
 * slot Lease. Actions may be lost (an operator killed before or after applying one), and the new
 * head becomes Ready whenever the "kubelet" gets to it; whatever the order, one failback finishes.
 */
interface World {
  record?: FailbackStatus;
  last?: LastFailback;
  epoch: number;
  headPod: string;
  headSlot?: string;
  pods: Map<string, { ready: boolean; terminating: boolean }>;
  routed: number;
  leaseHolder: "service" | "free";
  leaseVersion: number;
}

function observe(world: World, now: number): FailbackObserved {
  const newName = world.record?.headPod;
  const pod = newName ? world.pods.get(newName) : undefined;
  const old = world.record?.fromPod ? world.pods.get(world.record.fromPod) : undefined;
  return observed({
    now,
    epoch: world.epoch,
    head: {
      pod: world.headPod,
      zone: world.headSlot ? "zone-b" : "zone-a",
      ...(world.headSlot ? { slot: world.headSlot } : {}),
    },
    headServing: world.routed === world.epoch,
    newHead: pod
      ? {
          presence: pod.terminating ? "terminating" : "present",
          ready: pod.ready,
          phase: "Running",
          node: "a1",
        }
      : { presence: "absent", ready: false },
    routedEpoch: world.routed,
    oldHead: old
      ? { presence: old.terminating ? "terminating" : "present", nodeReady: true }
      : { presence: "absent", nodeReady: true },
    ...(world.leaseHolder === "service" && world.record?.fromSlot
      ? { heldSlot: { leaseName: world.record.fromSlot, resourceVersion: String(world.leaseVersion) } }
      : {}),
  });
}

function applyTo(world: World, action: FailbackAction): void {
  switch (action.kind) {
    case "start":
      world.record = action.record;
      return;
    case "createHead":
      if (!world.pods.has(action.podName))
        world.pods.set(action.podName, { ready: false, terminating: false });
      return;
    case "deleteNewHead":
      world.pods.delete(action.podName);
      return;
    case "switchService":
      world.routed = action.epoch;
      return;
    case "recordSwitched":
      world.record = action.record;
      world.epoch = action.epoch;
      world.headPod = action.head.pod;
      delete world.headSlot;
      return;
    case "deleteOldHead":
      world.pods.get(action.podName)!.terminating = true;
      return;
    case "releaseSlot":
      if (String(world.leaseVersion) === action.expectedResourceVersion) {
        world.leaseHolder = "free";
        world.leaseVersion++;
      }
      return;
    case "finish":
      world.last = action.last;
      delete world.record;
      return;
    default:
      return;
  }
}

describe("a failback, whatever is lost or delayed", () => {
  it("finishes once: the head of epoch + 1 in the primary zone, routed, the slot free, the old head gone", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom("act", "lose", "kubelet", "terminate"), { minLength: 20, maxLength: 80 }),
        (events) => {
          const world: World = {
            epoch: 2,
            headPod: "kv-head-2",
            headSlot: "slot-p-zone-b-0",
            pods: new Map([["kv-head-2", { ready: true, terminating: false }]]),
            routed: 2,
            leaseHolder: "service",
            leaseVersion: 1,
          };
          let now = NOW;
          const run = [
            ...events,
            ...Array<string>(40).fill("act"),
            "kubelet",
            "terminate",
            ...Array<string>(40).fill("act"),
          ];
          for (const event of run) {
            now += 100;
            if (world.last) break;
            if (event === "kubelet") for (const pod of world.pods.values()) pod.ready = true;
            else if (event === "terminate") {
              for (const [name, pod] of world.pods) if (pod.terminating) world.pods.delete(name);
            } else {
              const action = nextFailbackAction(world.record, observe(world, now));
              if (event === "act") applyTo(world, action);
            }
          }
          // Finish what is left: the kubelet and the API server do their part.
          for (let i = 0; i < 20 && !world.last; i++) {
            for (const [name, pod] of world.pods) {
              pod.ready = true;
              if (pod.terminating) world.pods.delete(name);
            }
            applyTo(world, nextFailbackAction(world.record, observe(world, (now += 100))));
          }
          expect(world.last).toMatchObject({ outcome: "Succeeded", epoch: 3 });
          expect(world.epoch).toBe(3);
          expect(world.routed).toBe(3);
          expect(world.headPod).toBe("kv-head-3");
          expect(world.leaseHolder).toBe("free");
          expect([...world.pods.keys()]).toEqual(["kv-head-3"]);
        },
      ),
      { numRuns: 300 },
    );
  });
});
