import { describe, expect, it } from "vitest";
import { ConditionSchema, formatFieldPath, setCondition, type Condition } from "../../../src/api/index.ts";

const t0 = new Date("2026-01-01T00:00:00Z");
const t1 = new Date("2026-01-01T00:01:00Z");

describe("setCondition", () => {
  it("adds a condition stamped with now", () => {
    expect(
      setCondition(undefined, { type: "Ready", status: "False", reason: "NoSlots", message: "" }, t0),
    ).toEqual([
      {
        type: "Ready",
        status: "False",
        reason: "NoSlots",
        message: "",
        lastTransitionTime: t0.toISOString(),
      },
    ]);
  });

  it("keeps the transition time while the status stays, and moves it when the status changes", () => {
    const first = setCondition([], { type: "Ready", status: "False", reason: "NoSlots", message: "a" }, t0);
    const same = setCondition(
      first,
      { type: "Ready", status: "False", reason: "StillNoSlots", message: "b" },
      t1,
    );
    expect(same[0]).toMatchObject({
      reason: "StillNoSlots",
      message: "b",
      lastTransitionTime: t0.toISOString(),
    });
    const changed = setCondition(
      same,
      { type: "Ready", status: "True", reason: "SlotsHeld", message: "" },
      t1,
    );
    expect(changed[0]!.lastTransitionTime).toBe(t1.toISOString());
  });

  it("leaves other conditions and their order alone", () => {
    const conditions: Condition[] = [
      { type: "Ready", status: "True", reason: "A", message: "", lastTransitionTime: t0.toISOString() },
      { type: "Valid", status: "True", reason: "B", message: "", lastTransitionTime: t0.toISOString() },
    ];
    const out = setCondition(conditions, { type: "Ready", status: "False", reason: "C", message: "" }, t1);
    expect(out.map((c) => c.type)).toEqual(["Ready", "Valid"]);
    expect(out[1]).toBe(conditions[1]);
  });

  it("produces conditions the schema accepts", () => {
    const out = setCondition(
      [],
      { type: "Valid", status: "False", reason: "InvalidSpec", message: "spec.zones: x" },
      t0,
    );
    expect(ConditionSchema.safeParse(out[0]).success).toBe(true);
  });
});

describe("formatFieldPath", () => {
  it("writes paths the way the API server does", () => {
    expect(formatFieldPath(["spec", "zones", 0, "name"])).toBe("spec.zones[0].name");
    expect(formatFieldPath([])).toBe("");
  });
});
