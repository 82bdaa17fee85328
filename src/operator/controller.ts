// A level-triggered controller (controller-runtime's Controller, kube-rs's Controller): watched
// events only enqueue keys; the reconciler receives a key, reads the current state itself and says
// whether to look again later. Failures are retried with per-key backoff, and one key is never
// reconciled by two workers at once (the work queue's guarantee).
import type * as k8s from "@kubernetes/client-node";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { Informer } from "../kube/informer.ts";
import { errorMessage } from "../kube/errors.ts";
import { ownKey, type KeyMapper } from "./keys.ts";
import { createLogger, keyLogger, type Logger } from "./logger.ts";
import type { ControllerMetrics } from "./metrics.ts";
import { WorkQueue } from "./queue.ts";
import { retryRateLimiter, type RateLimiter, type RetryPolicy } from "./rate-limiter.ts";

export interface ReconcileResult {
  /** Reconcile this key again after this long, even if nothing it watches changes. */
  requeueAfterMs?: number;
}

interface ReconcileContext {
  /** A logger naming the object: `{controller, kind, namespace, name}`. */
  log: Logger;
  /** How many times this key has failed in a row before this attempt. */
  retries: number;
}

export type Reconciler = (key: string, context: ReconcileContext) => Promise<ReconcileResult | void>;

export interface ControllerOptions {
  name: string;
  reconcile: Reconciler;
  /** The kind its keys name, for logs. */
  kind?: string;
  /** Workers reconciling different keys at once. */
  concurrency?: number;
  /** Backoff of failing keys; ignored when `rateLimiter` is given. */
  retry?: RetryPolicy;
  rateLimiter?: RateLimiter;
  /** Keys reconciled before every other key waiting (the work queue's urgent lane). */
  urgent?: (key: string) => boolean;
  log?: Logger;
  metrics?: ControllerMetrics;
}

type Result = "success" | "requeue_after" | "error";

export class Controller {
  readonly name: string;
  readonly kind: string | undefined;
  readonly concurrency: number;
  private readonly reconciler: Reconciler;
  private readonly queue: WorkQueue;
  private readonly log: Logger;
  private readonly metrics: ControllerMetrics | undefined;
  private readonly replays: (() => void)[] = [];
  private workers: Promise<void>[] = [];
  private state: "new" | "running" | "stopped" = "new";

  constructor(options: ControllerOptions) {
    const concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw new Error(`controller ${options.name}: concurrency must be an integer >= 1, got ${concurrency}`);
    this.name = options.name;
    this.kind = options.kind;
    this.concurrency = concurrency;
    this.reconciler = options.reconcile;
    this.metrics = options.metrics;
    const queueDuration = this.metrics?.queueDuration;
    this.queue = new WorkQueue({
      rateLimiter: options.rateLimiter ?? retryRateLimiter(options.retry),
      ...(options.urgent ? { urgent: options.urgent } : {}),
      ...(queueDuration
        ? { observeWait: (lane, seconds) => queueDuration.observe({ controller: this.name, lane }, seconds) }
        : {}),
    });
    this.log = (options.log ?? createLogger()).child({ controller: options.name });
    this.metrics?.trackQueueDepth(this.name, () => this.queue.len());
  }

  /**
   * Enqueues the keys `map` gives for every object the informer adds, changes, deletes or resyncs
   * (for a change, the keys of the old object too, so a moved owner hears of it). Keys accumulate
   * before start() and are reconciled once it runs. An update `ignoreUpdate` returns true for
   * enqueues nothing (like controller-runtime's predicates).
   */
  watch<T extends k8s.KubernetesObject>(
    informer: Informer<T>,
    map: KeyMapper<T> = ownKey,
    ignoreUpdate?: (old: T, object: T) => boolean,
  ): this {
    const enqueue = (object: T) => {
      let keys: readonly string[];
      try {
        keys = map(object);
      } catch (err) {
        this.log.error({ err, object: object.metadata?.name }, "mapping an event to keys failed");
        return;
      }
      for (const key of keys) this.queue.add(key);
    };
    informer.on((event) => {
      if (event.type === "update" && ignoreUpdate?.(event.old, event.object)) return;
      enqueue(event.object);
      if (event.type === "update") enqueue(event.old);
    });
    // Objects the informer cached before this handler existed are enqueued at start.
    this.replays.push(() => informer.list().forEach(enqueue));
    return this;
  }

  enqueue(key: string): void {
    this.queue.add(key);
  }

  enqueueAfter(key: string, delayMs: number): void {
    this.queue.addAfter(key, delayMs);
  }

  /** Keys waiting to be reconciled. */
  queueDepth(): number {
    return this.queue.len();
  }

  get running(): boolean {
    return this.state === "running";
  }

  /** Starts the workers. Call once the watched informers have synced. */
  start(): void {
    if (this.state !== "new") throw new Error(`controller ${this.name} was already started`);
    this.state = "running";
    for (const replay of this.replays) replay();
    this.workers = Array.from({ length: this.concurrency }, () => this.work());
    this.log.info({ concurrency: this.concurrency }, "controller started");
  }

  /**
   * Stops taking work and waits up to `timeoutMs` for reconciles in flight. Resolves true when
   * they all finished, false when the wait ran out.
   */
  async stop(timeoutMs = 30_000): Promise<boolean> {
    if (this.state === "stopped") return true;
    this.state = "stopped";
    const finished = Promise.all([this.queue.shutdown(), ...this.workers]).then(() => true);
    const timer = new AbortController();
    const timedOut = sleep(timeoutMs, false, { signal: timer.signal }).catch(() => false);
    const done = await Promise.race([finished, timedOut]);
    timer.abort();
    if (done) this.log.info("controller stopped");
    else
      this.log.warn(
        { inFlight: this.queue.inFlight(), timeoutMs },
        "controller stopped with reconciles in flight",
      );
    return done;
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.reconcileKey(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async reconcileKey(key: string): Promise<void> {
    const log = keyLogger(this.log, this.name, this.kind, key);
    const retries = this.queue.numRequeues(key);
    const started = performance.now();
    let result: Result;
    try {
      const outcome = await this.reconciler(key, { log, retries });
      this.queue.forget(key);
      if (outcome && outcome.requeueAfterMs !== undefined) {
        this.queue.addAfter(key, outcome.requeueAfterMs);
        result = "requeue_after";
      } else {
        result = "success";
      }
    } catch (err) {
      result = "error";
      this.metrics?.reconcileErrors.inc({ controller: this.name });
      this.queue.addRateLimited(key);
      log.error({ err, key, retries, reason: errorMessage(err) }, "reconcile failed; retrying with backoff");
    }
    const seconds = (performance.now() - started) / 1000;
    this.metrics?.reconcileDuration.observe({ controller: this.name, result }, seconds);
    this.metrics?.reconcileTotal.inc({ controller: this.name, result });
  }
}
