// Storage service metrics, registered in the operator's registry (served on its /metrics) and
// handed to the controllers on their context.
// - Failovers as they end, counted by the step machine (failover.ts).
// - Each service's state (phase, head, failover in progress, last failover, epoch), read from the
//   services' stored status at scrape time, as kube-state-metrics does: the series follow the cache,
//   so a deleted service's disappear with it and an operator that restarts mid-failover reports it.
// Labels name the service `service_namespace` / `service_name`: a scrape adds the target's own
// `namespace`, `service` and `pod` labels, which would overwrite ours.
import * as prom from "prom-client";
import { STORAGE_SERVICE_PHASES, type StorageService } from "../../api/index.ts";
import { removeSeries } from "../../operator/metrics.ts";

export const SERVICE_LABELS = ["service_namespace", "service_name", "pool"] as const;
type ServiceLabel = (typeof SERVICE_LABELS)[number];
export type ServiceLabels = Record<ServiceLabel, string>;

/** The outcome of one failover run, or of one attempt it gave up (it then goes on with another slot). */
export const FAILOVER_OUTCOMES = ["Succeeded", "ReplenishDeferred", "SlotAbandoned"] as const;
export type FailoverOutcomeLabel = (typeof FAILOVER_OUTCOMES)[number];

export interface FailoverMetrics {
  /** A failover run ended, or gave up the slot it had taken. */
  failover(service: ServiceLabels, reason: string, outcome: FailoverOutcomeLabel): void;
  /** Seconds from detection until the head Service selected the new head. */
  switched(service: ServiceLabels, reason: string, seconds: number): void;
  /** Drops the failover series of a deleted service (its state series follow the cache by themselves). */
  forget(namespace: string, name: string): Promise<void>;
}

/** Where the state series come from at scrape time: the services this operator runs, as stored. */
export interface ServiceSource {
  services(): readonly StorageService[];
  now(): number;
}

/** One service's state as its status records it; pure, so the scrape reports what status says. */
export interface ServiceSignals {
  labels: ServiceLabels;
  phase: string | undefined;
  headReady: boolean;
  failoverInProgress: boolean;
  /** Seconds since the failover in progress was detected; 0 when none is. */
  failoverAgeSeconds: number;
  failoverReason: string | undefined;
  lastFailoverSeconds: number | undefined;
  epoch: number | undefined;
}

export function serviceLabels(service: StorageService): ServiceLabels {
  return {
    service_namespace: service.metadata.namespace ?? "",
    service_name: service.metadata.name ?? "",
    pool: service.spec.pool,
  };
}

export function serviceSignals(service: StorageService, now: number): ServiceSignals {
  const status = service.status ?? {};
  const started = status.failover ? Date.parse(status.failover.startedAt) : NaN;
  const lastMs = status.lastFailover?.durationMilliseconds;
  return {
    labels: serviceLabels(service),
    phase: status.phase,
    headReady: status.conditions?.some((c) => c.type === "HeadAvailable" && c.status === "True") ?? false,
    failoverInProgress: !!status.failover,
    failoverAgeSeconds: Number.isFinite(started) ? Math.max(0, now - started) / 1000 : 0,
    failoverReason: status.failover?.reason,
    lastFailoverSeconds: lastMs === undefined ? undefined : lastMs / 1000,
    epoch: status.epoch,
  };
}

function getOrCreate<M>(registry: prom.Registry, name: string, create: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? create();
}

export function failoverMetrics(
  registry: prom.Registry = prom.register,
  source?: ServiceSource,
): FailoverMetrics {
  const registers = [registry];
  const signals = () => {
    const now = source?.now() ?? Date.now();
    return (source?.services() ?? []).map((s) => serviceSignals(s, now));
  };
  /** A gauge of one value per service, filled afresh from the services at every scrape. */
  const stateGauge = (name: string, help: string, value: (s: ServiceSignals) => number | undefined) =>
    getOrCreate(
      registry,
      name,
      () =>
        new prom.Gauge({
          name,
          help,
          labelNames: SERVICE_LABELS,
          registers,
          collect() {
            this.reset();
            for (const s of signals()) {
              const v = value(s);
              if (v !== undefined) this.set(s.labels, v);
            }
          },
        }),
    );

  const total = getOrCreate(
    registry,
    "understudy_failovers_total",
    () =>
      new prom.Counter({
        name: "understudy_failovers_total",
        help:
          "Failovers of storage service heads that ended, by service, reason (NodeNotReady, PodNotReady, ProbeFailed, Manual, ...) " +
          "and outcome (Succeeded, ReplenishDeferred, or SlotAbandoned for an attempt that gave its slot up).",
        labelNames: [...SERVICE_LABELS, "reason", "outcome"],
        registers,
        // A failover in progress has its series at 0, so the first one to end is an increase.
        collect() {
          for (const s of signals())
            if (s.failoverReason !== undefined)
              for (const outcome of FAILOVER_OUTCOMES)
                this.inc({ ...s.labels, reason: s.failoverReason, outcome }, 0);
        },
      }),
  );
  const switchSeconds = getOrCreate(
    registry,
    "understudy_failover_switch_seconds",
    () =>
      new prom.Histogram({
        name: "understudy_failover_switch_seconds",
        help: "Seconds from detecting a failed head until the head Service selected the new head, by service and reason.",
        labelNames: [...SERVICE_LABELS, "reason"],
        buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120],
        registers,
      }),
  );
  getOrCreate(
    registry,
    "understudy_storage_service_phase",
    () =>
      new prom.Gauge({
        name: "understudy_storage_service_phase",
        help: "1 for each storage service's current phase, 0 for its other phases.",
        labelNames: [...SERVICE_LABELS, "phase"],
        registers,
        collect() {
          this.reset();
          for (const s of signals())
            if (s.phase !== undefined)
              for (const phase of STORAGE_SERVICE_PHASES)
                this.set({ ...s.labels, phase }, phase === s.phase ? 1 : 0);
        },
      }),
  );
  stateGauge(
    "understudy_storage_service_head_ready",
    "1 while the storage service's head is healthy, Ready and routed (condition HeadAvailable), else 0.",
    (s) => (s.headReady ? 1 : 0),
  );
  stateGauge(
    "understudy_storage_service_failover_in_progress",
    "1 while a failover of the storage service's head is in progress, else 0.",
    (s) => (s.failoverInProgress ? 1 : 0),
  );
  stateGauge(
    "understudy_storage_service_failover_age_seconds",
    "Seconds since the failover in progress was detected (status.failover.startedAt); 0 when none is.",
    (s) => s.failoverAgeSeconds,
  );
  stateGauge(
    "understudy_storage_service_last_failover_duration_seconds",
    "Duration of the storage service's last finished failover (status.lastFailover).",
    (s) => s.lastFailoverSeconds,
  );
  stateGauge(
    "understudy_storage_service_epoch",
    "Current epoch of each storage service (raised at every failover and failback).",
    (s) => s.epoch,
  );

  return {
    failover: (service, reason, outcome) => total.inc({ ...service, reason, outcome }),
    switched: (service, reason, seconds) => switchSeconds.observe({ ...service, reason }, seconds),
    forget: async (namespace, name) => {
      const match = { service_namespace: namespace, service_name: name };
      await removeSeries(total, match);
      await removeSeries(switchSeconds, match);
    },
  };
}
