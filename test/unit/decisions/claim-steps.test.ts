import { describe, expect, it } from "vitest";
import { nextClaimAction, type ClaimObserved } from "../../../src/decisions/claim-steps.ts";
import { claimHolder, slot } from "./fixtures.ts";

const held = slot("a", 0, "a1", claimHolder("c"));
const refused = { admitted: false as const, reason: "FieldNotAllowed" as const, message: "spec.nodeName" };

function observed(overrides: Partial<ClaimObserved> = {}): ClaimObserved {
  return {
    now: 10_000,
    deleting: false,
    phase: "Pending",
    plannedGraceSeconds: 30,
    verdict: { admitted: true },
    requeueOnRevoke: false,
    podNameTaken: false,
    revocationReason: "Failover",
    ...overrides,
  };
}

const running = { terminating: false, finished: false, succeeded: false, onHeldSlot: true };

describe("nextClaimAction", () => {
  const table: [string, Partial<ClaimObserved>, ReturnType<typeof nextClaimAction>][] = [
    // Release: the pod first, then the Lease, then the finalizer.
    [
      "a deleted claim stops its pod first",
      { deleting: true, held, pod: running },
      { kind: "stopPodForRelease", graceSeconds: 30 },
    ],
    [
      "a deleted claim frees its slot once the pod is gone",
      { deleting: true, held },
      { kind: "freeSlot", slot: held },
    ],
    [
      "a finished pod does not hold the release up",
      { deleting: true, held, pod: { ...running, finished: true } },
      { kind: "freeSlot", slot: held },
    ],
    ["a deleted claim without a slot lets go", { deleting: true }, { kind: "removeFinalizer" }],
    // Held slot.
    [
      "a revoked claim whose Lease the cache still shows waits",
      { phase: "Revoking", held },
      { kind: "waitForCache" },
    ],
    [
      "a Bound claim that stops passing admission is revoked with the planned grace",
      { phase: "Bound", held, verdict: refused },
      {
        kind: "revoke",
        slot: held,
        reason: "FieldNotAllowed",
        message: "the claim no longer passes admission: spec.nodeName",
        phase: "Revoking",
        graceSeconds: 30,
      },
    ],
    [
      "a claim past its maximum duration expires",
      { phase: "Bound", held, expiresAt: 10_000, maxDurationSeconds: 60 },
      {
        kind: "revoke",
        slot: held,
        reason: "Expired",
        message: "the claim reached its maximum duration of 60s",
        phase: "Expired",
        graceSeconds: 30,
      },
    ],
    [
      "a claim holding its slot runs its pod",
      { phase: "Pending", held, boundAt: 5_000, expiresAt: 20_000 },
      { kind: "runPod", slot: held, boundAt: 5_000, expiresAt: 20_000 },
    ],
    [
      "a pod that finished on its slot gives the slot back",
      { phase: "Bound", held, pod: { ...running, finished: true, succeeded: true } },
      { kind: "complete", slot: held, succeeded: true },
    ],
    [
      "a Completed claim whose Lease the cache still shows waits",
      { phase: "Completed", held },
      { kind: "waitForCache" },
    ],
    [
      "a Completed claim stays",
      { phase: "Completed", pod: { ...running, finished: true } },
      { kind: "none" },
    ],
    // No slot held.
    [
      "a pod that outlived its lease is stopped, as a revocation would",
      { phase: "Bound", pod: { ...running, onHeldSlot: false } },
      { kind: "stopOrphanPod", reason: "Failover", graceSeconds: 30, phase: "Revoking" },
    ],
    [
      "an expired claim's pod stops under the Expired phase",
      { phase: "Expired", pod: running },
      { kind: "stopOrphanPod", reason: "Failover", graceSeconds: 30, phase: "Expired" },
    ],
    [
      "a stopping pod is waited for",
      { phase: "Revoking", pod: { ...running, terminating: true } },
      { kind: "waitForPodGone" },
    ],
    [
      "a revoked claim without requeue ends Revoked, keeping the revoker's message",
      { phase: "Revoking", statusMessage: "storage service s/kv took it" },
      { kind: "recordRevoked", next: "Revoked", reason: "Failover", message: "storage service s/kv took it" },
    ],
    [
      "a revoked claim with requeue waits again",
      { phase: "Bound", requeueOnRevoke: true },
      {
        kind: "recordRevoked",
        next: "Pending",
        reason: "Failover",
        message: "revoked; waiting for another slot (requeueOnRevoke)",
      },
    ],
    ["an Expired claim stays", { phase: "Expired" }, { kind: "none" }],
    ["a Revoked claim stays", { phase: "Revoked" }, { kind: "none" }],
    [
      "a refused claim waits, refused",
      { verdict: refused },
      { kind: "refuse", reason: "FieldNotAllowed", message: "spec.nodeName" },
    ],
    ["an admitted claim waits for a slot", {}, { kind: "waitForSlot" }],
    [
      "a held slot of a missing pool is not run on",
      { phase: "Bound", held, plannedGraceSeconds: undefined },
      { kind: "recordRevoked", next: "Revoked", reason: "Failover", message: "revoked" },
    ],
  ];
  it.each(table)("%s", (_name, overrides, expected) => {
    expect(nextClaimAction(observed(overrides))).toEqual(expected);
  });

  it("answers every combination of phase, slot, pod and admission with one action", () => {
    const phases = ["Pending", "Bound", "Revoking", "Revoked", "Expired", "Completed"] as const;
    const pods = [undefined, running, { ...running, terminating: true }, { ...running, finished: true }];
    for (const phase of phases)
      for (const pod of pods)
        for (const h of [undefined, held])
          for (const deleting of [false, true])
            for (const verdict of [{ admitted: true as const }, refused]) {
              const action = nextClaimAction(observed({ phase, pod, held: h, deleting, verdict }));
              expect(action.kind).toBeTypeOf("string");
              // A slot is never run on without being held, and a deleted claim never runs a pod.
              if (action.kind === "runPod") expect(h && !deleting && verdict.admitted).toBeTruthy();
            }
  });
});
