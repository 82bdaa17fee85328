import { describe, expect, it, vi } from "vitest";
import {
  BucketRateLimiter,
  ExponentialBackoff,
  MaxOfRateLimiter,
  TokenBucket,
  retryRateLimiter,
} from "../../../src/operator/rate-limiter.ts";

describe("ExponentialBackoff", () => {
  it("doubles per failure of a key up to the cap, and forget() starts over", () => {
    const b = new ExponentialBackoff(5, 100);
    expect([1, 2, 3, 4, 5, 6].map(() => b.when("k"))).toEqual([5, 10, 20, 40, 80, 100]);
    expect(b.retries("k")).toBe(6);
    expect(b.when("other")).toBe(5);
    b.forget("k");
    expect(b.retries("k")).toBe(0);
    expect(b.when("k")).toBe(5);
  });

  it("stays at the cap after very many failures", () => {
    const b = new ExponentialBackoff(5, 30_000);
    for (let i = 0; i < 2000; i++) b.when("k");
    expect(b.when("k")).toBe(30_000);
  });

  it("refuses a cap below the base", () => {
    expect(() => new ExponentialBackoff(100, 10)).toThrow(/base/);
  });
});

/** Runs `work` on vitest's fake clock (Date.now included), then back on the real one. */
async function withFakeTimers(work: () => Promise<void>): Promise<void> {
  vi.useFakeTimers();
  try {
    await work();
  } finally {
    vi.useRealTimers();
  }
}

/** Takes from `bucket` and records `<name>@<time>` as each request passes. */
function passes(bucket: TokenBucket) {
  const passed: string[] = [];
  const take = (name: string, lane: "urgent" | "routine") =>
    bucket.take(lane).then(() => passed.push(`${name}@${Date.now()}`));
  return { passed, take, start: Date.now() };
}

describe("TokenBucket", () => {
  it("lets a burst through, then one token per 1/qps, queueing callers in order", () => {
    let now = 0;
    const bucket = new TokenBucket(10, 3, () => now);
    expect([bucket.reserve(), bucket.reserve(), bucket.reserve()]).toEqual([0, 0, 0]);
    // Empty: the next callers wait 100 ms, 200 ms, ... behind each other.
    expect(bucket.reserve()).toBe(100);
    expect(bucket.reserve()).toBe(200);
    expect(bucket.delayed).toBe(2);
    now += 200; // the two debts are paid off exactly
    expect(bucket.reserve()).toBe(100);
  });

  it("refills to the burst and no further", () => {
    let now = 0;
    const bucket = new TokenBucket(2, 2, () => now);
    bucket.reserve();
    bucket.reserve();
    now += 60_000;
    expect([bucket.reserve(), bucket.reserve(), bucket.reserve()]).toEqual([0, 0, 500]);
  });

  it("serves an urgent request issued behind a burst of routine ones first (real timers)", async () => {
    // 50 QPS, burst 1: the first routine request takes the token, the next ones queue 20 ms apart.
    const bucket = new TokenBucket(50, 1);
    const order: string[] = [];
    const take = (name: string, lane: "urgent" | "routine") => bucket.take(lane).then(() => order.push(name));
    const started = Date.now();
    const routine = Array.from({ length: 6 }, (_, i) => take(`routine-${i}`, "routine"));
    await Promise.resolve();
    expect(bucket.waiters()).toEqual({ urgent: 0, routine: 5 });
    const urgent = take("urgent", "urgent");
    expect(bucket.waiters()).toEqual({ urgent: 1, routine: 5 });
    await Promise.all([...routine, urgent]);
    expect(order).toEqual([
      "routine-0",
      "urgent",
      "routine-1",
      "routine-2",
      "routine-3",
      "routine-4",
      "routine-5",
    ]);
    // Still the bucket's rate: six waits of 20 ms for the seven requests.
    expect(Date.now() - started).toBeGreaterThanOrEqual(6 * 20 - 5);
  });

  it("lets a request through at once while tokens last, in either lane, and keeps the routine order", async () => {
    const bucket = new TokenBucket(100, 3);
    const order: string[] = [];
    await Promise.all([
      bucket.take().then(() => order.push("a")),
      bucket.take("urgent").then(() => order.push("b")),
      bucket.take().then(() => order.push("c")),
    ]);
    expect(bucket.delayed).toBe(0);
    await Promise.all(["d", "e", "f"].map((n) => bucket.take().then(() => order.push(n))));
    expect(order).toEqual(["a", "b", "c", "d", "e", "f"]);
    expect(bucket.delayed).toBe(3);
  });

  it("keeps the urgent reserve from routine requests, so urgent ones pass at once", async () => {
    await withFakeTimers(async () => {
      const { passed, take, start } = passes(new TokenBucket(10, 6, () => Date.now(), 3));
      const routine = ["r1", "r2", "r3", "r4"].map((n) => take(n, "routine"));
      await vi.advanceTimersByTimeAsync(0);
      // Three routine requests used what is above the reserve; the fourth waits for a refill.
      expect(passed).toEqual([`r1@${start}`, `r2@${start}`, `r3@${start}`]);
      const urgent = ["u1", "u2", "u3"].map((n) => take(n, "urgent"));
      await vi.advanceTimersByTimeAsync(0);
      expect(passed.slice(3)).toEqual([`u1@${start}`, `u2@${start}`, `u3@${start}`]);
      // The bucket is empty now: the routine request waits for four tokens (one plus the reserve).
      await vi.advanceTimersByTimeAsync(399);
      expect(passed).toHaveLength(6);
      await vi.advanceTimersByTimeAsync(1);
      expect(passed.at(-1)).toBe(`r4@${start + 400}`);
      await Promise.all([...routine, ...urgent]);
    });
  });

  it("wakes an urgent waiter at its own token, not at the later one a routine waiter needs", async () => {
    await withFakeTimers(async () => {
      const { passed, take, start } = passes(new TokenBucket(10, 4, () => Date.now(), 2));
      await Promise.all(["u1", "u2", "u3", "u4"].map((n) => take(n, "urgent")));
      // Empty bucket: the routine request needs three tokens (300 ms), the urgent one arriving
      // after it needs one (100 ms).
      const routine = take("r1", "routine");
      const urgent = take("u5", "urgent");
      await vi.advanceTimersByTimeAsync(100);
      expect(passed.slice(4)).toEqual([`u5@${start + 100}`]);
      await vi.advanceTimersByTimeAsync(300);
      expect(passed.slice(5)).toEqual([`r1@${start + 400}`]);
      await Promise.all([routine, urgent]);
    });
  });

  it("rejects nonsense", () => {
    expect(() => new TokenBucket(0, 1)).toThrow(/qps/);
    expect(() => new TokenBucket(1, 0)).toThrow(/burst/);
    expect(() => new TokenBucket(1, 3, Date.now, 3)).toThrow(/reserve/);
    expect(() => new TokenBucket(1, 3, Date.now, -1)).toThrow(/reserve/);
  });
});

describe("combined limiters", () => {
  it("MaxOf takes the longest delay and forgets in all", () => {
    const now = 0;
    const limiter = new MaxOfRateLimiter(
      new ExponentialBackoff(5, 1000),
      new BucketRateLimiter(new TokenBucket(1, 2, () => now)),
    );
    expect(limiter.when("a")).toBe(5);
    expect(limiter.when("b")).toBe(5);
    expect(limiter.when("a")).toBe(1000); // the bucket is empty: 1 s for the next token
    expect(limiter.retries("a")).toBe(2);
    limiter.forget("a");
    expect(limiter.retries("a")).toBe(0);
  });

  it("retryRateLimiter is plain backoff unless an overall qps is given", () => {
    const plain = retryRateLimiter({ baseMs: 10, maxMs: 1000 });
    expect(plain).toBeInstanceOf(ExponentialBackoff);
    expect(retryRateLimiter({ qps: 5 })).toBeInstanceOf(MaxOfRateLimiter);
  });
});
