// `understudy plan` as text: the recommendation and its trade first, then every assumption with its
// source and the flag that overrides it, then each pool size simulated.
import type { Assumption, Assumptions } from "../plan/assumptions.ts";
import { flagFor } from "../plan/assumptions.ts";
import { pct } from "../plan/percent.ts";
import { isCurrent, isRecommended, simulatedRows, type PlanReport } from "../plan/plan.ts";
import type { PlanRow } from "../plan/recommend.ts";
import { formatDuration } from "./format.ts";
import type { RenderContext } from "./render.ts";
import { renderTable, type Cell } from "./table.ts";

const ASSUMPTION_LABELS: Record<keyof Assumptions, string> = {
  zones: "zones",
  serviceZones: "storage services (by primary zone)",
  slotsPerZone: "slots per zone now",
  hotSpares: "hot spares now",
  headroomPerZone: "room for more slots per zone",
  headMtbfHours: "mean time between head failures (h)",
  meanRepairMinutes: "time on a slot before failback (min)",
  zoneOutageMinutes: "zone outage a day (min)",
  peakArrivalsPerHour: "claims arriving per hour at peak",
  meanTenantMinutes: "tenant work per claim (min)",
  patienceMinutes: "a Pending claim waits (min)",
  zonedShare: "claims naming a zone",
  requeueShare: "claims requeued when revoked",
};

const SHARES = new Set<keyof Assumptions>(["zonedShare", "requeueShare"]);

function assumptionValue(key: keyof Assumptions, a: Assumption<unknown>): string {
  const v = a.value;
  if (Array.isArray(v)) {
    if (key === "zones") return v.join(", ");
    const counts = new Map<string, number>();
    for (const zone of v as string[]) counts.set(zone, (counts.get(zone) ?? 0) + 1);
    return `${v.length} (${[...counts].map(([zone, n]) => `${zone} ${n}`).join(", ")})`;
  }
  if (typeof v === "number") return SHARES.has(key) ? pct(v) : String(Number(v.toFixed(2)));
  return String(v);
}

const count = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
const size = (slotsPerZone: number, hotSpares: number) =>
  `${count(slotsPerZone, "slot")} per zone, ${count(hotSpares, "hot spare")}`;

const wait = (seconds: number) => (seconds === 0 ? "0s" : formatDuration(seconds * 1000)!);

export function renderPlan(report: PlanReport, ctx: RenderContext): string {
  const { style } = ctx;
  const r = report.recommended;
  const rec = report.recommendation;
  const now = report.current;
  const head = [
    `${style.paint("strong", "Pool:")} ${report.pool}`,
    `${style.paint("strong", "Target:")} ${pct(report.target)} of failovers find capacity at once, one zone outage a day included` +
      (report.freeTarget !== undefined ? `; ${pct(report.freeTarget)} on a free slot` : ""),
    `${style.paint("strong", "Recommendation:")} ${style.paint(rec.met ? "ok" : "warn", size(rec.slotsPerZone, rec.hotSpares))} (now ${size(now.slotsPerZone, now.hotSpares)})`,
    `  why: ${rec.reason}`,
    `  trade: ${pct(r.leasedShare)} of slot-time leased to tenants, ${r.revocationsPerDay.toFixed(1)} tenant revocations a day, ${pct(r.freeSlotShare)} of failovers on a free slot, longest failover wait ${wait(r.maxWaitSeconds)}, tenants wait ${wait(Math.round(r.meanTenantWaitSeconds))} on average`,
    `  now: ${pct(now.foundAtOnceShare)} of failovers find capacity at once (${pct(now.outageFoundAtOnceShare)} in the zone outage), ${pct(now.leasedShare)} leased`,
  ].join("\n");

  const assumptions = renderTable(
    ["assumption", "value", "source", "flag", "from"],
    (Object.keys(ASSUMPTION_LABELS) as (keyof Assumptions)[]).map((key) => {
      const a = report.assumptions[key] as Assumption<unknown>;
      const source: Cell = { text: a.source, tone: a.source === "default" ? "warn" : undefined };
      return [ASSUMPTION_LABELS[key], assumptionValue(key, a), source, flagFor(key), a.note];
    }),
    style,
  );

  const mark = (row: PlanRow) =>
    [isRecommended(report, row) ? "recommended" : "", isCurrent(report, row) ? "current" : ""]
      .filter(Boolean)
      .join(", ");
  const sizes = renderTable(
    [
      "slots/zone",
      "hot spares",
      "found at once",
      "in outage",
      "on free slot",
      "leased",
      "revocations/day",
      "longest wait",
      "tenant wait",
      "granted",
      "",
    ],
    simulatedRows(report).map((row) => [
      row.slotsPerZone,
      row.hotSpares,
      { text: pct(row.foundAtOnceShare), tone: row.meetsTarget ? "ok" : "bad" },
      pct(row.outageFoundAtOnceShare),
      pct(row.freeSlotShare),
      pct(row.leasedShare),
      row.revocationsPerDay.toFixed(1),
      wait(row.maxWaitSeconds),
      wait(Math.round(row.meanTenantWaitSeconds)),
      `${row.tenantsGranted}/${row.tenantsArrived}`,
      { text: mark(row), tone: "strong" },
    ]),
    style,
  );
  return (
    [
      head,
      `${style.paint("strong", "Assumptions")}\n${assumptions}`.trimEnd(),
      `${style.paint("strong", "Pool sizes simulated")}\n${sizes}`.trimEnd(),
      style.paint("muted", `Simulation: ${report.simulation.note}.`),
    ].join("\n\n") + "\n"
  );
}
