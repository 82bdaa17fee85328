// A work queue keyed by object key, with the guarantees of client-go's workqueue: a key waiting
// in the queue is there once however often it is added, and a key being processed is never handed
// out again until done() — if it was added meanwhile, it is handed out once more after. Keys the
// `urgent` predicate names (a storage service failing over) wait in a lane handed out first.
import { retryRateLimiter, type Lane, type RateLimiter } from "./rate-limiter.ts";

export interface WorkQueueOptions {
  /** Decides the delay of addRateLimited; per-key exponential backoff by default. */
  rateLimiter?: RateLimiter;
  /** Whether a key is urgent now: asked whenever the key is added or becomes ready. */
  urgent?: (key: string) => boolean;
  /** Told, as each key is handed out, how long it waited ready in its lane (client-go's queue latency). */
  observeWait?: (lane: Lane, seconds: number) => void;
}

export interface ShutdownOptions {
  /** Hand out the keys already queued before finishing; otherwise they are dropped. */
  drain?: boolean;
}

export class WorkQueue {
  /** Keys ready to hand out, in order, urgent lane first; each at most once, and never one being processed. */
  private readonly ready: Record<Lane, Set<string>> = { urgent: new Set(), routine: new Set() };
  private readonly urgent: (key: string) => boolean;
  /** When each ready key became ready (performance.now()). */
  private readonly readySince = new Map<string, number>();
  private readonly observeWait: ((lane: Lane, seconds: number) => void) | undefined;
  /** Keys that need processing: those queued, and those re-added while being processed. */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  /** Delayed adds: the earliest time each key becomes ready. */
  private readonly waiting = new Map<string, { readyAt: number; timer: NodeJS.Timeout }>();
  private readonly getters: ((key: string | undefined) => void)[] = [];
  private readonly idleWaiters: (() => void)[] = [];
  private readonly rateLimiter: RateLimiter;
  private shuttingDown = false;
  private draining = false;

  constructor(options: WorkQueueOptions = {}) {
    this.rateLimiter = options.rateLimiter ?? retryRateLimiter();
    this.urgent = options.urgent ?? (() => false);
    this.observeWait = options.observeWait;
  }

  /** Marks `key` as needing processing; a routine key waiting that is urgent now moves to the urgent lane. */
  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.dirty.has(key)) {
      if (this.ready.routine.has(key) && this.urgent(key)) {
        this.ready.routine.delete(key);
        this.ready.urgent.add(key);
      }
      return;
    }
    this.dirty.add(key);
    // A key being processed goes back into the queue when done() is called.
    if (!this.processing.has(key)) this.push(key);
  }

  /** Adds `key` after `delayMs`. A key already waiting keeps the earlier of the two times. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const readyAt = Date.now() + delayMs;
    const existing = this.waiting.get(key);
    if (existing && existing.readyAt <= readyAt) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, delayMs);
    this.waiting.set(key, { readyAt, timer });
  }

  /** Adds `key` after the delay its failure history earns (it failed once more). */
  addRateLimited(key: string): void {
    this.addAfter(key, this.rateLimiter.when(key));
  }

  /** Clears the failure history of `key`: the next failure starts from the base delay. */
  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  /** How many times `key` has been retried since it was last forgotten. */
  numRequeues(key: string): number {
    return this.rateLimiter.retries(key);
  }

  /**
   * The next key to process, which the caller owns until it calls done(key). Waits while the queue
   * is empty; resolves undefined once the queue is shut down (and, when draining, empty).
   */
  get(): Promise<string | undefined> {
    const key = this.next();
    if (key !== undefined) {
      this.startProcessing(key);
      return Promise.resolve(key);
    }
    if (this.shuttingDown && !this.moreToDrain()) return Promise.resolve(undefined);
    return new Promise((resolve) => this.getters.push(resolve));
  }

  /** Ends the processing of `key`; if it was added meanwhile it is queued again. */
  done(key: string): void {
    if (!this.processing.delete(key)) return;
    if (this.dirty.has(key)) this.push(key);
    if (this.shuttingDown && this.len() === 0 && !this.moreToDrain()) this.releaseGetters();
    this.notifyIfIdle();
  }

  /** Keys ready to be handed out (the depth a metric reports). */
  len(): number {
    return this.ready.urgent.size + this.ready.routine.size;
  }

  /** Keys handed out and not yet done. */
  inFlight(): number {
    return this.processing.size;
  }

  /** Keys waiting for a delayed add. */
  delayed(): number {
    return this.waiting.size;
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /**
   * Stops accepting keys, cancels delayed adds and resolves when every key handed out is done
   * (with `drain`, also every key that was queued). Workers blocked in get() receive undefined.
   */
  shutdown(options: ShutdownOptions = {}): Promise<void> {
    if (!this.shuttingDown) {
      this.shuttingDown = true;
      this.draining = options.drain ?? false;
      for (const { timer } of this.waiting.values()) clearTimeout(timer);
      this.waiting.clear();
      if (!this.draining) {
        this.ready.urgent.clear();
        this.ready.routine.clear();
        this.readySince.clear();
        this.dirty.clear();
      }
      if (!this.moreToDrain()) this.releaseGetters();
    }
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      this.notifyIfIdle();
    });
  }

  /** While draining, a key re-added during its processing still has to be handed out once more. */
  private moreToDrain(): boolean {
    if (!this.draining) return false;
    for (const key of this.processing) if (this.dirty.has(key)) return true;
    return false;
  }

  private releaseGetters(): void {
    for (const getter of this.getters.splice(0)) getter(undefined);
  }

  private push(key: string): void {
    const lane: Lane = this.urgent(key) ? "urgent" : "routine";
    const getter = this.getters.shift();
    if (getter) {
      this.startProcessing(key);
      this.observeWait?.(lane, 0);
      getter(key);
    } else {
      this.ready[lane].add(key);
      this.readySince.set(key, performance.now());
    }
  }

  /** Takes the first key of the urgent lane, else of the routine lane. */
  private next(): string | undefined {
    for (const lane of ["urgent", "routine"] as const)
      for (const key of this.ready[lane]) {
        this.ready[lane].delete(key);
        const since = this.readySince.get(key)!;
        this.readySince.delete(key);
        this.observeWait?.(lane, (performance.now() - since) / 1000);
        return key;
      }
    return undefined;
  }

  private startProcessing(key: string): void {
    this.dirty.delete(key);
    this.processing.add(key);
  }

  private notifyIfIdle(): void {
    if (!this.shuttingDown || this.processing.size > 0 || this.len() > 0) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
