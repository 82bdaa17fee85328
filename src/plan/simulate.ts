// One synthetic day of a contingency pool: tenant demand on a daily curve, random head failures and
// one zone outage, driven by the operator's real decision functions (planGrants for tenant grants,
// chooseFailoverSlot for the failover's slot and victim). Seeded, so the same parameters give the
// same day on every machine. `understudy plan` and bench/utilization.ts both run it.
import { chooseFailoverSlot } from "../decisions/failover-slot.ts";
import { planGrants } from "../decisions/grants.ts";
import { slotLeaseName } from "../decisions/names.ts";
import { DEFAULT_TENANT_POD_POLICY } from "../decisions/tenant-pod-fields.ts";
import type { ClaimView, NodeView, PoolView, SlotView } from "../decisions/types.ts";
import { seededRandom } from "./random.ts";

const NODES_PER_ZONE = 2;
export const DAY = 86_400;
const GiB = 1024 ** 3;

export interface SimParams {
  seed: number;
  /** The pool's zones. */
  zones: string[];
  /** The primary zone of each storage service drawing on the pool: one entry per service. */
  serviceZones: string[];
  slotsPerZone: number;
  /** Extra slots a zone's nodes can hold, used to replenish a slot a storage service took. */
  headroomPerZone: number;
  hotSpares: number;
  tickSeconds: number;
  /** Mean time between failures of one head (hours). */
  headMtbfHours: number;
  /** How long a failed-over head stays on its slot before it moves back (minutes, mean). */
  meanRepairMinutes: number;
  /** One zone outage per day, at a random time, this long (minutes). */
  zoneOutageMinutes: number;
  /** Tenant claim arrivals per hour at the daily peak; the trough is 30% of it. */
  peakArrivalsPerHour: number;
  meanTenantMinutes: number;
  /** A Pending claim not granted within this time is withdrawn. */
  patienceMinutes: number;
  /** Share of claims that ask for a zone. */
  zonedShare: number;
  /** Share of claims that go back to Pending when revoked. */
  requeueShare: number;
}

const SYNTHETIC_ZONES = ["zone-a", "zone-b", "zone-c"];

/** `count` services spread evenly over `zones`, in turn. */
export const spreadServices = (count: number, zones: readonly string[]): string[] =>
  Array.from({ length: count }, (_, i) => zones[i % zones.length]!);

export const DEFAULTS: SimParams = {
  seed: 1,
  zones: SYNTHETIC_ZONES,
  serviceZones: spreadServices(24, SYNTHETIC_ZONES),
  slotsPerZone: 4,
  headroomPerZone: 1,
  hotSpares: 0,
  tickSeconds: 5,
  headMtbfHours: 48,
  meanRepairMinutes: 30,
  zoneOutageMinutes: 45,
  peakArrivalsPerHour: 24,
  meanTenantMinutes: 40,
  patienceMinutes: 30,
  zonedShare: 0.25,
  requeueShare: 0.5,
};

const exponential = (random: () => number, mean: number) => -Math.log(1 - random()) * mean;

function poisson(random: () => number, lambda: number): number {
  const limit = Math.exp(-lambda);
  let k = 0;
  let p = random();
  while (p > limit) {
    k++;
    p *= random();
  }
  return k;
}

interface Tenant {
  view: ClaimView;
  arrivedAt: number;
  remaining: number;
  boundAt?: number;
  lease?: string;
}

interface Service {
  name: string;
  zone: string;
  state: "running" | "onSlot" | "waiting";
  lease?: string;
  repairAt?: number;
  failedAt?: number;
  /** The current failover already tried once (so a later success is not counted as found at once). */
  triedOnce?: boolean;
}

export interface DayResult {
  slotSeconds: { total: number; leased: number; service: number; free: number };
  failovers: {
    total: number;
    foundAtOnce: number;
    freeSlot: number;
    revoked: number;
    zoneFallback: number;
    waitedSeconds: number[];
    inOutage: number;
    inOutageFoundAtOnce: number;
  };
  tenants: {
    arrived: number;
    granted: number;
    withdrawn: number;
    revoked: number;
    lostToOutage: number;
    waitSeconds: number[];
  };
}

/** One synthetic day. Deterministic for a given seed and parameters. */
export function simulateDay(params: SimParams): DayResult {
  const random = seededRandom(params.seed);
  const { zones } = params;
  const pool: PoolView = {
    name: "sim",
    zones: zones.map((name) => ({ name, slots: params.slotsPerZone })),
    slotSize: { cpuMillis: 1000, memoryBytes: 2 * GiB },
    allowedNamespaces: ["*"],
    hotSpares: params.hotSpares,
    nodeSelector: {},
    tolerations: [],
    revocation: { plannedGraceSeconds: 30, emergencyGraceSeconds: 2 },
    tenantPods: DEFAULT_TENANT_POD_POLICY,
  };
  const nodeName = (zone: string, i: number) => `${zone}-node-${(i % NODES_PER_ZONE) + 1}`;
  const down = new Set<string>();
  const nodes = (): NodeView[] =>
    zones.flatMap((zone) =>
      Array.from({ length: NODES_PER_ZONE }, (_, i) => ({
        name: nodeName(zone, i),
        zone,
        ready: !down.has(zone),
        unschedulable: false,
        allocatable: { cpuMillis: 8000, memoryBytes: 32 * GiB, pods: 110 },
        requested: { cpuMillis: 0, memoryBytes: 0, pods: 0 },
        labels: { "topology.kubernetes.io/zone": zone },
        taints: [],
      })),
    );
  const slots = new Map<string, SlotView>();
  const nextIndex = new Map<string, number>();
  const addSlot = (zone: string) => {
    const index = nextIndex.get(zone) ?? 0;
    nextIndex.set(zone, index + 1);
    const leaseName = slotLeaseName(pool.name, zone, index);
    slots.set(leaseName, {
      leaseName,
      pool: pool.name,
      zone,
      index,
      node: nodeName(zone, index),
      holder: { kind: "free" },
      resourceVersion: "1",
    });
  };
  for (const zone of zones) for (let i = 0; i < params.slotsPerZone; i++) addSlot(zone);
  const slotsIn = (zone: string) => [...slots.values()].filter((s) => s.zone === zone).length;
  const setHolder = (lease: string, holder: SlotView["holder"], at: number) => {
    const s = slots.get(lease)!;
    slots.set(lease, {
      ...s,
      holder,
      acquiredAt: at * 1000,
      resourceVersion: String(Number(s.resourceVersion) + 1),
    });
  };
  /** The pool gives back a replenished slot once it is free again and the zone is over its count. */
  const shrink = (zone: string) => {
    for (const s of [...slots.values()].reverse()) {
      if (slotsIn(zone) <= params.slotsPerZone) return;
      if (s.zone === zone && s.holder.kind === "free") slots.delete(s.leaseName);
    }
  };

  const tenants = new Map<string, Tenant>();
  let tenantCount = 0;
  const services: Service[] = params.serviceZones.map((zone, i) => ({
    name: `svc-${i}`,
    zone,
    state: "running",
  }));
  const outageStart = Math.floor(random() * (DAY - params.zoneOutageMinutes * 60));
  const outageZone = zones[Math.floor(random() * zones.length)]!;
  const outageEnd = outageStart + params.zoneOutageMinutes * 60;

  const result: DayResult = {
    slotSeconds: { total: 0, leased: 0, service: 0, free: 0 },
    failovers: {
      total: 0,
      foundAtOnce: 0,
      freeSlot: 0,
      revoked: 0,
      zoneFallback: 0,
      waitedSeconds: [],
      inOutage: 0,
      inOutageFoundAtOnce: 0,
    },
    tenants: { arrived: 0, granted: 0, withdrawn: 0, revoked: 0, lostToOutage: 0, waitSeconds: [] },
  };

  const endTenant = (t: Tenant, requeue: boolean, now: number) => {
    if (t.lease) setHolder(t.lease, { kind: "free" }, now);
    t.lease = undefined;
    if (requeue) {
      t.remaining -= now - (t.boundAt ?? now);
      t.view = { ...t.view, phase: "Pending", createdAt: now * 1000 };
      t.arrivedAt = now;
      t.boundAt = undefined;
    } else tenants.delete(t.view.name);
  };

  const failHead = (s: Service, now: number) => {
    if (s.state === "waiting") return;
    if (s.lease) {
      setHolder(s.lease, { kind: "free" }, now);
      shrink(slots.get(s.lease)!.zone);
    }
    s.lease = undefined;
    s.state = "waiting";
    s.failedAt = now;
    s.triedOnce = false;
    result.failovers.total++;
    if (down.size > 0) result.failovers.inOutage++;
  };

  const tick = params.tickSeconds;
  const failProbability = 1 - Math.exp(-tick / (params.headMtbfHours * 3600));
  for (let now = 0; now < DAY; now += tick) {
    // The zone outage: nodes NotReady; heads there fail; tenant pods there are lost.
    if (now <= outageStart && outageStart < now + tick) {
      down.add(outageZone);
      for (const s of services) {
        const onSlotThere = s.lease !== undefined && slots.get(s.lease)?.zone === outageZone;
        if ((s.state === "running" && s.zone === outageZone) || onSlotThere) failHead(s, now);
      }
      for (const t of [...tenants.values()]) {
        if (t.lease && slots.get(t.lease)?.zone === outageZone) {
          result.tenants.lostToOutage++;
          endTenant(t, t.view.requeueOnRevoke, now);
        }
      }
    }
    if (now <= outageEnd && outageEnd < now + tick) down.delete(outageZone);

    // Tenants: arrivals on a daily curve, completions, withdrawals.
    const hour = now / 3600;
    const rate = params.peakArrivalsPerHour * (0.65 + 0.35 * Math.sin(((hour - 8) / 24) * 2 * Math.PI));
    for (let k = poisson(random, (rate * tick) / 3600); k > 0; k--) {
      const name = `t-${tenantCount++}`;
      const zoned = random() < params.zonedShare;
      tenants.set(name, {
        view: {
          namespace: "tenants",
          name,
          pool: pool.name,
          zone: zoned ? zones[Math.floor(random() * zones.length)] : undefined,
          bid: 1 + Math.floor(random() * 100),
          createdAt: now * 1000,
          phase: "Pending",
          requeueOnRevoke: random() < params.requeueShare,
        },
        arrivedAt: now,
        remaining: exponential(random, params.meanTenantMinutes * 60),
      });
      result.tenants.arrived++;
    }
    for (const t of [...tenants.values()]) {
      if (t.boundAt !== undefined && now - t.boundAt >= t.remaining) endTenant(t, false, now);
      else if (t.boundAt === undefined && now - t.arrivedAt >= params.patienceMinutes * 60) {
        result.tenants.withdrawn++;
        tenants.delete(t.view.name);
      }
    }

    // Heads fail at random; heads on slots move back once repaired.
    for (const s of services) {
      if (s.state !== "waiting" && random() < failProbability) failHead(s, now);
      else if (s.state === "onSlot" && now >= s.repairAt! && !down.has(s.zone)) {
        const zone = slots.get(s.lease!)!.zone;
        setHolder(s.lease!, { kind: "free" }, now);
        shrink(zone);
        s.lease = undefined;
        s.state = "running";
      }
    }

    // Failovers, one service at a time, each seeing the previous one's slot taken.
    for (const s of services.filter((x) => x.state === "waiting").sort((a, b) => a.failedAt! - b.failedAt!)) {
      const choice = chooseFailoverSlot({
        service: { namespace: "services", name: s.name },
        slots: [...slots.values()],
        nodes: nodes(),
        claims: [...tenants.values()].map((t) => t.view),
        failedZone: s.zone,
        failedZones: [...down],
      });
      const first = !s.triedOnce;
      s.triedOnce = true;
      if (choice.kind === "none") continue;
      if (first) {
        result.failovers.foundAtOnce++;
        if (down.size > 0) result.failovers.inOutageFoundAtOnce++;
      } else result.failovers.waitedSeconds.push(now - s.failedAt!);
      if (choice.zoneFallback) result.failovers.zoneFallback++;
      if (choice.victim) {
        result.failovers.revoked++;
        result.tenants.revoked++;
        const victim = tenants.get(choice.victim.name)!;
        endTenant(victim, victim.view.requeueOnRevoke, now);
      } else result.failovers.freeSlot++;
      setHolder(choice.slot.leaseName, { kind: "service", namespace: "services", name: s.name }, now);
      s.lease = choice.slot.leaseName;
      s.state = "onSlot";
      s.repairAt = now + exponential(random, params.meanRepairMinutes * 60);
      // Replenish: the pool replaces the slot where the zone's nodes have room.
      const zone = choice.slot.zone;
      if (!down.has(zone) && slotsIn(zone) < params.slotsPerZone + params.headroomPerZone) addSlot(zone);
    }

    // Grants: the pool controller's decision over the current snapshot.
    const plan = planGrants({
      pool,
      slots: [...slots.values()],
      claims: [...tenants.values()].map((t) => t.view),
      nodes: nodes(),
    });
    for (const grant of plan.grants) {
      if (grant.adopted) continue;
      const t = tenants.get(grant.claim.name)!;
      setHolder(grant.slot.leaseName, { kind: "claim", namespace: "tenants", name: t.view.name }, now);
      t.view = { ...t.view, phase: "Bound", boundAt: now * 1000 };
      t.boundAt = now;
      t.lease = grant.slot.leaseName;
      result.tenants.granted++;
      result.tenants.waitSeconds.push(now - t.arrivedAt);
    }

    for (const s of slots.values()) {
      result.slotSeconds.total += tick;
      if (s.holder.kind === "claim") result.slotSeconds.leased += tick;
      else if (s.holder.kind === "service") result.slotSeconds.service += tick;
      else result.slotSeconds.free += tick;
    }
  }
  return result;
}

/** `days` synthetic days, each from its own seed derived from `params.seed`. */
export function simulateDays(params: SimParams, days: number): DayResult[] {
  return Array.from({ length: days }, (_, d) => simulateDay({ ...params, seed: params.seed + d * 7919 }));
}
