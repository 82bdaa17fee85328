import { describe, expect, it } from "vitest";
import {
  conditionStatus,
  conditionsEqual,
  findCondition,
  isConditionTrue,
  removeCondition,
  setCondition,
  setConditions,
  type Condition,
} from "../../../src/operator/conditions.ts";

const t0 = new Date("2026-01-01T00:00:00Z");
const t1 = new Date("2026-01-01T00:05:00Z");
const t2 = new Date("2026-01-01T00:10:00Z");

const ready = (status: Condition["status"], reason = "Checked", message = "", observedGeneration = 1) => ({
  type: "Ready",
  status,
  reason,
  message,
  observedGeneration,
});

describe("setCondition", () => {
  it("adds a condition with the given time as its transition time", () => {
    const conditions = setCondition(undefined, ready("True"), t0);
    expect(conditions).toEqual([{ ...ready("True"), lastTransitionTime: t0.toISOString() }]);
  });

  it("keeps lastTransitionTime while the status stays, even when reason, message or generation change", () => {
    const first = setCondition([], ready("True"), t0);
    const second = setCondition(first, ready("True", "StillFine", "all good", 2), t1);
    expect(findCondition(second, "Ready")).toEqual({
      ...ready("True", "StillFine", "all good", 2),
      lastTransitionTime: t0.toISOString(),
    });
  });

  it("moves lastTransitionTime when the status changes", () => {
    const first = setCondition([], ready("True"), t0);
    const second = setCondition(first, ready("False", "HeadDown"), t1);
    expect(findCondition(second, "Ready")?.lastTransitionTime).toBe(t1.toISOString());
    const third = setCondition(second, ready("False", "HeadDown"), t2);
    expect(findCondition(third, "Ready")?.lastTransitionTime).toBe(t1.toISOString());
  });

  it("touches only the condition of its type, in place, and does not mutate its input", () => {
    const start = setConditions(
      [],
      [ready("True"), { type: "FailingOver", status: "False", reason: "Idle", message: "" }],
      t0,
    );
    const frozen = structuredClone(start);
    const next = setCondition(
      start,
      { type: "FailingOver", status: "True", reason: "HeadLost", message: "" },
      t1,
    );
    expect(start).toEqual(frozen);
    expect(next.map((c) => c.type)).toEqual(["Ready", "FailingOver"]);
    expect(findCondition(next, "Ready")).toEqual(findCondition(start, "Ready"));
    expect(findCondition(next, "FailingOver")?.lastTransitionTime).toBe(t1.toISOString());
  });
});

describe("condition queries", () => {
  const conditions = setConditions(
    [],
    [ready("True"), { type: "HeadAvailable", status: "False", reason: "PodFailed", message: "" }],
    t0,
  );

  it("findCondition, isConditionTrue and conditionStatus read a list", () => {
    expect(findCondition(conditions, "Missing")).toBeUndefined();
    expect(isConditionTrue(conditions, "Ready")).toBe(true);
    expect(isConditionTrue(conditions, "HeadAvailable")).toBe(false);
    expect(isConditionTrue(undefined, "Ready")).toBe(false);
    expect(conditionStatus(conditions, "HeadAvailable")).toBe("False");
    expect(conditionStatus(conditions, "Missing")).toBe("Unknown");
  });

  it("removeCondition drops one type", () => {
    expect(removeCondition(conditions, "Ready").map((c) => c.type)).toEqual(["HeadAvailable"]);
    expect(removeCondition(undefined, "Ready")).toEqual([]);
  });

  it("conditionsEqual ignores order and notices any field", () => {
    expect(conditionsEqual(conditions, [...conditions].reverse())).toBe(true);
    expect(conditionsEqual(undefined, [])).toBe(true);
    expect(conditionsEqual(conditions, conditions.slice(1))).toBe(false);
    // Same verdict again: setCondition yields an equal list, so no status write is needed.
    expect(conditionsEqual(conditions, setCondition(conditions, ready("True"), t2))).toBe(true);
    expect(conditionsEqual(conditions, setCondition(conditions, ready("True", "Other"), t2))).toBe(false);
    expect(conditionsEqual(conditions, setCondition(conditions, ready("True", "Checked", "", 2), t2))).toBe(
      false,
    );
  });
});
