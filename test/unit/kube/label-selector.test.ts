import { describe, expect, it } from "vitest";
import { parseLabelSelector } from "../../../src/kube/label-selector.ts";

describe("parseLabelSelector", () => {
  const labels = { tier: "prod", zone: "a", "understudy.dev/run": "r1" };
  const cases: [string, boolean][] = [
    ["", true],
    ["tier=prod", true],
    ["tier==prod", true],
    ["tier=dev", false],
    ["tier!=dev", true],
    ["tier!=prod", false],
    ["understudy.dev/run=r1", true],
    ["zone in (a, b)", true],
    ["zone in (b,c)", false],
    ["zone notin (b,c)", true],
    ["missing notin (b)", true],
    ["tier", true],
    ["!tier", false],
    ["!missing", true],
    ["tier=prod,zone in (a,b),!legacy", true],
    ["tier=prod,zone=b", false],
  ];
  for (const [selector, expected] of cases) {
    it(`"${selector}" ${expected ? "matches" : "does not match"}`, () => {
      expect(parseLabelSelector(selector)(labels)).toBe(expected);
    });
  }
  it("refuses what it cannot read", () => {
    expect(() => parseLabelSelector("tier=(prod")).toThrow(/cannot read/);
  });
});
