import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  backoffMs,
  createClient,
  DataplaneError,
  decide,
  OutcomeUnknown,
  type Attempt,
} from "../../../src/dataplane/client.ts";
import type { HeadHandle } from "../../../src/dataplane/head.ts";
import type { ServerHandle } from "../../../src/dataplane/server.ts";
import { cleanup, freePorts, planServers, startHeadFor, startInProcess, type ServerSlot } from "./harness.ts";

const response = (status: number, body: Record<string, unknown> = {}): Attempt => ({
  kind: "response",
  status,
  body,
});

describe("client retry policy", () => {
  it.each([
    ["get", { kind: "not_sent", message: "" } as Attempt, "retry"],
    ["put", { kind: "not_sent", message: "" } as Attempt, "retry"],
    ["get", { kind: "lost", message: "" } as Attempt, "retry"],
    ["put", { kind: "lost", message: "" } as Attempt, "unknown"],
    ["cas", { kind: "lost", message: "" } as Attempt, "unknown"],
    ["delete", { kind: "lost", message: "" } as Attempt, "unknown"],
    ["put", response(200), "done"],
    ["cas", response(412, { outcome: "not_applied" }), "done"],
    ["put", response(503, { error: "not_ready", outcome: "not_applied" }), "retry"],
    ["put", response(409, { error: "head_fenced", outcome: "not_applied" }), "retry"],
    ["put", response(409, { error: "head_fenced", outcome: "unknown" }), "unknown"],
    ["put", response(503, { error: "quorum_unavailable", outcome: "unknown" }), "unknown"],
    ["get", response(503, { error: "quorum_unavailable", outcome: "unknown" }), "retry"],
    ["put", response(500, { error: "internal" }), "unknown"],
    ["get", response(500, { error: "internal" }), "retry"],
    ["put", response(400, { error: "invalid_request" }), "fail"],
    ["put", response(413, { error: "value_too_large" }), "fail"],
  ] as const)("%s after %j -> %s", (op, attempt, expected) => {
    expect(decide(op, attempt)).toBe(expected);
  });

  it("backs off exponentially with jitter, capped", () => {
    expect(backoffMs(0, 20, 1000, () => 0)).toBe(10);
    expect(backoffMs(0, 20, 1000, () => 1)).toBe(20);
    expect(backoffMs(3, 20, 1000, () => 1)).toBe(160);
    expect(backoffMs(20, 20, 1000, () => 1)).toBe(1000);
  });
});

describe("client against real and broken heads", () => {
  let slots: ServerSlot[];
  let servers: ServerHandle[];
  let head: HeadHandle;
  let broken: Server;
  let brokenUrl: string;
  let brokenHits = 0;
  let closedUrl: string;
  /** The version of c1's write, which a later test reads back. */
  let c1Version = 0;

  beforeAll(async () => {
    slots = await planServers(3);
    servers = await Promise.all(slots.map((s) => startInProcess(s, slots)));
    head = await startHeadFor(slots, 1);
    await head.ready;
    // A "head" that reads the request and then drops the connection without answering.
    broken = createServer((req) => {
      brokenHits++;
      req.resume();
      req.on("end", () => req.socket.destroy());
    });
    await new Promise<void>((ok) => broken.listen(0, "127.0.0.1", ok));
    brokenUrl = `http://127.0.0.1:${(broken.address() as AddressInfo).port}`;
    closedUrl = `http://127.0.0.1:${(await freePorts(1))[0]}`;
  });
  afterAll(async () => {
    broken.closeAllConnections();
    await new Promise((ok) => broken.close(ok));
    await head.close();
    await Promise.all(servers.map((s) => s.close()));
    cleanup(slots);
  });

  it("retries a write refused at connect time on the head the resolver names next", async () => {
    const heads = [closedUrl, closedUrl, head.url];
    let resolved = 0;
    const client = createClient({
      resolveHead: async () => heads[Math.min(resolved++, 2)]!,
      initialBackoffMs: 1,
    });
    c1Version = (await client.put("c1", "v")).version;
    expect(c1Version).toBeGreaterThan(0);
    expect(resolved).toBe(3);
  });

  it("throws OutcomeUnknown for a write whose connection broke after sending, without retrying", async () => {
    brokenHits = 0;
    const client = createClient({ resolveHead: async () => brokenUrl, initialBackoffMs: 1 });
    const err = await client.put("c2", "v").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutcomeUnknown);
    expect((err as OutcomeUnknown).key).toBe("c2");
    expect(brokenHits).toBe(1);
    const cas = await client.cas("c2", 0, "v").catch((e: unknown) => e);
    expect(cas).toBeInstanceOf(OutcomeUnknown);
  });

  it("retries reads across a broken connection", async () => {
    const heads = [brokenUrl, head.url];
    let resolved = 0;
    const client = createClient({
      resolveHead: async () => heads[Math.min(resolved++, 1)]!,
      initialBackoffMs: 1,
    });
    expect(await client.get("c1")).toEqual({ found: true, value: "v", version: c1Version });
  });

  it("does not retry a request the head rejected as invalid", async () => {
    const client = createClient({ resolveHead: async () => head.url });
    const err = await client.put("k".repeat(2000), "v").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataplaneError);
    expect(err).toMatchObject({ status: 400, code: "key_too_long" });
  });

  it("gives up after bounded attempts with a not-applied error when no head is reachable", async () => {
    let resolved = 0;
    const client = createClient({
      resolveHead: async () => (resolved++, closedUrl),
      maxAttempts: 3,
      initialBackoffMs: 1,
    });
    const err = await client.put("c3", "v").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataplaneError);
    expect(err).toMatchObject({ code: "unavailable" });
    expect(resolved).toBe(3);
  });

  it("reports compare-and-set conflicts as a result, not an error", async () => {
    const client = createClient({ resolveHead: async () => head.url });
    const created = await client.cas("c4", 0, "a");
    if (!created.ok) throw new Error(`creating c4 lost: ${JSON.stringify(created)}`);
    expect(await client.cas("c4", 0, "b")).toEqual({ ok: false, currentVersion: created.version });
    const deleted = await client.delete("c4");
    expect(deleted.version).toBeGreaterThan(created.version);
    expect(await client.get("c4")).toEqual({ found: false, value: null, version: 0 });
    // The tombstone's version is not the key's: a cas naming it finds the key absent (version 0).
    expect(await client.cas("c4", deleted.version, "c")).toEqual({ ok: false, currentVersion: 0 });
    const recreated = await client.cas("c4", 0, "c");
    expect(recreated).toEqual({ ok: true, version: expect.any(Number) as number });
    expect((recreated as { version: number }).version).toBeGreaterThan(deleted.version);
  });
});
