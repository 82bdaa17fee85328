// Benchmark results and their charts. Each benchmark writes bench/results/<name>.json (its figures
// plus the bar charts it wants drawn); `node bench/chart.ts` renders every chart of every results
// file as a plain SVG next to it, for docs/BENCHMARKS.md to show.
//
//   node bench/chart.ts [results-dir]
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { basename, join, resolve } from "node:path";

export const RESULTS_DIR = resolve(import.meta.dirname, "results");

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
}

export interface Results {
  benchmark: string;
  command: string;
  finishedAt: string;
  machine: { cpus: number; memoryGiB: number; node: string };
  figures: Record<string, unknown>;
  charts: ChartSpec[];
}

/** Nearest-rank percentile (p in 0..100); NaN for no values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))]!;
}

export function machine(): Results["machine"] {
  return { cpus: cpus().length, memoryGiB: Math.round(totalmem() / 1024 ** 3), node: process.version };
}

/** Writes bench/results/<benchmark>.json and the SVG of each of its charts; returns the JSON path. */
export function writeResults(results: Omit<Results, "finishedAt" | "machine">, dir = RESULTS_DIR): string {
  mkdirSync(dir, { recursive: true });
  const full: Results = { ...results, finishedAt: new Date().toISOString(), machine: machine() };
  const path = join(dir, `${results.benchmark}.json`);
  writeFileSync(path, JSON.stringify(full, null, 2) + "\n");
  for (const chart of full.charts) writeFileSync(join(dir, `${chart.name}.svg`), renderChart(chart));
  return path;
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
  const rowHeight = 34;
  const labelWidth = 330;
  const plotWidth = 420;
  const top = 48;
  const height = top + chart.bars.length * rowHeight + 40;
  const width = labelWidth + plotWidth + 110;
  const values = chart.bars.flatMap((b) => (b.marker !== undefined ? [b.value, b.marker] : [b.value]));
  const max = Math.max(...values, 1e-9);
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
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="12" y="26" font-size="16" font-weight="bold">${escape(chart.title)}</text>`,
    ...rows,
    `<text x="${labelWidth}" y="${height - 12}" fill="#555">${chart.log ? "log scale" : "linear scale"}; ${escape(chart.unit)}</text>`,
    `</svg>`,
    "",
  ].join("\n");
}

/** Renders every chart of every results file in `dir`. */
export function renderAll(dir = RESULTS_DIR): string[] {
  const written: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".json"))) {
    const results = JSON.parse(readFileSync(join(dir, file), "utf8")) as Results;
    for (const chart of results.charts ?? []) {
      const path = join(dir, `${chart.name}.svg`);
      writeFileSync(path, renderChart(chart));
      written.push(path);
    }
  }
  return written;
}

if (process.argv[1] && basename(process.argv[1]) === "chart.ts") {
  const dir = resolve(process.argv[2] ?? RESULTS_DIR);
  for (const path of renderAll(dir)) console.log(path);
}
