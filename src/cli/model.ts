// What the CLI shows, computed from the objects as listed: pure functions, no API calls. The JSON
// output prints these summaries, so scripts get the same facts the tables show.
import type * as k8s from "@kubernetes/client-node";
import type {
  ContingencyPoolSpec,
  ContingencyPoolStatus,
  FailoverCapacityStatus,
  FailoverStatus,
  LastFailover,
  PoolClaimSpec,
  PoolClaimStatus,
  SlotCounts,
  StorageServiceSpec,
  StorageServiceStatus,
} from "../api/index.ts";
import { annotations, labels } from "../controllers/labels.ts";
import type { CustomObject } from "../kube/client.ts";

/** Objects as the API server returns them: nothing is assumed present, the operator may not have written status yet. */
type Listed<Spec, Status> = CustomObject<Partial<Spec> | undefined, Partial<Status>>;
export type PoolObject = Listed<ContingencyPoolSpec, ContingencyPoolStatus>;
export type ClaimObject = Listed<PoolClaimSpec, PoolClaimStatus>;
export type ServiceObject = Listed<StorageServiceSpec, StorageServiceStatus>;

interface ConditionSummary {
  status: string;
  reason?: string;
  message?: string;
}

interface ZoneSummary extends SlotCounts {
  name: string;
  /** Slots the spec asks for in the zone. */
  desired: number;
}

export interface PoolSummary extends SlotCounts {
  name: string;
  createdAt?: string;
  slotSize?: { cpu: string; memory: string };
  hotSpares: number;
  allowedNamespaces: string[];
  desired: number;
  zones: ZoneSummary[];
  ready?: ConditionSummary;
  /** The operator's estimate of whether a failover would find a slot now (status.failoverCapacity). */
  failoverCapacity?: FailoverCapacityStatus;
}

export interface SlotSummary {
  lease: string;
  pool: string;
  zone: string;
  node?: string;
  /** "free", or the holder identity: claim:<ns>/<name> or service:<ns>/<name>. */
  holder: string;
}

export interface ClaimSummary {
  namespace: string;
  name: string;
  createdAt?: string;
  pool?: string;
  /** The zone the claim asked for, if any. */
  requestedZone?: string;
  bid: number;
  phase: string;
  slot?: string;
  zone?: string;
  node?: string;
  pod?: string;
  boundAt?: string;
  expiresAt?: string;
  revokedAt?: string;
  revokedBy?: string;
  reason?: string;
  message?: string;
}

interface TimelineStep {
  step: string;
  at: string;
  /** Milliseconds since the failure was detected. */
  offsetMilliseconds: number;
}

export interface FailoverSummary {
  step?: string;
  reason?: string;
  startedAt?: string;
  finishedAt?: string;
  durationMilliseconds?: number;
  fromPod?: string;
  fromZone?: string;
  fromEpoch?: number;
  toZone?: string;
  toNode?: string;
  epoch?: number;
  slot?: string;
  revokedClaim?: string;
  headPod?: string;
  timeline: TimelineStep[];
}

export interface ServiceSummary {
  namespace: string;
  name: string;
  createdAt?: string;
  pool?: string;
  phase: string;
  message?: string;
  epoch?: number;
  head?: { pod?: string; node?: string; zone?: string; slot?: string; since?: string };
  servers: { zone: string; ready: number; replicas: number }[];
  serversReady: number;
  serversTotal: number;
  failoverCount: number;
  /** The failover in progress, if one is. */
  failingOver?: FailoverSummary;
  lastFailover?: FailoverSummary;
  contingencyAvailable?: ConditionSummary;
  /** A move of the head back to its primary zone, if one is in progress. */
  failingBack?: { step: string; reason?: string; startedAt?: string };
  /** The last value of the switchover annotation the operator acted on. */
  handledSwitchover?: string;
}

function condition(
  conditions: readonly { type: string; status: string; reason?: string; message?: string }[] | undefined,
  type: string,
): ConditionSummary | undefined {
  const c = conditions?.find((x) => x.type === type);
  return c ? { status: c.status, reason: c.reason, message: c.message || undefined } : undefined;
}

const count = (n: number | undefined) => (typeof n === "number" && Number.isFinite(n) ? n : 0);

export function summarizePool(pool: PoolObject): PoolSummary {
  const spec = pool.spec ?? {};
  const status = pool.status ?? {};
  const specZones = spec.zones ?? [];
  const statusZones = status.zones ?? [];
  const names = [...new Set([...specZones.map((z) => z.name), ...statusZones.map((z) => z.name)])];
  const zones = names.map((name): ZoneSummary => {
    const observed = statusZones.find((z) => z.name === name);
    return {
      name,
      desired: count(specZones.find((z) => z.name === name)?.slots),
      slots: count(observed?.slots),
      free: count(observed?.free),
      leased: count(observed?.leased),
      reserved: count(observed?.reserved),
      pending: count(observed?.pending),
    };
  });
  const sum = (k: keyof Omit<ZoneSummary, "name">) => zones.reduce((a, z) => a + z[k], 0);
  return {
    name: pool.metadata?.name ?? "",
    createdAt: stamp(pool.metadata?.creationTimestamp),
    slotSize: spec.slotSize
      ? { cpu: String(spec.slotSize.cpu), memory: String(spec.slotSize.memory) }
      : undefined,
    hotSpares: count(spec.hotSpares),
    allowedNamespaces: spec.allowedNamespaces ?? [],
    desired: sum("desired"),
    slots: status.slots ?? sum("slots"),
    free: status.free ?? sum("free"),
    leased: status.leased ?? sum("leased"),
    reserved: status.reserved ?? sum("reserved"),
    pending: status.pending ?? sum("pending"),
    zones,
    ready: condition(status.conditions, "Ready"),
    failoverCapacity: status.failoverCapacity,
  };
}

export function summarizeSlot(lease: k8s.V1Lease): SlotSummary {
  const slotLabels = lease.metadata?.labels ?? {};
  return {
    lease: lease.metadata?.name ?? "",
    pool: slotLabels[labels.pool] ?? "",
    zone: slotLabels[labels.zone] ?? "",
    node: lease.metadata?.annotations?.[annotations.node],
    holder: lease.spec?.holderIdentity || "free",
  };
}

export function summarizeClaim(claim: ClaimObject): ClaimSummary {
  const spec = claim.spec ?? {};
  const status = claim.status ?? {};
  return {
    namespace: claim.metadata?.namespace ?? "",
    name: claim.metadata?.name ?? "",
    createdAt: stamp(claim.metadata?.creationTimestamp),
    pool: spec.pool,
    requestedZone: spec.zone,
    bid: count(spec.bid),
    phase: status.phase ?? "Pending",
    slot: status.slot ?? status.leaseName,
    zone: status.zone,
    node: status.node,
    pod: status.pod,
    boundAt: status.boundAt,
    expiresAt: status.expiresAt,
    revokedAt: status.revokedAt,
    revokedBy: status.revokedBy,
    reason: status.reason,
    message: status.message,
  };
}

function summarizeFailover(f: Partial<FailoverStatus & LastFailover>): FailoverSummary {
  const start = f.startedAt ? Date.parse(f.startedAt) : NaN;
  const timeline = (f.timeline ?? []).map((entry) => ({
    step: entry.step,
    at: entry.at,
    offsetMilliseconds: Number.isNaN(start) ? 0 : Math.max(0, Date.parse(entry.at) - start),
  }));
  const duration =
    f.durationMilliseconds ??
    (f.finishedAt && !Number.isNaN(start) ? Math.max(0, Date.parse(f.finishedAt) - start) : undefined);
  return {
    step: f.step,
    reason: f.reason,
    startedAt: f.startedAt,
    finishedAt: f.finishedAt,
    durationMilliseconds: duration,
    fromPod: f.fromPod,
    fromZone: f.fromZone,
    fromEpoch: f.fromEpoch,
    toZone: f.toZone,
    toNode: f.toNode,
    epoch: f.epoch,
    slot: f.slot ?? f.leaseName,
    revokedClaim: f.revokedClaim,
    headPod: f.headPod,
    timeline,
  };
}

export function summarizeService(service: ServiceObject): ServiceSummary {
  const spec = service.spec ?? {};
  const status = service.status ?? {};
  const servers = (status.servers ?? []).map((s) => ({
    zone: s.zone,
    ready: count(s.ready),
    replicas: count(s.replicas),
  }));
  const head = status.head;
  return {
    namespace: service.metadata?.namespace ?? "",
    name: service.metadata?.name ?? "",
    createdAt: stamp(service.metadata?.creationTimestamp),
    pool: spec.pool,
    phase: status.phase ?? "Pending",
    message: status.message,
    epoch: status.epoch ?? head?.epoch,
    head: head
      ? {
          pod: head.pod,
          node: head.node,
          zone: head.zone,
          slot: head.slot ?? head.leaseName,
          since: head.since,
        }
      : undefined,
    servers,
    serversReady: servers.reduce((a, s) => a + s.ready, 0),
    serversTotal: servers.reduce((a, s) => a + s.replicas, 0),
    failoverCount: count(status.failoverCount),
    failingOver: status.failover ? summarizeFailover(status.failover) : undefined,
    lastFailover: status.lastFailover ? summarizeFailover(status.lastFailover) : undefined,
    contingencyAvailable: condition(status.conditions, "ContingencyAvailable"),
    failingBack: status.failback
      ? { step: status.failback.step, reason: status.failback.reason, startedAt: status.failback.startedAt }
      : undefined,
    handledSwitchover: status.handledSwitchover,
  };
}

/** The client's Date objects and the API's strings alike, as RFC 3339 text. */
function stamp(value: Date | string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return value instanceof Date ? value.toISOString() : value;
}

export interface StatusReport {
  services: ServiceSummary[];
  pools: PoolSummary[];
  claims: ClaimSummary[];
}

const byKey = <T extends { namespace?: string; name: string }>(a: T, b: T) =>
  `${a.namespace ?? ""}/${a.name}`.localeCompare(`${b.namespace ?? ""}/${b.name}`);

export function statusReport(objects: {
  services: ServiceObject[];
  pools: PoolObject[];
  claims: ClaimObject[];
}): StatusReport {
  return {
    services: objects.services.map(summarizeService).sort(byKey),
    pools: objects.pools.map(summarizePool).sort(byKey),
    claims: objects.claims.map(summarizeClaim).sort(byKey),
  };
}

export const sortSummaries = byKey;
