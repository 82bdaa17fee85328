// `understudy usage`: what each claim and each namespace used of the pools, read from the usage
// records the operator keeps in claim status (src/decisions/usage.ts), added up to now.
import { usageAsOf, usageRecordOf } from "../decisions/usage.ts";
import type { ClaimObject } from "./model.ts";
import type { RenderContext } from "./render.ts";
import { renderTable, type CellInput } from "./table.ts";

export interface UsageRow {
  namespace: string;
  /** The claim; undefined on a namespace's total. */
  claim?: string;
  pool: string;
  slotsHeld: number;
  slotSeconds: number;
  waitingSeconds: number;
  revocations: Record<string, number>;
}

export interface UsageReport {
  /** When the open holds and waits were added up to. */
  asOf: string;
  claims: UsageRow[];
  /** Per namespace and pool. */
  namespaces: UsageRow[];
}

const round = (n: number) => Math.round(n * 1000) / 1000;

export function usageReport(claims: readonly ClaimObject[], now: number): UsageReport {
  const rows = claims
    .map((claim): UsageRow => {
      const record = usageRecordOf(claim.status?.usage);
      const totals = usageAsOf(record, now);
      return {
        namespace: claim.metadata?.namespace ?? "",
        claim: claim.metadata?.name ?? "",
        pool: String((claim.spec as { pool?: string } | undefined)?.pool ?? ""),
        slotsHeld: record.held.length,
        ...totals,
        revocations: record.revocations,
      };
    })
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || (a.claim ?? "").localeCompare(b.claim ?? ""));
  const byNamespace = new Map<string, UsageRow>();
  for (const row of rows) {
    const key = `${row.namespace}\u0000${row.pool}`;
    const sum = byNamespace.get(key) ?? {
      namespace: row.namespace,
      pool: row.pool,
      slotsHeld: 0,
      slotSeconds: 0,
      waitingSeconds: 0,
      revocations: {},
    };
    sum.slotsHeld += row.slotsHeld;
    sum.slotSeconds = round(sum.slotSeconds + row.slotSeconds);
    sum.waitingSeconds = round(sum.waitingSeconds + row.waitingSeconds);
    for (const [reason, n] of Object.entries(row.revocations))
      sum.revocations[reason] = (sum.revocations[reason] ?? 0) + n;
    byNamespace.set(key, sum);
  }
  return { asOf: new Date(now).toISOString(), claims: rows, namespaces: [...byNamespace.values()] };
}

const revocationText = (r: Record<string, number>) =>
  Object.entries(r)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([reason, n]) => `${reason}=${n}`)
    .join(",") || undefined;

export function renderUsage(report: UsageReport, ctx: RenderContext): string {
  if (report.claims.length === 0) return "No pool claims found.\n";
  const headers = ["namespace", "claim", "pool", "slots", "slot-seconds", "waiting-seconds", "revocations"];
  const row = (r: UsageRow): CellInput[] => [
    r.namespace,
    r.claim ?? { text: "(total)", tone: "strong" },
    r.pool,
    r.slotsHeld,
    r.slotSeconds.toFixed(1),
    r.waitingSeconds.toFixed(1),
    revocationText(r.revocations),
  ];
  return renderTable(headers, [...report.claims.map(row), ...report.namespaces.map(row)], ctx.style);
}
