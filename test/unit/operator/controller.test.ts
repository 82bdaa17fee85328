import { describe, expect, it, vi } from "vitest";
import { Controller, type Reconciler } from "../../../src/operator/controller.ts";
import { createLogger } from "../../../src/operator/logger.ts";

const log = createLogger({ level: "silent" });

/** A promise and the function that resolves it. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

const controller = (reconcile: Reconciler, concurrency = 1) =>
  new Controller({ name: "test", reconcile, concurrency, log });

describe("Controller", () => {
  it("runs different keys in parallel up to its concurrency", async () => {
    const g = gate();
    const running = new Set<string>();
    const c = controller(async (key) => {
      running.add(key);
      await g.opened;
    }, 3);
    c.start();
    ["a", "b", "c", "d"].forEach((k) => c.enqueue(k));
    await vi.waitFor(() => expect(running.size).toBe(3));
    expect(c.queueDepth()).toBe(1);
    g.open();
    await vi.waitFor(() => expect(running.has("d")).toBe(true));
    await c.stop();
  });

  it("reconciles a key changed during its reconcile once more afterwards, never concurrently", async () => {
    const first = gate();
    const runs: string[] = [];
    let active = 0;
    let maxActive = 0;
    const c = controller(async (key) => {
      maxActive = Math.max(maxActive, ++active);
      runs.push(key);
      if (runs.length === 1) await first.opened;
      active--;
    }, 4);
    c.start();
    c.enqueue("k");
    await vi.waitFor(() => expect(runs).toHaveLength(1));
    c.enqueue("k");
    c.enqueue("k");
    first.open();
    await vi.waitFor(() => expect(runs).toHaveLength(2));
    expect(maxActive).toBe(1);
    await c.stop();
    expect(runs).toEqual(["k", "k"]);
  });

  it("reconciles again after requeueAfterMs without any event", async () => {
    let runs = 0;
    const c = controller(async () => (++runs === 1 ? { requeueAfterMs: 20 } : undefined));
    c.start();
    c.enqueue("k");
    await vi.waitFor(() => expect(runs).toBe(2));
    await c.stop();
  });

  it("stops taking work and waits for reconciles in flight", async () => {
    const g = gate();
    const started: string[] = [];
    const c = controller(async (key) => {
      started.push(key);
      await g.opened;
    });
    c.start();
    c.enqueue("a");
    c.enqueue("b");
    await vi.waitFor(() => expect(started).toEqual(["a"]));
    let stopped: boolean | undefined;
    const stopping = c.stop(10_000).then((r) => (stopped = r));
    await new Promise((r) => setTimeout(r, 20));
    expect(stopped).toBeUndefined(); // "a" is still running
    c.enqueue("c");
    g.open();
    await stopping;
    expect(stopped).toBe(true);
    expect(started).toEqual(["a"]); // "b" was dropped, "c" refused
  });

  it("gives up waiting after the timeout and says so", async () => {
    const c = controller(() => new Promise(() => {}));
    c.start();
    c.enqueue("stuck");
    await vi.waitFor(() => expect(c.queueDepth()).toBe(0));
    expect(await c.stop(50)).toBe(false);
  });

  it("refuses a concurrency below one and a second start", () => {
    expect(() => controller(async () => {}, 0)).toThrow(/concurrency/);
    const c = controller(async () => {});
    c.start();
    expect(() => c.start()).toThrow(/already started/);
    void c.stop();
  });
});
