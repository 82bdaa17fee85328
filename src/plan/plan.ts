// `understudy plan` as a library: the report on one pool, from its assumptions and the search's
// options, and the charts drawn from it. Pure; observe-cluster.ts gathers the assumptions.
import type { ChartSpec } from "./bar-chart.ts";
import type { Assumptions } from "./assumptions.ts";
import { searchPoolSize, type PlanRow, type Recommendation, type SearchOptions } from "./recommend.ts";
import { pct } from "./percent.ts";

export interface PlanReport {
  pool: string;
  target: number;
  freeTarget?: number;
  simulation: { days: number; tickSeconds: number; seed: number; note: string };
  assumptions: Assumptions;
  recommendation: Recommendation;
  recommended: PlanRow;
  current: PlanRow;
  sizes: PlanRow[];
  spares: PlanRow[];
}

export const DEFAULT_SEARCH = { target: 0.999, days: 3, tickSeconds: 30, seed: 1 } as const;

/** The search's default ceiling: as many slots per zone as there are services always suffices. */
export const defaultMaxSlotsPerZone = (a: Assumptions) =>
  Math.max(a.slotsPerZone.value, a.serviceZones.value.length, 1);

export function planPool(pool: string, assumptions: Assumptions, options: SearchOptions): PlanReport {
  const result = searchPoolSize(assumptions, options);
  const failovers = Math.round(result.recommended.failovers);
  return {
    pool,
    target: options.target,
    ...(options.freeTarget !== undefined ? { freeTarget: options.freeTarget } : {}),
    simulation: {
      days: options.days,
      tickSeconds: options.tickSeconds,
      seed: options.seed,
      note: `${options.days} simulated days per pool size in ${options.tickSeconds} s steps, each with one zone outage (${failovers} failovers at the recommended size): shares are known to about ${pct(1 / Math.max(1, failovers))}; raise --days for finer figures`,
    },
    assumptions,
    ...result,
  };
}

/** Every row the report simulated, by pool size then hot spares, each once. */
export function simulatedRows(report: PlanReport): PlanRow[] {
  const rows = new Map<string, PlanRow>();
  for (const row of [...report.sizes, ...report.spares, report.current, report.recommended])
    rows.set(`${row.slotsPerZone}/${row.hotSpares}`, row);
  return [...rows.values()].sort((a, b) => a.slotsPerZone - b.slotsPerZone || a.hotSpares - b.hotSpares);
}

/** Found capacity and leased share against pool size, for `--svg`. */
export function planCharts(report: PlanReport): ChartSpec[] {
  const rows = simulatedRows(report);
  const label = (r: PlanRow) => {
    const marks = [isRecommended(report, r) && "recommended", isCurrent(report, r) && "current"].filter(
      Boolean,
    );
    const spares = `${r.hotSpares} hot spare${r.hotSpares === 1 ? "" : "s"}`;
    return `${r.slotsPerZone}/zone, ${spares}${marks.length ? ` (${marks.join(", ")})` : ""}`;
  };
  return [
    {
      name: `plan-${report.pool}-found`,
      title: `${report.pool}: failovers that find capacity at once (target ${pct(report.target)})`,
      unit: "%",
      max: 100,
      bars: rows.map((r) => ({ label: label(r), value: 100 * r.foundAtOnceShare })),
    },
    {
      name: `plan-${report.pool}-leased`,
      title: `${report.pool}: slot-time leased to tenants`,
      unit: "%",
      max: 100,
      bars: rows.map((r) => ({ label: label(r), value: 100 * r.leasedShare })),
    },
  ];
}

export const isRecommended = (report: PlanReport, row: PlanRow) =>
  row.slotsPerZone === report.recommendation.slotsPerZone &&
  row.hotSpares === report.recommendation.hotSpares;

export const isCurrent = (report: PlanReport, row: PlanRow) =>
  row.slotsPerZone === report.current.slotsPerZone && row.hotSpares === report.current.hotSpares;
