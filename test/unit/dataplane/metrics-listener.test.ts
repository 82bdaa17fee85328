// /metrics on a port of its own: the head's and the server's registries, nothing else.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HeadHandle } from "../../../src/dataplane/head.ts";
import type { ServerHandle } from "../../../src/dataplane/server.ts";
import { cleanup, freePorts, planServers, startHeadFor, startInProcess, type ServerSlot } from "./harness.ts";

describe("the metrics listener", () => {
  let slots: ServerSlot[];
  let servers: ServerHandle[];
  let head: HeadHandle;
  let headMetrics: string;
  let serverMetrics: string;

  beforeAll(async () => {
    const [a, b] = await freePorts(2);
    headMetrics = `127.0.0.1:${a}`;
    serverMetrics = `127.0.0.1:${b}`;
    slots = await planServers(3);
    servers = await Promise.all(
      slots.map((s, i) => startInProcess(s, slots, i === 0 ? { metricsListen: serverMetrics } : {})),
    );
    head = await startHeadFor(slots, 1, { metricsListen: headMetrics });
    await head.ready;
  });
  afterAll(async () => {
    await head.close();
    await Promise.all(servers.map((s) => s.close()));
    cleanup(slots);
  });

  it("serves the head's and a server's metrics on their own ports", async () => {
    const h = await fetch(`http://${headMetrics}/metrics`);
    expect(h.status).toBe(200);
    expect(await h.text()).toMatch(/understudy_head_epoch 1/);
    const s = await fetch(`http://${serverMetrics}/metrics`);
    expect(s.status).toBe(200);
    expect(await s.text()).toMatch(/understudy_server_epoch 1/);
  });

  it("serves nothing else there: no operations, no probes", async () => {
    const op = await fetch(`http://${headMetrics}/v1/op`, { method: "POST", body: '{"op":"get","key":"k"}' });
    expect(op.status).toBe(404);
    expect((await fetch(`http://${headMetrics}/healthz`)).status).toBe(404);
    expect((await fetch(`http://${serverMetrics}/v1/read`, { method: "POST", body: "{}" })).status).toBe(404);
  });

  it("stops with the head", async () => {
    const [port] = await freePorts(1);
    const other = await startHeadFor(slots, 2, { metricsListen: `127.0.0.1:${port}` });
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(200);
    await other.close();
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });
});
