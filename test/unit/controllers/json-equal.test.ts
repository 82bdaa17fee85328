import { describe, expect, it } from "vitest";
import { sameJson } from "../../../src/controllers/json-equal.ts";

describe("sameJson", () => {
  it("ignores key order, as a status read back from the API server comes sorted", () => {
    const built = { type: "Ready", status: "True", reason: "Ok", message: "", observedGeneration: 2 };
    const stored = { message: "", observedGeneration: 2, reason: "Ok", status: "True", type: "Ready" };
    expect(JSON.stringify([built])).not.toBe(JSON.stringify([stored]));
    expect(sameJson([built], [stored])).toBe(true);
  });

  it("treats undefined members as absent, and undefined as null", () => {
    expect(sameJson({ a: 1, b: undefined }, { a: 1 })).toBe(true);
    expect(sameJson(undefined, null)).toBe(true);
  });

  it("tells different values apart", () => {
    expect(sameJson({ a: 1 }, { a: 2 })).toBe(false);
    expect(sameJson({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(sameJson([1, 2], [2, 1])).toBe(false);
    expect(sameJson({ a: null }, {})).toBe(false);
  });
});
