// The pool size to recommend: simulate a few days at each size, smallest first, until the share of
// failovers that find capacity at once reaches the target; then the hot spares that put the asked
// share of failovers on a free slot (no tenant revoked). Pure and seeded: the same assumptions and
// options give the same answer.
import type { Assumptions } from "./assumptions.ts";
import { DEFAULTS, simulateDays, type SimParams } from "./simulate.ts";
import { pct } from "./percent.ts";
import { summarize, type VariantSummary } from "./summary.ts";

export interface SearchOptions {
  /** Share of failovers (the day's zone outage included) that must find capacity at once. */
  target: number;
  /** Share of failovers that must land on a free slot; unset keeps the pool's hot spares. */
  freeTarget?: number;
  days: number;
  tickSeconds: number;
  seed: number;
  /** The largest pool the search tries. */
  maxSlotsPerZone: number;
}

export interface PlanRow extends VariantSummary {
  meetsTarget: boolean;
  /** Share of failovers that took a free slot, revoking nobody. */
  freeSlotShare: number;
}

export interface Recommendation {
  slotsPerZone: number;
  hotSpares: number;
  /** False when no size up to the search's limit met the targets: the row shown is the best tried. */
  met: boolean;
  reason: string;
}

export interface SearchResult {
  current: PlanRow;
  /** Pool sizes tried with no hot spares, smallest first, up to one past the recommended size. */
  sizes: PlanRow[];
  /** Hot spares tried at the recommended size, fewest first (empty without a free target). */
  spares: PlanRow[];
  recommendation: Recommendation;
  recommended: PlanRow;
}

/** The simulation's parameters for one pool size under the assumptions. */
function simParams(
  a: Assumptions,
  size: { slotsPerZone: number; hotSpares: number },
  options: Pick<SearchOptions, "seed" | "tickSeconds">,
): SimParams {
  return {
    ...DEFAULTS,
    seed: options.seed,
    tickSeconds: options.tickSeconds,
    zones: a.zones.value,
    serviceZones: a.serviceZones.value,
    slotsPerZone: size.slotsPerZone,
    hotSpares: size.hotSpares,
    headroomPerZone: a.headroomPerZone.value,
    headMtbfHours: a.headMtbfHours.value,
    meanRepairMinutes: a.meanRepairMinutes.value,
    zoneOutageMinutes: a.zoneOutageMinutes.value,
    peakArrivalsPerHour: a.peakArrivalsPerHour.value,
    meanTenantMinutes: a.meanTenantMinutes.value,
    patienceMinutes: a.patienceMinutes.value,
    zonedShare: a.zonedShare.value,
    requeueShare: a.requeueShare.value,
  };
}

export function evaluate(
  a: Assumptions,
  size: { slotsPerZone: number; hotSpares: number },
  options: SearchOptions,
): PlanRow {
  const params = simParams(a, size, options);
  const summary = summarize(
    `${size.slotsPerZone}/zone, hotSpares ${size.hotSpares}`,
    params,
    simulateDays(params, options.days),
  );
  return {
    ...summary,
    meetsTarget: summary.foundAtOnceShare >= options.target,
    freeSlotShare: 1 - summary.revokedShare,
  };
}

export function searchPoolSize(a: Assumptions, options: SearchOptions): SearchResult {
  const zones = a.zones.value.length;
  const limit = options.maxSlotsPerZone;
  const sizes: PlanRow[] = [];
  for (let slots = 1; slots <= limit; slots++) {
    const row = evaluate(a, { slotsPerZone: slots, hotSpares: 0 }, options);
    sizes.push(row);
    if (row.meetsTarget) {
      // One size more shows what the next slot per zone would buy.
      if (slots < limit) sizes.push(evaluate(a, { slotsPerZone: slots + 1, hotSpares: 0 }, options));
      break;
    }
  }
  const met = sizes.find((r) => r.meetsTarget);
  const best =
    met ??
    sizes.reduce<PlanRow | undefined>(
      (b, r) => (b === undefined || r.foundAtOnceShare > b.foundAtOnceShare ? r : b),
      undefined,
    );
  const currentSize = { slotsPerZone: a.slotsPerZone.value, hotSpares: a.hotSpares.value };
  const current =
    sizes.find((r) => r.slotsPerZone === currentSize.slotsPerZone && r.hotSpares === currentSize.hotSpares) ??
    evaluate(a, currentSize, options);
  if (!best) throw new Error("the search tries at least one pool size");

  const reasonSize = met
    ? `the smallest size whose failovers found capacity at once ${pct(best.foundAtOnceShare)} ≥ ${pct(options.target)}`
    : `no size up to ${limit}/zone reached ${pct(options.target)}; the best found capacity at once ${pct(best.foundAtOnceShare)}`;
  if (options.freeTarget === undefined) {
    const hotSpares = Math.min(a.hotSpares.value, best.slotsPerZone * zones);
    const recommended =
      hotSpares === 0 ? best : evaluate(a, { slotsPerZone: best.slotsPerZone, hotSpares }, options);
    return {
      current,
      sizes,
      spares: [],
      recommended,
      recommendation: {
        slotsPerZone: best.slotsPerZone,
        hotSpares,
        met: met !== undefined,
        reason: `${reasonSize}; hot spares kept as the pool has them (set a free-slot target to size them)`,
      },
    };
  }

  const freeTarget = options.freeTarget;
  const spares: PlanRow[] = [best];
  for (let hot = 1; hot <= best.slotsPerZone * zones && spares.at(-1)!.freeSlotShare < freeTarget; hot++)
    spares.push(evaluate(a, { slotsPerZone: best.slotsPerZone, hotSpares: hot }, options));
  const enough = spares.find((r) => r.freeSlotShare >= freeTarget && r.foundAtOnceShare >= options.target);
  const recommended = enough ?? spares.at(-1)!;
  return {
    current,
    sizes,
    spares: spares.slice(1),
    recommended,
    recommendation: {
      slotsPerZone: recommended.slotsPerZone,
      hotSpares: recommended.hotSpares,
      met: met !== undefined && enough !== undefined,
      reason: enough
        ? `${reasonSize}; the fewest hot spares that put ${pct(recommended.freeSlotShare)} ≥ ${pct(freeTarget)} of failovers on a free slot`
        : `${reasonSize}; even ${recommended.hotSpares} hot spares put only ${pct(recommended.freeSlotShare)} of failovers on a free slot`,
    },
  };
}
