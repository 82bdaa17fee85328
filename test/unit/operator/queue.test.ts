import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { WorkQueue } from "../../../src/operator/queue.ts";
import { ExponentialBackoff } from "../../../src/operator/rate-limiter.ts";

/** Whether a promise has settled, without waiting for it. */
async function settled<T>(p: Promise<T>): Promise<{ done: boolean; value?: T }> {
  const marker = Symbol();
  const value = await Promise.race([p, Promise.resolve(marker)]);
  return value === marker ? { done: false } : { done: true, value: value as T };
}

describe("WorkQueue de-duplication", () => {
  it("hands out a key added twice only once", async () => {
    const q = new WorkQueue();
    q.add("ns/a");
    q.add("ns/a");
    q.add("ns/b");
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe("ns/a");
    expect(await q.get()).toBe("ns/b");
    expect(q.len()).toBe(0);
    expect((await settled(q.get())).done).toBe(false);
  });

  it("does not hand out a key being processed; re-added, it comes back once after done()", async () => {
    const q = new WorkQueue();
    q.add("k");
    expect(await q.get()).toBe("k");
    q.add("k");
    q.add("k");
    expect(q.len()).toBe(0);
    const next = q.get();
    expect((await settled(next)).done).toBe(false);
    q.done("k");
    expect(await next).toBe("k");
    q.done("k");
    expect(q.len()).toBe(0);
    expect(q.inFlight()).toBe(0);
  });

  it("a key done without having been re-added is not processed again", async () => {
    const q = new WorkQueue();
    q.add("k");
    await q.get();
    q.done("k");
    expect(q.len()).toBe(0);
  });

  it("wakes a waiting worker when a key arrives", async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.add("k");
    expect(await waiting).toBe("k");
    expect(q.inFlight()).toBe(1);
  });

  it("never hands a key to two workers at once, and loses no add (model check)", () => {
    type Op = { op: "add"; key: string } | { op: "get" } | { op: "done"; pick: number };
    const key = fc.constantFrom("a", "b", "c");
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constant("add" as const), key }),
      fc.record({ op: fc.constant("get" as const) }),
      fc.record({ op: fc.constant("done" as const), pick: fc.nat() }),
    );
    return fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
        const q = new WorkQueue();
        const held = new Set<string>();
        // A key added after it was last handed out must be handed out again.
        const owed = new Set<string>();
        const take = async () => {
          const r = await settled(q.get());
          if (!r.done) return false;
          const k = r.value!;
          expect(held.has(k)).toBe(false);
          held.add(k);
          owed.delete(k);
          return true;
        };
        for (const o of ops) {
          if (o.op === "add") {
            q.add(o.key);
            owed.add(o.key);
          } else if (o.op === "get") {
            if (q.len() > 0) await take();
          } else if (held.size > 0) {
            const k = [...held][o.pick % held.size]!;
            held.delete(k);
            q.done(k);
          }
        }
        // Finish: complete whatever is held, then drain everything still owed.
        while (held.size > 0 || q.len() > 0) {
          for (const k of [...held]) {
            held.delete(k);
            q.done(k);
          }
          while (q.len() > 0) await take();
        }
        expect([...owed]).toEqual([]);
      }),
    );
  });
});

describe("WorkQueue urgent lane", () => {
  it("hands out urgent keys before routine keys added earlier, each lane in order", async () => {
    const urgent = new Set(["ns/failing", "ns/also-failing"]);
    const q = new WorkQueue({ urgent: (key) => urgent.has(key) });
    for (const key of ["ns/a", "ns/b", "ns/failing", "ns/c", "ns/also-failing"]) q.add(key);
    expect(q.len()).toBe(5);
    const order = [];
    for (let i = 0; i < 5; i++) order.push(await q.get());
    expect(order).toEqual(["ns/failing", "ns/also-failing", "ns/a", "ns/b", "ns/c"]);
  });

  it("moves a waiting key to the urgent lane when it is added again once urgent", async () => {
    const urgent = new Set<string>();
    const q = new WorkQueue({ urgent: (key) => urgent.has(key) });
    q.add("ns/a");
    q.add("ns/b");
    urgent.add("ns/b");
    q.add("ns/b");
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe("ns/b");
    expect(await q.get()).toBe("ns/a");
  });

  it("puts a key re-added while in flight in the lane it belongs to when it is done", async () => {
    const urgent = new Set<string>();
    const q = new WorkQueue({ urgent: (key) => urgent.has(key) });
    q.add("ns/a");
    expect(await q.get()).toBe("ns/a");
    q.add("ns/b");
    q.add("ns/a");
    urgent.add("ns/a");
    q.done("ns/a");
    expect(await q.get()).toBe("ns/a");
    expect(await q.get()).toBe("ns/b");
  });
});

describe("WorkQueue wait observation", () => {
  afterEach(() => vi.useRealTimers());

  it("reports how long each key waited ready, in the lane it was handed out from", async () => {
    vi.useFakeTimers({ toFake: ["performance"] });
    const waits: [string, number][] = [];
    const urgent = new Set<string>();
    const q = new WorkQueue({
      urgent: (key) => urgent.has(key),
      observeWait: (lane, s) => waits.push([lane, s]),
    });
    q.add("ns/a");
    vi.advanceTimersByTime(200);
    q.add("ns/b");
    urgent.add("ns/b");
    q.add("ns/b"); // moved to the urgent lane: its wait still counts from its first add
    vi.advanceTimersByTime(300);
    expect(await q.get()).toBe("ns/b");
    expect(await q.get()).toBe("ns/a");
    expect(waits).toEqual([
      ["urgent", 0.3],
      ["routine", 0.5],
    ]);
  });

  it("reports no wait for a key a worker was already waiting for", async () => {
    const waits: [string, number][] = [];
    const q = new WorkQueue({ observeWait: (lane, s) => waits.push([lane, s]) });
    const got = q.get();
    q.add("ns/a");
    expect(await got).toBe("ns/a");
    expect(waits).toEqual([["routine", 0]]);
  });
});

describe("WorkQueue delays", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("addAfter makes the key ready only after the delay", async () => {
    const q = new WorkQueue();
    q.addAfter("k", 1_000);
    expect(q.len()).toBe(0);
    expect(q.delayed()).toBe(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(q.len()).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(q.len()).toBe(1);
    expect(q.delayed()).toBe(0);
  });

  it("a key waiting keeps the earlier of two ready times", async () => {
    const q = new WorkQueue();
    q.addAfter("k", 1_000);
    q.addAfter("k", 5_000); // later: ignored
    await vi.advanceTimersByTimeAsync(1_000);
    expect(q.len()).toBe(1);
    expect(await q.get()).toBe("k");
    q.done("k");
    await vi.advanceTimersByTimeAsync(10_000);
    expect(q.len()).toBe(0);

    q.addAfter("j", 5_000);
    q.addAfter("j", 100); // earlier: replaces
    await vi.advanceTimersByTimeAsync(100);
    expect(q.len()).toBe(1);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(q.len()).toBe(1);
  });

  it("addAfter with no delay adds at once", () => {
    const q = new WorkQueue();
    q.addAfter("k", 0);
    expect(q.len()).toBe(1);
  });

  it("addRateLimited backs off exponentially per key, and forget() resets it", async () => {
    const q = new WorkQueue({ rateLimiter: new ExponentialBackoff(100, 1_000) });
    const readyAfter = async (key: string) => {
      q.addRateLimited(key);
      let waited = 0;
      while (q.len() === 0) {
        await vi.advanceTimersByTimeAsync(10);
        waited += 10;
      }
      expect(await q.get()).toBe(key);
      q.done(key);
      return waited;
    };
    expect(await readyAfter("k")).toBe(100);
    expect(await readyAfter("k")).toBe(200);
    expect(await readyAfter("k")).toBe(400);
    expect(await readyAfter("k")).toBe(800);
    expect(await readyAfter("k")).toBe(1_000); // capped
    expect(q.numRequeues("k")).toBe(5);
    // Another key has its own history.
    expect(await readyAfter("other")).toBe(100);
    q.forget("k");
    expect(q.numRequeues("k")).toBe(0);
    expect(await readyAfter("k")).toBe(100);
  });
});

describe("WorkQueue shutdown", () => {
  it("stops accepting keys, drops the queued ones, and waits for keys in flight", async () => {
    const q = new WorkQueue();
    q.add("a");
    q.add("b");
    expect(await q.get()).toBe("a");
    q.addAfter("later", 60_000);
    const stopped = q.shutdown();
    expect((await settled(stopped)).done).toBe(false); // "a" is in flight
    q.add("c");
    expect(q.len()).toBe(0);
    expect(q.delayed()).toBe(0);
    expect(await q.get()).toBeUndefined();
    q.done("a");
    await stopped;
  });

  it("releases workers blocked in get()", async () => {
    const q = new WorkQueue();
    const blocked = q.get();
    await q.shutdown();
    expect(await blocked).toBeUndefined();
  });

  it("with drain, hands out the keys already queued, including one re-added while in flight", async () => {
    const q = new WorkQueue();
    q.add("a");
    q.add("b");
    expect(await q.get()).toBe("a");
    q.add("a"); // re-added while in flight
    const stopped = q.shutdown({ drain: true });
    expect(await q.get()).toBe("b");
    q.done("b");
    const again = q.get(); // "a" must come back once more
    expect((await settled(again)).done).toBe(false);
    q.done("a");
    expect(await again).toBe("a");
    expect((await settled(stopped)).done).toBe(false);
    q.done("a");
    await stopped;
    expect(await q.get()).toBeUndefined();
  });
});
