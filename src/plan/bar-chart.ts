// Horizontal bar charts as plain SVG: the benchmarks' result charts and `understudy plan --svg`.

export interface Bar {
  label: string;
  value: number;
  /** Optional second value drawn as a thin marker on the bar (e.g. p99 over a p50 bar). */
  marker?: number;
}

export interface ChartSpec {
  /** File name (without .svg). */
  name: string;
  title: string;
  unit: string;
  bars: Bar[];
  /** Log scale for values spanning orders of magnitude (failover seconds vs minutes). */
  log?: boolean;
  markerLabel?: string;
  /** A fixed end of the scale (100 for percentages), so charts side by side compare; default: the largest value. */
  max?: number;
}

const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function formatValue(v: number): string {
  if (v === 0) return "0";
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  if (Math.abs(v) >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

/** A horizontal bar chart: one row per bar, value printed at its end. */
export function renderChart(chart: ChartSpec): string {
  return renderCharts([chart]);
}

/** Charts one above the other in one SVG, each as renderChart draws it alone. */
export function renderCharts(charts: readonly ChartSpec[]): string {
  const drawn = charts.map(chartBody);
  const width = Math.max(...drawn.map((d) => d.width));
  const height = drawn.reduce((sum, d) => sum + d.height, 0);
  let y = 0;
  const groups = drawn.map((d) => {
    const group = y === 0 ? d.body : `<g transform="translate(0,${y})">\n${d.body}\n</g>`;
    y += d.height;
    return group;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...groups,
    `</svg>`,
    "",
  ].join("\n");
}

function chartBody(chart: ChartSpec): { width: number; height: number; body: string } {
  const rowHeight = 34;
  const labelWidth = 330;
  const plotWidth = 420;
  const top = 48;
  const height = top + chart.bars.length * rowHeight + 40;
  const width = labelWidth + plotWidth + 110;
  const values = chart.bars.flatMap((b) => (b.marker !== undefined ? [b.value, b.marker] : [b.value]));
  const max = chart.max ?? Math.max(...values, 1e-9);
  const min = Math.min(...values.filter((v) => v > 0), max);
  const scale = (v: number): number => {
    if (v <= 0) return 0;
    if (!chart.log) return (v / max) * plotWidth;
    const lo = Math.log10(min) - 0.3;
    return ((Math.log10(v) - lo) / (Math.log10(max) - lo)) * plotWidth;
  };
  const palette = ["#2f6fb0", "#d1813a", "#5a9e4b", "#a4508b", "#7a7a7a", "#c8b53a"];
  const rows = chart.bars.map((bar, i) => {
    const y = top + i * rowHeight;
    const w = Math.max(1, scale(bar.value));
    const marker =
      bar.marker !== undefined
        ? `<line x1="${labelWidth + scale(bar.marker)}" x2="${labelWidth + scale(bar.marker)}" y1="${y + 2}" y2="${y + 24}" stroke="#222" stroke-width="2"/>`
        : "";
    const text = `${formatValue(bar.value)}${bar.marker !== undefined ? ` (${chart.markerLabel ?? "marker"} ${formatValue(bar.marker)})` : ""} ${chart.unit}`;
    const end = labelWidth + Math.max(w, bar.marker !== undefined ? scale(bar.marker) : 0);
    return [
      `<text x="${labelWidth - 8}" y="${y + 18}" text-anchor="end">${escape(bar.label)}</text>`,
      `<rect x="${labelWidth}" y="${y + 4}" width="${w.toFixed(1)}" height="20" fill="${palette[i % palette.length]}"/>`,
      marker,
      `<text x="${(end + 6).toFixed(1)}" y="${y + 18}">${escape(text)}</text>`,
    ].join("");
  });
  const body = [
    `<text x="12" y="26" font-size="16" font-weight="bold">${escape(chart.title)}</text>`,
    ...rows,
    `<text x="${labelWidth}" y="${height - 12}" fill="#555">${chart.log ? "log scale" : "linear scale"}; ${escape(chart.unit)}</text>`,
  ].join("\n");
  return { width, height, body };
}
