// Failover metrics, registered in the operator's registry (served on its /metrics) and handed to
// the controllers on their context.
import * as prom from "prom-client";

export interface FailoverMetrics {
  /** A failover finished (outcome Succeeded, or ReplenishDeferred when the pool had not refilled). */
  failover(reason: string, outcome: string): void;
  /** Seconds from detection until the head Service selected the new head. */
  switched(reason: string, seconds: number): void;
  epoch(namespace: string, name: string, epoch: number): void;
  forget(namespace: string, name: string): void;
}

function getOrCreate<M>(registry: prom.Registry, name: string, create: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? create();
}

export function failoverMetrics(registry: prom.Registry = prom.register): FailoverMetrics {
  const registers = [registry];
  const total = getOrCreate(
    registry,
    "understudy_failovers_total",
    () =>
      new prom.Counter({
        name: "understudy_failovers_total",
        help: "Failovers of storage service heads that finished, by reason (NodeNotReady, PodNotReady, ProbeFailed, Manual, ...) and outcome.",
        labelNames: ["reason", "outcome"],
        registers,
      }),
  );
  const switchSeconds = getOrCreate(
    registry,
    "understudy_failover_switch_seconds",
    () =>
      new prom.Histogram({
        name: "understudy_failover_switch_seconds",
        help: "Seconds from detecting a failed head until the head Service selected the new head.",
        labelNames: ["reason"],
        buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120],
        registers,
      }),
  );
  const epochs = getOrCreate(
    registry,
    "understudy_storage_service_epoch",
    () =>
      new prom.Gauge({
        name: "understudy_storage_service_epoch",
        help: "Current epoch of each storage service (raised at every failover and failback).",
        labelNames: ["namespace", "name"],
        registers,
      }),
  );
  return {
    failover: (reason, outcome) => total.inc({ reason, outcome }),
    switched: (reason, seconds) => switchSeconds.observe({ reason }, seconds),
    epoch: (namespace, name, epoch) => epochs.set({ namespace, name }, epoch),
    forget: (namespace, name) => epochs.remove({ namespace, name }),
  };
}
