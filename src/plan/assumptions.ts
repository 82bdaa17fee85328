// What the planner assumes about a pool, each figure with where it came from: observed on the
// cluster, the simulation's default when the cluster says too little, or a flag. Pure: reads objects
// as listed, so the same objects give the same assumptions.
import type { ContingencyPool } from "../api/index.ts";
import type { ClaimObject, ServiceObject } from "../cli/model.ts";
import { freeResources, nodeAcceptsPool, slotResources } from "../decisions/node-fit.ts";
import type { NodeView, PoolView } from "../decisions/types.ts";
import { DEFAULTS, spreadServices } from "./simulate.ts";

type AssumptionSource = "observed" | "default" | "flag";

export interface Assumption<T> {
  value: T;
  source: AssumptionSource;
  /** How the value was found, or why the default stands. */
  note: string;
}

export interface Assumptions {
  zones: Assumption<string[]>;
  /** Primary zone of each storage service drawing on the pool. */
  serviceZones: Assumption<string[]>;
  /** The pool's size now (the smallest zone's count: a zone outage is only as covered as that). */
  slotsPerZone: Assumption<number>;
  hotSpares: Assumption<number>;
  /** Room for more slots on the pool's nodes beyond its own (smallest zone): where a slot a head took is replaced. */
  headroomPerZone: Assumption<number>;
  headMtbfHours: Assumption<number>;
  meanRepairMinutes: Assumption<number>;
  zoneOutageMinutes: Assumption<number>;
  peakArrivalsPerHour: Assumption<number>;
  meanTenantMinutes: Assumption<number>;
  patienceMinutes: Assumption<number>;
  zonedShare: Assumption<number>;
  requeueShare: Assumption<number>;
}

/** The flags that replace an observation or a default; `services` spreads that many over the pool's zones. */
export type AssumptionOverrides = Partial<
  Omit<{ [K in keyof Assumptions]: Assumptions[K]["value"] }, "zones" | "serviceZones"> & { services: number }
>;

export interface Observed {
  pool: ContingencyPool;
  poolView: PoolView;
  services: readonly ServiceObject[];
  claims: readonly ClaimObject[];
  nodes: readonly NodeView[];
  now: number;
}

/** Fewer failovers than this say too little about the failure rate: the default stands. */
const MIN_OBSERVED_FAILOVERS = 3;
/** Claim arrivals are counted over the last day, or since the pool exists, but never less than an hour. */
const ARRIVAL_WINDOW_MS = { max: 86_400_000, min: 3_600_000 };
/** The simulated day's arrival curve averages this share of its peak (see simulate.ts). */
const MEAN_TO_PEAK = 0.65;

const observed = <T>(value: T, note: string): Assumption<T> => ({ value, source: "observed", note });
const byDefault = <T>(value: T, note: string): Assumption<T> => ({ value, source: "default", note });
const created = (o: { metadata?: { creationTimestamp?: Date | string } }) => {
  const t = o.metadata?.creationTimestamp;
  return t === undefined ? undefined : new Date(t).getTime();
};

/** How many more slots fit in what a node's pods leave free. */
function slotsFreeOnNode(node: NodeView, pool: PoolView): number {
  const slot = slotResources(pool);
  const free = freeResources(node);
  return Math.max(
    0,
    Math.min(
      Math.floor(free.cpuMillis / slot.cpuMillis),
      Math.floor(free.memoryBytes / slot.memoryBytes),
      free.pods,
    ),
  );
}

export function observeAssumptions(o: Observed): Assumptions {
  const poolName = o.pool.metadata.name!;
  const zones = o.pool.spec.zones.map((z) => z.name);
  const zoneList = o.pool.spec.zones.map((z) => `${z.name} ${z.slots}`).join(", ");
  const services = o.services.filter((s) => s.spec?.pool === poolName);
  const claims = o.claims.filter((c) => c.spec?.pool === poolName);

  const serviceZones = services.length
    ? observed(
        services.map((s) => s.spec?.primaryZone ?? s.status?.head?.zone ?? s.spec?.zones?.[0] ?? zones[0]!),
        `${services.length} StorageServices with spec.pool ${poolName}, by primary zone`,
      )
    : byDefault(
        spreadServices(DEFAULTS.serviceZones.length, zones),
        `no StorageService draws on ${poolName}: ${DEFAULTS.serviceZones.length} spread over its zones`,
      );

  const roomByZone = zones.map((zone) =>
    o.nodes
      .filter((n) => n.zone === zone && nodeAcceptsPool(n, o.poolView))
      .reduce((sum, n) => sum + slotsFreeOnNode(n, o.poolView), 0),
  );

  const serviceHours = services.reduce(
    (sum, s) => sum + Math.max(0, o.now - (created(s) ?? o.now)) / 3_600_000,
    0,
  );
  const failovers = services.reduce((sum, s) => sum + (s.status?.failoverCount ?? 0), 0);
  const headMtbfHours =
    failovers >= MIN_OBSERVED_FAILOVERS
      ? observed(
          serviceHours / failovers,
          `${failovers} failovers (status.failoverCount, switchovers included) in ${serviceHours.toFixed(1)} service-hours`,
        )
      : byDefault(
          DEFAULTS.headMtbfHours,
          `${failovers} failovers in ${serviceHours.toFixed(1)} service-hours: fewer than ${MIN_OBSERVED_FAILOVERS}`,
        );

  const poolCreated = created(o.pool) ?? o.now - ARRIVAL_WINDOW_MS.max;
  const windowMs = Math.max(ARRIVAL_WINDOW_MS.min, Math.min(ARRIVAL_WINDOW_MS.max, o.now - poolCreated));
  const recent = claims.filter((c) => (created(c) ?? 0) >= o.now - windowMs).length;
  const windowHours = windowMs / 3_600_000;
  const share = (n: number) => n / claims.length;
  const zoned = claims.filter((c) => c.spec?.zone).length;
  const requeued = claims.filter((c) => c.spec?.requeueOnRevoke).length;

  return {
    zones: observed(zones, `spec.zones of ${poolName}`),
    serviceZones,
    slotsPerZone: observed(Math.min(...o.pool.spec.zones.map((z) => z.slots)), `spec.zones (${zoneList})`),
    hotSpares: observed(o.pool.spec.hotSpares, "spec.hotSpares"),
    headroomPerZone: o.nodes.length
      ? observed(
          Math.min(...roomByZone),
          `room left by the pods on the Ready nodes the pool selects, smallest zone (${zones.map((z, i) => `${z} ${roomByZone[i]}`).join(", ")})`,
        )
      : byDefault(DEFAULTS.headroomPerZone, "no node visible"),
    headMtbfHours,
    meanRepairMinutes: byDefault(
      DEFAULTS.meanRepairMinutes,
      "time a head stays on its slot before failing back; not kept in status",
    ),
    zoneOutageMinutes: byDefault(DEFAULTS.zoneOutageMinutes, "one zone outage every simulated day"),
    peakArrivalsPerHour: recent
      ? observed(
          recent / windowHours / MEAN_TO_PEAK,
          `${recent} claims created in the last ${windowHours.toFixed(1)} h, at the peak of a daily curve`,
        )
      : byDefault(DEFAULTS.peakArrivalsPerHour, `no claim on ${poolName} created in the last day`),
    meanTenantMinutes: byDefault(
      DEFAULTS.meanTenantMinutes,
      "how long tenant work runs is not recorded in the API",
    ),
    patienceMinutes: byDefault(
      DEFAULTS.patienceMinutes,
      "how long a Pending claim waits before it is withdrawn",
    ),
    zonedShare: claims.length
      ? observed(share(zoned), `${zoned} of ${claims.length} claims on ${poolName} name a zone`)
      : byDefault(DEFAULTS.zonedShare, `no claim on ${poolName}`),
    requeueShare: claims.length
      ? observed(share(requeued), `${requeued} of ${claims.length} claims on ${poolName} set requeueOnRevoke`)
      : byDefault(DEFAULTS.requeueShare, `no claim on ${poolName}`),
  };
}

/** The flag that overrides an assumption: its name in kebab case; the services' zones by their count. */
export function flagFor(key: keyof Assumptions | keyof AssumptionOverrides): string | undefined {
  if (key === "zones") return undefined;
  if (key === "serviceZones" || key === "services") return "--services";
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** Flags win over observations and defaults. */
export function applyOverrides(base: Assumptions, overrides: AssumptionOverrides): Assumptions {
  const out: Assumptions = { ...base };
  const set = <K extends keyof Assumptions>(key: K, value: Assumptions[K]["value"], flag: string) => {
    out[key] = { value, source: "flag", note: flag } as Assumptions[K];
  };
  for (const [key, value] of Object.entries(overrides) as [keyof AssumptionOverrides, number][]) {
    if (value === undefined) continue;
    if (key === "services")
      set("serviceZones", spreadServices(value, base.zones.value), `${flagFor("serviceZones")} ${value}`);
    else set(key, value, `${flagFor(key)} ${value}`);
  }
  return out;
}
