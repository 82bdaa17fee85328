// Prometheus metrics of the operator process: Node's default process metrics, the controller
// metrics every Controller reports, and a place for controllers to register their own.
import * as prom from "prom-client";

const METRIC_PREFIX = "understudy_";

/**
 * The metrics of every Controller, labelled by controller name (after controller-runtime's
 * controller_runtime_reconcile_*, workqueue_depth and workqueue_queue_duration_seconds).
 */
export interface ControllerMetrics {
  reconcileDuration: prom.Histogram<"controller" | "result">;
  /** How long a key waited, ready, before a worker took it, by controller and queue lane. */
  queueDuration: prom.Histogram<"controller" | "lane">;
  reconcileTotal: prom.Counter<"controller" | "result">;
  reconcileErrors: prom.Counter<"controller">;
  /** Registers the source of one controller's queue depth, read at scrape time. */
  trackQueueDepth(controller: string, depth: () => number): void;
}

export class OperatorMetrics {
  readonly registry: prom.Registry;
  readonly controller: ControllerMetrics;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    this.registry = new prom.Registry();
    if (options.defaultMetrics ?? true) prom.collectDefaultMetrics({ register: this.registry });

    const depthSources = new Map<string, () => number>();
    const queueDepth = new prom.Gauge({
      name: `${METRIC_PREFIX}workqueue_depth`,
      help: "Keys waiting in a controller's work queue.",
      labelNames: ["controller"],
      registers: [this.registry],
      collect() {
        for (const [controller, depth] of depthSources) this.set({ controller }, depth());
      },
    });
    void queueDepth;

    this.controller = {
      reconcileDuration: new prom.Histogram({
        name: `${METRIC_PREFIX}reconcile_duration_seconds`,
        help: "Time a reconcile took, by controller and result (success, requeue_after, error).",
        labelNames: ["controller", "result"],
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
        registers: [this.registry],
      }),
      queueDuration: new prom.Histogram({
        name: `${METRIC_PREFIX}workqueue_queue_duration_seconds`,
        help: "Time a key waited in a controller's work queue before a worker took it, by controller and lane (urgent, routine).",
        labelNames: ["controller", "lane"],
        buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        registers: [this.registry],
      }),
      reconcileTotal: new prom.Counter({
        name: `${METRIC_PREFIX}reconcile_total`,
        help: "Reconciles, by controller and result (success, requeue_after, error).",
        labelNames: ["controller", "result"],
        registers: [this.registry],
      }),
      reconcileErrors: new prom.Counter({
        name: `${METRIC_PREFIX}reconcile_errors_total`,
        help: "Reconciles that failed and were requeued with backoff, by controller.",
        labelNames: ["controller"],
        registers: [this.registry],
      }),
      trackQueueDepth: (controller, depth) => {
        depthSources.set(controller, depth);
      },
    };
  }

  /** A counter of the operator's own; registering the same name twice returns the first. */
  counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): prom.Counter<L> {
    return this.existing(name) ?? new prom.Counter({ name, help, labelNames, registers: [this.registry] });
  }

  gauge<L extends string>(name: string, help: string, labelNames: readonly L[] = []): prom.Gauge<L> {
    return this.existing(name) ?? new prom.Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  histogram<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[] = [],
    buckets?: number[],
  ): prom.Histogram<L> {
    return (
      this.existing(name) ??
      new prom.Histogram({ name, help, labelNames, buckets, registers: [this.registry] })
    );
  }

  /** The text exposition format a scrape gets. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private existing<M>(name: string): M | undefined {
    return this.registry.getSingleMetric(name) as M | undefined;
  }
}

/**
 * Removes every series of `metric` whose labels include `match` (prom-client removes only exact
 * label sets): the series of a deleted pool or service, whatever its other labels.
 */
export async function removeSeries(
  metric: prom.Counter<string> | prom.Gauge<string> | prom.Histogram<string>,
  match: Record<string, string>,
): Promise<void> {
  const { values } = await metric.get();
  const seen = new Set<string>();
  for (const { labels } of values) {
    if (!Object.entries(match).every(([name, value]) => labels[name] === value)) continue;
    // A histogram's buckets carry `le`, which is not one of the series' own labels.
    const { le: _bucket, ...own } = labels;
    const key = JSON.stringify(own);
    if (seen.has(key)) continue;
    seen.add(key);
    metric.remove(own as prom.LabelValues<string>);
  }
}
