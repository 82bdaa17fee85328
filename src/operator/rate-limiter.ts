// Rate limiters in the manner of client-go's workqueue and flowcontrol packages. Each answers
// "how long must this wait?" as a number, so the arithmetic is testable without timers.

/** Decides how long a key waits before it is retried. */
export interface RateLimiter {
  /** The delay before `key` may be processed again; counts as one more failure of `key`. */
  when(key: string): number;
  /** Clears the failure history of `key` (it succeeded). */
  forget(key: string): void;
  /** How many times `key` has failed since it was last forgotten. */
  retries(key: string): number;
}

/**
 * Per-key exponential backoff: base, 2·base, 4·base, … capped at max (client-go's
 * ItemExponentialFailureRateLimiter).
 */
export class ExponentialBackoff implements RateLimiter {
  private readonly failures = new Map<string, number>();
  readonly baseMs: number;
  readonly maxMs: number;

  constructor(baseMs = 5, maxMs = 30_000) {
    if (!(baseMs > 0) || !(maxMs >= baseMs))
      throw new Error(`backoff needs 0 < base <= max, got base ${baseMs} ms and max ${maxMs} ms`);
    this.baseMs = baseMs;
    this.maxMs = maxMs;
  }

  when(key: string): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    // 2^failures overflows to Infinity long after it passed max; min() keeps it finite.
    return Math.min(this.baseMs * 2 ** failures, this.maxMs);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/**
 * Which lane a request waits in for its token: an urgent one (a failover step) is served before
 * every routine one waiting, whenever it arrived, so failover writes never queue behind routine work.
 */
export type Lane = "urgent" | "routine";

/**
 * A token bucket (golang.org/x/time/rate): `burst` tokens, refilled at `qps` per second.
 * reserve() always succeeds and says how long the caller must wait for its token; tokens may go
 * negative, which queues later callers behind earlier ones in arrival order. take() waits in a lane
 * instead: while tokens are short, the urgent lane's waiters get each new token before the routine
 * lane's, and routine requests leave the last `urgentReserve` tokens to urgent ones (client-go's
 * flowcontrol has one lane; the API server's priority and fairness keeps seats per level). Without
 * the reserve, routine work that keeps the bucket empty makes every urgent request wait for a refill.
 */
export class TokenBucket {
  readonly qps: number;
  readonly burst: number;
  /** Tokens only the urgent lane may take. */
  readonly urgentReserve: number;
  private tokens: number;
  private last: number;
  private readonly now: () => number;
  private readonly waiting: Record<Lane, (() => void)[]> = { urgent: [], routine: [] };
  private timer: NodeJS.Timeout | undefined;
  /** How many reservations had to wait; for tests and metrics. */
  delayed = 0;

  constructor(qps: number, burst: number, now: () => number = Date.now, urgentReserve = 0) {
    if (!(qps > 0) || !Number.isFinite(qps)) throw new Error(`qps must be a positive number, got ${qps}`);
    if (!Number.isInteger(burst) || burst < 1) throw new Error(`burst must be an integer >= 1, got ${burst}`);
    if (!Number.isInteger(urgentReserve) || urgentReserve < 0 || urgentReserve >= burst)
      throw new Error(`the urgent reserve must be an integer from 0 to burst - 1, got ${urgentReserve}`);
    this.qps = qps;
    this.burst = burst;
    this.urgentReserve = urgentReserve;
    this.tokens = burst;
    this.now = now;
    this.last = now();
  }

  /** Takes one token and returns how many milliseconds to wait before using it. */
  reserve(): number {
    this.refill();
    this.tokens -= 1;
    if (this.tokens >= 0) return 0;
    this.delayed++;
    return Math.ceil((-this.tokens / this.qps) * 1000);
  }

  /** Waits for a token in `lane`: behind the urgent waiters only, or behind every waiter. */
  take(lane: Lane = "routine"): Promise<void> {
    this.refill();
    const ahead = this.waiting.urgent.length + (lane === "routine" ? this.waiting.routine.length : 0);
    if (ahead === 0 && this.tokens >= this.needed(lane)) {
      this.tokens -= 1;
      return Promise.resolve();
    }
    this.delayed++;
    return new Promise((resolve) => {
      this.waiting[lane].push(resolve);
      // A timer set for a routine waiter fires when the reserve is back: too late for this one.
      if (lane === "urgent" && this.waiting.urgent.length === 1 && this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      this.schedule();
    });
  }

  /** Requests waiting for a token in each lane. */
  waiters(): Record<Lane, number> {
    return { urgent: this.waiting.urgent.length, routine: this.waiting.routine.length };
  }

  /** Tokens a request of `lane` needs in the bucket to take one. */
  private needed(lane: Lane): number {
    return lane === "urgent" ? 1 : 1 + this.urgentReserve;
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
  }

  /** Hands out the tokens there are, urgent lane first, and waits for the next one if any waiter is left. */
  private readonly serve = () => {
    this.timer = undefined;
    this.refill();
    for (const lane of ["urgent", "routine"] as const) {
      const waiting = this.waiting[lane];
      while (waiting.length > 0 && this.tokens >= this.needed(lane)) {
        this.tokens -= 1;
        waiting.shift()!();
      }
    }
    this.schedule();
  };

  /** Waits for the token the first waiter needs: an urgent one's, else a routine one's. */
  private schedule(): void {
    if (this.timer) return;
    const lane =
      this.waiting.urgent.length > 0 ? "urgent" : this.waiting.routine.length > 0 ? "routine" : undefined;
    if (!lane) return;
    const ms = ((this.needed(lane) - this.tokens) / this.qps) * 1000;
    this.timer = setTimeout(this.serve, Math.max(1, Math.ceil(ms)));
  }
}

/** A bucket as a RateLimiter: every retry of any key takes a token (client-go's BucketRateLimiter). */
export class BucketRateLimiter implements RateLimiter {
  private readonly bucket: TokenBucket;
  constructor(bucket: TokenBucket) {
    this.bucket = bucket;
  }
  when(): number {
    return this.bucket.reserve();
  }
  forget(): void {}
  retries(): number {
    return 0;
  }
}

/** The longest delay of several limiters (client-go's MaxOfRateLimiter). */
export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: readonly RateLimiter[];
  constructor(...limiters: RateLimiter[]) {
    if (limiters.length === 0) throw new Error("MaxOfRateLimiter needs at least one limiter");
    this.limiters = limiters;
  }
  when(key: string): number {
    // Every limiter must see the failure, so no short-circuit.
    return Math.max(...this.limiters.map((l) => l.when(key)));
  }
  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }
  retries(key: string): number {
    return Math.max(...this.limiters.map((l) => l.retries(key)));
  }
}

export interface RetryPolicy {
  /** First retry delay of a failing key; doubles with each further failure. */
  baseMs?: number;
  /** Cap of a key's retry delay. */
  maxMs?: number;
  /** Optional overall limit on retries across all keys, in retries per second. */
  qps?: number;
  burst?: number;
}

/**
 * Per-key exponential backoff, and an overall token bucket when `qps` is given (the shape of
 * controller-runtime's default controller rate limiter).
 */
export function retryRateLimiter(policy: RetryPolicy = {}): RateLimiter {
  const backoff = new ExponentialBackoff(policy.baseMs, policy.maxMs);
  if (policy.qps === undefined) return backoff;
  const bucket = new TokenBucket(policy.qps, policy.burst ?? Math.max(1, Math.ceil(policy.qps * 10)));
  return new MaxOfRateLimiter(backoff, new BucketRateLimiter(bucket));
}
