import { describe, expect, it } from "vitest";
import { renderChart, renderCharts } from "../../../src/plan/bar-chart.ts";

// Charts as SVG: one alone as before, several stacked in one file.

const chart = (title: string) => ({ name: title, title, unit: "%", bars: [{ label: "a < b", value: 50 }] });
const size = (svg: string) =>
  svg
    .match(/width="(\d+)" height="(\d+)"/)!
    .slice(1)
    .map(Number);

describe("renderCharts", () => {
  it("stacks charts one above the other, each drawn as it is alone", () => {
    const one = renderChart(chart("found"));
    const two = renderCharts([chart("found"), chart("leased")]);
    expect(size(two)).toEqual([size(one)[0], 2 * size(one)[1]!]);
    expect(two).toContain(">found</text>");
    expect(two).toContain(`<g transform="translate(0,${size(one)[1]})">`);
    expect(two).toContain(">leased</text>");
    expect(two).toContain("a &lt; b");
  });

  it("draws against a fixed end of the scale when given one, so shares compare across charts", () => {
    const half = renderChart({ ...chart("found"), max: 100 });
    const full = renderChart(chart("found"));
    expect(half).toContain('width="210.0"');
    expect(full).toContain('width="420.0"');
  });
});
