import { describe, expect, it } from "vitest";
import { statusPatch } from "../../../src/controllers/status-writer.ts";

const now = new Date("2026-12-01T12:00:00Z");
const earlier = "2026-12-01T11:00:00.000Z";
const ready = { type: "Ready", status: "True" as const, reason: "SlotHeld", message: "holds a slot" };

describe("statusPatch", () => {
  it("is undefined when the status already says everything", () => {
    const status = {
      phase: "Bound",
      observedGeneration: 3,
      conditions: [{ ...ready, observedGeneration: 3, lastTransitionTime: earlier }],
    };
    expect(statusPatch(status, 3, { phase: "Bound" }, [ready], now)).toBeUndefined();
  });

  it("sets what changed, clears undefined fields and records the generation", () => {
    const patch = statusPatch(
      { phase: "Bound", node: "n1" },
      4,
      { phase: "Revoked", node: undefined },
      [],
      now,
    );
    expect(patch).toEqual({ observedGeneration: 4, phase: "Revoked", node: null });
  });

  it("keeps a condition's transition time while its status stays, and moves it when it changes", () => {
    const status = { conditions: [{ ...ready, observedGeneration: 1, lastTransitionTime: earlier }] };
    const same = statusPatch(status, 2, {}, [{ ...ready, message: "still holds it" }], now);
    expect(same?.conditions).toEqual([
      { ...ready, message: "still holds it", observedGeneration: 2, lastTransitionTime: earlier },
    ]);
    const changed = statusPatch(status, 2, {}, [{ ...ready, status: "False", reason: "Revoked" }], now);
    expect(changed?.conditions).toEqual([
      {
        ...ready,
        status: "False",
        reason: "Revoked",
        observedGeneration: 2,
        lastTransitionTime: now.toISOString(),
      },
    ]);
  });

  it("writes a generation the status has not observed even when nothing else changed", () => {
    expect(statusPatch({ phase: "Bound", observedGeneration: 1 }, 2, { phase: "Bound" }, [], now)).toEqual({
      observedGeneration: 2,
      phase: "Bound",
    });
  });
});
