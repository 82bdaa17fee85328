import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HeadHandle } from "../../../src/dataplane/head.ts";
import { partitionOfKey } from "../../../src/dataplane/placement.ts";
import { ServerBatcher, ServerRpc } from "../../../src/dataplane/server-client.ts";
import { versionOf } from "../../../src/dataplane/record.ts";
import { readRecordsOnDisk } from "../../../src/dataplane/server-store.ts";
import type { ServerHandle } from "../../../src/dataplane/server.ts";
import {
  cleanup,
  op,
  planServers,
  servedRequests,
  startHeadFor,
  startInProcess,
  TOKEN,
  type ServerSlot,
} from "./harness.ts";

describe("writes through the head with three servers in three zones (R=3, W=2)", () => {
  let slots: ServerSlot[];
  let servers: (ServerHandle | null)[];
  let head: HeadHandle;

  beforeAll(async () => {
    slots = await planServers(3);
    servers = await Promise.all(slots.map((s) => startInProcess(s, slots)));
    head = await startHeadFor(slots, 1);
    await head.ready;
  });
  afterAll(async () => {
    await head.close();
    await Promise.all(servers.map((s) => s?.close()));
    cleanup(slots);
  });

  const onDisk = (i: number, key: string) => readRecordsOnDisk(slots[i]!.dataDir).get(key);
  /** The version the cas below wrote, which later tests find on the servers. */
  let v2 = 0;

  it("acknowledges a write only once a write quorum holds it on disk", async () => {
    const r = await op(head.url, { op: "put", key: "all-up", value: "v1" });
    // The head's first write of epoch 1, numbered without reading the key.
    expect(r).toEqual({ status: 200, body: { key: "all-up", version: versionOf({ epoch: 1, n: 1 }) } });
    const holders = [0, 1, 2].filter((i) => onDisk(i, "all-up")?.value === "v1");
    expect(holders.length).toBeGreaterThanOrEqual(2);
    const record = onDisk(holders[0]!, "all-up")!;
    expect(record).toMatchObject({ epoch: 1, n: 1, version: r.body.version });
  });

  it("coalesces the writes and reads it has for one server into one request", async () => {
    const requests = (route: string) => servedRequests(servers[0]!.url, route);
    const batcher = new ServerBatcher(
      new ServerRpc(TOKEN, 2000, { role: "server" }),
      head.epoch,
      head.headId,
    );
    const address = slots[0]!.address;
    const [appliesBefore, readsBefore] = [await requests("/v1/apply"), await requests("/v1/read")];
    const records = Array.from({ length: 50 }, (_, i) => {
      const key = `burst-${i}`;
      return {
        key,
        partition: partitionOfKey(key, 64),
        epoch: head.epoch,
        n: 1_000_000 + i,
        version: 1,
        value: `b${i}`,
      };
    });
    const written = await Promise.all(records.map((r) => batcher.apply(address, r)));
    expect(written.every((w) => w.kind === "ok")).toBe(true);
    const read = await Promise.all(records.map((r) => batcher.read(address, r.key)));
    expect(read.map((r) => (r.kind === "ok" ? r.body?.value : r.kind))).toEqual(records.map((r) => r.value));
    expect((await requests("/v1/apply")) - appliesBefore).toBe(1);
    expect((await requests("/v1/read")) - readsBefore).toBe(1);
  });

  it("keeps acknowledging writes with one server stopped, and both live servers hold them", async () => {
    await servers[2]!.close();
    servers[2] = null;
    const r = await op(head.url, { op: "put", key: "one-down", value: "v1" });
    expect(r.status).toBe(200);
    const v1 = r.body.version as number;
    expect(onDisk(0, "one-down")).toMatchObject({ value: "v1", version: v1, epoch: 1 });
    expect(onDisk(1, "one-down")).toMatchObject({ value: "v1", version: v1, epoch: 1 });
    expect(onDisk(2, "one-down")).toBeUndefined();
    const cas = await op(head.url, { op: "cas", key: "one-down", expectedVersion: v1, value: "v2" });
    expect(cas.status).toBe(200);
    v2 = cas.body.version as number;
    expect(v2).toBeGreaterThan(v1);
    expect((await op(head.url, { op: "get", key: "one-down" })).body).toMatchObject({
      found: true,
      value: "v2",
      version: v2,
    });
  });

  it("refuses to acknowledge writes with two servers stopped, saying whether they may have landed", async () => {
    await servers[1]!.close();
    servers[1] = null;
    // A cas on a key the head has not seen: its version cannot be read from a quorum, so nothing is written.
    const fresh = await op(head.url, { op: "cas", key: "two-down", expectedVersion: 0, value: "v1" });
    expect(fresh.status).toBe(503);
    expect(fresh.body).toMatchObject({ error: "quorum_unavailable", outcome: "not_applied" });
    expect(String(fresh.body.message)).toMatch(/of the 2 replies it needs/);
    expect(onDisk(0, "two-down")).toBeUndefined();
    // A put needs no read: the one live server takes it, but that is no quorum.
    const put = await op(head.url, { op: "put", key: "one-down", value: "v3" });
    expect(put.status).toBe(503);
    expect(put.body).toMatchObject({ error: "quorum_unavailable", outcome: "unknown" });
    expect(String(put.body.message)).toMatch(/reached 1 of the 2 replicas/);
    expect(onDisk(0, "one-down")).toMatchObject({ value: "v3" });
    const read = await op(head.url, { op: "get", key: "one-down" });
    expect(read.status).toBe(503);
    expect(read.body.error).toBe("quorum_unavailable");
  });

  it("serves again once a server is back, and a read repairs the replica it finds behind", async () => {
    // Restarted without a server list: no anti-entropy, so only the head's read can repair it.
    servers[1] = await startInProcess(slots[1]!, slots, { servers: [] });
    await servers[1].ready;
    expect(onDisk(1, "one-down")).toMatchObject({ value: "v2", version: v2 });
    // The unacknowledged v3 reached server 0 only; the read finds it, writes it back, and returns it.
    const v3 = onDisk(0, "one-down")!.version;
    expect(v3).toBeGreaterThan(v2);
    const read = await op(head.url, { op: "get", key: "one-down" });
    expect(read.body).toMatchObject({ found: true, value: "v3", version: v3 });
    expect(onDisk(1, "one-down")).toMatchObject({ value: "v3", version: v3 });
  });
});
