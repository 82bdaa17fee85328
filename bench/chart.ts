// Benchmark results and their charts. Each benchmark writes bench/results/<name>.json (its figures
// plus the bar charts it wants drawn); `node bench/chart.ts` renders every chart of every results
// file as a plain SVG next to it, for docs/BENCHMARKS.md to show.
//
//   node bench/chart.ts [results-dir]
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { basename, join, resolve } from "node:path";
import { renderChart, type ChartSpec } from "../src/plan/bar-chart.ts";

export { renderChart, type Bar, type ChartSpec } from "../src/plan/bar-chart.ts";

export const RESULTS_DIR = resolve(import.meta.dirname, "results");

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

/**
 * A percentile bootstrap interval for the median of `values`: the median of `resamples` resamples
 * drawn with replacement, cut at (1 - confidence) / 2 on each side. The draws come from a fixed-seed
 * generator, so the same values always give the same interval.
 */
export function medianInterval(
  values: readonly number[],
  confidence = 0.95,
  resamples = 5000,
): { low: number; high: number } {
  let seed = 0x2545f491;
  const random = () => {
    // xorshift32: enough for drawing indexes, and reproducible.
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const medians = Array.from({ length: resamples }, () =>
    percentile(
      values.map(() => values[Math.floor(random() * values.length)]!),
      50,
    ),
  );
  const tail = ((1 - confidence) / 2) * 100;
  return { low: percentile(medians, tail), high: percentile(medians, 100 - tail) };
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
