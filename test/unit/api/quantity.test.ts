import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isQuantity, quantityValue } from "../../../src/api/index.ts";

describe("quantityValue", () => {
  it.each([
    ["500m", 0.5],
    ["2", 2],
    [2, 2],
    ["512Mi", 512 * 2 ** 20],
    ["1Gi", 2 ** 30],
    ["1.5G", 1.5e9],
    ["1e3", 1000],
    ["1E", 1e18],
    ["100k", 1e5],
    [".5", 0.5],
  ] as const)("%s is %d", (text, value) => {
    expect(quantityValue(text)).toBeCloseTo(value, 9);
  });

  it.each(["-1", "1.5 Gi", "lots", "1KB", "", "Mi"])("refuses %j", (text) => {
    expect(isQuantity(text)).toBe(false);
    expect(() => quantityValue(text)).toThrow(/not a quantity/);
  });

  it("reads every whole number of mebibytes exactly", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 30 }), (n) => quantityValue(`${n}Mi`) === n * 2 ** 20),
    );
  });
});
