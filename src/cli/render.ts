// Tables and detail views of the summaries: pure functions from what was listed to the text shown.
import { ageOf, formatDuration } from "./format.ts";
import type {
  ClaimSummary,
  FailoverSummary,
  PoolSummary,
  ServiceSummary,
  SlotSummary,
  StatusReport,
} from "./model.ts";
import { phaseTone, type Style } from "./style.ts";
import { renderFields, renderTable, type Cell, type CellInput } from "./table.ts";

export interface RenderContext {
  style: Style;
  /** The clock ages are computed from (milliseconds since the epoch). */
  now: number;
}

const phase = (p: string | undefined): Cell => ({ text: p ?? "", tone: phaseTone(p) });

function section(title: string, body: string, ctx: RenderContext): string {
  return `${ctx.style.paint("strong", title)}\n${body}`;
}

/** One line about a failover: reason, zones, duration, revoked claim. */
function failoverLine(f: FailoverSummary | undefined, ctx: RenderContext): string | undefined {
  if (!f) return undefined;
  const parts = [
    f.reason ?? "failover",
    f.fromZone || f.toZone ? `${f.fromZone ?? "?"}→${f.toZone ?? "?"}` : undefined,
    formatDuration(f.durationMilliseconds),
    f.revokedClaim ? `revoked ${f.revokedClaim}` : undefined,
    ageOf(f.finishedAt ?? f.startedAt, ctx.now)?.concat(" ago"),
  ];
  return parts.filter((p) => p !== undefined).join(", ");
}

function serverCell(s: ServiceSummary): Cell {
  if (s.servers.length === 0) return { text: "" };
  const tone = s.serversReady >= s.serversTotal ? "ok" : s.serversReady === 0 ? "bad" : "warn";
  return { text: `${s.serversReady}/${s.serversTotal}`, tone };
}

export function renderServices(services: readonly ServiceSummary[], ctx: RenderContext): string {
  if (services.length === 0) return "No storage services found.\n";
  return renderTable(
    [
      "namespace",
      "name",
      "phase",
      "epoch",
      "head",
      "zone",
      "node",
      "servers",
      "failovers",
      "last failover",
      "age",
    ],
    services.map((s): CellInput[] => [
      s.namespace,
      s.name,
      s.failingOver
        ? { text: `FailingOver (${s.failingOver.step ?? "?"})`, tone: "warn" }
        : s.failingBack
          ? { text: `FailingBack (${s.failingBack.step})`, tone: "warn" }
          : phase(s.phase),
      s.epoch,
      s.head?.pod,
      s.head?.zone,
      s.head?.node,
      serverCell(s),
      s.failoverCount,
      failoverLine(s.lastFailover, ctx),
      ageOf(s.createdAt, ctx.now),
    ]),
    ctx.style,
  );
}

const readyCell = (p: PoolSummary): Cell =>
  p.ready
    ? {
        text: p.ready.status === "True" ? "True" : `${p.ready.status} (${p.ready.reason ?? "?"})`,
        tone: phaseTone(p.ready.status),
      }
    : { text: "" };

const countCell = (n: number, tone: "ok" | "warn" | "bad"): Cell =>
  n > 0 ? { text: String(n), tone } : { text: "0" };

export function renderPools(pools: readonly PoolSummary[], ctx: RenderContext): string {
  if (pools.length === 0) return "No contingency pools found.\n";
  return renderTable(
    ["name", "slot size", "slots", "free", "leased", "reserved", "pending", "zones", "ready", "age"],
    pools.map((p): CellInput[] => [
      p.name,
      p.slotSize ? `${p.slotSize.cpu}/${p.slotSize.memory}` : undefined,
      `${p.slots}/${p.desired}`,
      countCell(p.free, "ok"),
      p.leased,
      p.reserved,
      countCell(p.pending, "warn"),
      p.zones.map((z) => z.name).join(","),
      readyCell(p),
      ageOf(p.createdAt, ctx.now),
    ]),
    ctx.style,
  );
}

/** A zone's slots (of those desired) and their states, as table cells. */
function zoneCounts(z: PoolSummary["zones"][number]): CellInput[] {
  return [
    `${z.slots}/${z.desired}`,
    countCell(z.free, "ok"),
    z.leased,
    z.reserved,
    countCell(z.pending, "warn"),
  ];
}

function renderZones(pool: PoolSummary, ctx: RenderContext): string {
  return renderTable(
    ["zone", "slots", "free", "leased", "reserved", "pending"],
    pool.zones.map((z) => [z.name, ...zoneCounts(z)]),
    ctx.style,
  );
}

function renderSlots(slots: readonly SlotSummary[], ctx: RenderContext): string {
  return renderTable(
    ["slot", "zone", "node", "holder"],
    [...slots]
      .sort((a, b) => a.lease.localeCompare(b.lease))
      .map((s): CellInput[] => [
        s.lease,
        s.zone,
        s.node,
        s.holder === "free" ? { text: "free", tone: "ok" } : s.holder,
      ]),
    ctx.style,
  );
}

/** One pool in detail: its spec, counts by zone, and (when readable) every slot and its holder. */
/** The operator's estimate, in words: each head alone, then the zone whose outage would hurt most. */
function failoverCapacityCell(pool: PoolSummary): Cell | undefined {
  const c = pool.failoverCapacity;
  if (!c) return undefined;
  const pct = (share: number) => `${(100 * share).toFixed(0)}%`;
  const outage = c.worstZone ? `, ${pct(c.zoneOutage)} if ${c.worstZone} failed` : "";
  return {
    text: `${pct(c.singleFailure)} of ${c.services} heads would find a slot alone${outage}`,
    tone: c.singleFailure < 1 ? "bad" : c.zoneOutage < 1 ? "warn" : "ok",
  };
}

export function renderPoolDetail(
  pool: PoolSummary,
  slots: readonly SlotSummary[] | undefined,
  ctx: RenderContext,
): string {
  const fields = renderFields(
    [
      ["Pool", pool.name],
      ["Slot size", pool.slotSize ? `cpu ${pool.slotSize.cpu}, memory ${pool.slotSize.memory}` : undefined],
      [
        "Slots",
        `${pool.slots} of ${pool.desired} (${pool.free} free, ${pool.leased} leased, ${pool.reserved} reserved, ${pool.pending} pending)`,
      ],
      ["Hot spares", pool.hotSpares],
      ["Tenants from", pool.allowedNamespaces.join(", ") || "(none: storage services only)"],
      ["Ready", readyCell(pool)],
      ["Message", pool.ready?.status === "True" ? undefined : pool.ready?.message],
      ["Failover capacity", failoverCapacityCell(pool)],
      ["Age", ageOf(pool.createdAt, ctx.now)],
    ],
    ctx.style,
  );
  const parts = [fields, section("Zones", renderZones(pool, ctx), ctx)];
  if (slots && slots.length > 0) parts.push(section("Slots", renderSlots(slots, ctx), ctx));
  return parts.join("\n");
}

export function renderClaims(
  claims: readonly ClaimSummary[],
  ctx: RenderContext,
  options: { namespaceColumn: boolean } = { namespaceColumn: true },
): string {
  if (claims.length === 0) return "No pool claims found.\n";
  const headers = ["name", "pool", "bid", "phase", "zone", "node", "slot", "reason", "age"];
  return renderTable(
    options.namespaceColumn ? ["namespace", ...headers] : headers,
    claims.map((c): CellInput[] => {
      const row: CellInput[] = [
        c.name,
        c.pool,
        c.bid,
        phase(c.phase),
        c.zone ?? (c.requestedZone ? `(${c.requestedZone})` : undefined),
        c.node,
        c.slot,
        c.reason,
        ageOf(c.createdAt, ctx.now),
      ];
      return options.namespaceColumn ? [c.namespace, ...row] : row;
    }),
    ctx.style,
  );
}

/** A failover's steps with their offsets from detection: where the seconds went. */
export function renderFailover(f: FailoverSummary, ctx: RenderContext): string {
  const fields = renderFields(
    [
      ["Reason", f.reason],
      [
        "From",
        [f.fromPod, f.fromZone && `zone ${f.fromZone}`, f.fromEpoch !== undefined && `epoch ${f.fromEpoch}`]
          .filter(Boolean)
          .join(", "),
      ],
      [
        "To",
        [f.headPod, f.toZone && `zone ${f.toZone}`, f.epoch !== undefined && `epoch ${f.epoch}`]
          .filter(Boolean)
          .join(", "),
      ],
      ["Slot", f.slot],
      ["Revoked claim", f.revokedClaim],
      ["Started", f.startedAt],
      ["Finished", f.finishedAt ?? { text: `in progress (${f.step ?? "?"})`, tone: "warn" }],
      ["Duration", formatDuration(f.durationMilliseconds)],
    ],
    ctx.style,
  );
  if (f.timeline.length === 0) return fields;
  const timeline = renderTable(
    ["step", "at", "since detection"],
    f.timeline.map((t): CellInput[] => [t.step, t.at, `+${formatDuration(t.offsetMilliseconds)}`]),
    ctx.style,
  );
  return `${fields}\n${section("Timeline", timeline, ctx)}`;
}

/** The overview: services first (what users care about), then the pools that back them, then claims. */
export function renderStatus(report: StatusReport, ctx: RenderContext): string {
  const sections = [
    section("Storage services", renderServices(report.services, ctx), ctx),
    section("Contingency pools", renderPools(report.pools, ctx), ctx),
  ];
  const zoned = report.pools.filter((p) => p.zones.length > 0);
  if (zoned.length > 0) {
    sections.push(
      section(
        "Slots by zone",
        renderTable(
          ["pool", "zone", "slots", "free", "leased", "reserved", "pending"],
          zoned.flatMap((p) => p.zones.map((z) => [p.name, z.name, ...zoneCounts(z)])),
          ctx.style,
        ),
        ctx,
      ),
    );
  }
  sections.push(section("Pool claims", renderClaims(report.claims, ctx), ctx));
  const failovers = report.services.filter((s) => s.lastFailover || s.failingOver);
  for (const s of failovers) {
    const f = s.failingOver ?? s.lastFailover!;
    const title = s.failingOver
      ? `Failover in progress: ${s.namespace}/${s.name}`
      : `Last failover: ${s.namespace}/${s.name}`;
    sections.push(section(title, renderFailover(f, ctx), ctx));
  }
  return sections.join("\n");
}
