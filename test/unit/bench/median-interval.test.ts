import { describe, expect, it } from "vitest";
import { medianInterval, percentile } from "../../../bench/chart.ts";

describe("medianInterval (the benchmarks' bootstrap interval of a median)", () => {
  const noisy = Array.from({ length: 61 }, (_, i) => 0.88 + 0.2 * Math.sin(i * 1.7));

  it("gives the same interval for the same values, around their median", () => {
    const a = medianInterval(noisy);
    expect(medianInterval(noisy)).toEqual(a);
    expect(a.low).toBeLessThanOrEqual(percentile(noisy, 50));
    expect(a.high).toBeGreaterThanOrEqual(percentile(noisy, 50));
    expect(a.low).toBeLessThan(a.high);
  });

  it("is a point for values that do not vary, and narrows as rounds are added", () => {
    expect(medianInterval([0.9, 0.9, 0.9])).toEqual({ low: 0.9, high: 0.9 });
    const few = medianInterval(noisy.slice(0, 15));
    const many = medianInterval([...noisy, ...noisy, ...noisy]);
    expect(many.high - many.low).toBeLessThan(few.high - few.low);
  });
});
