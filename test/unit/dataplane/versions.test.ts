// Versions assigned by the head: a put or a delete is numbered (epoch, counter) without reading
// the key, a newer epoch's writes order after every write of an older one, compare-and-set keeps
// its semantics across heads, and servers still refuse the older epoch.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HeadHandle } from "../../../src/dataplane/head.ts";
import { partitionOfKey } from "../../../src/dataplane/placement.ts";
import { MAX_COUNTER, MAX_EPOCH, versionOf } from "../../../src/dataplane/record.ts";
import { ServerBatcher, ServerRpc } from "../../../src/dataplane/server-client.ts";
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

describe("versions assigned by the head (R=3, W=2)", () => {
  let slots: ServerSlot[];
  let servers: ServerHandle[];
  let oldHead: HeadHandle;
  let newHead: HeadHandle;
  /** Versions the old head's writes got, by key. */
  const byOldHead = new Map<string, number>();

  beforeAll(async () => {
    slots = await planServers(3);
    servers = await Promise.all(slots.map((s) => startInProcess(s, slots)));
    oldHead = await startHeadFor(slots, 3);
    await oldHead.ready;
  });
  afterAll(async () => {
    await oldHead.close();
    await newHead?.close();
    await Promise.all(servers.map((s) => s.close()));
    cleanup(slots);
  });

  /** Requests the servers answered on `route` so far, all three together. */
  async function served(route: string): Promise<number> {
    const counts = await Promise.all(servers.map((s) => servedRequests(s.url, route)));
    return counts.reduce((a, b) => a + b, 0);
  }

  it("numbers a put and a delete from its epoch and counter, reading nothing first", async () => {
    const [readsBefore, appliesBefore] = [await served("/v1/read"), await served("/v1/apply")];
    const put = await op(oldHead.url, { op: "put", key: "k", value: "a" });
    expect(put).toEqual({ status: 200, body: { key: "k", version: versionOf({ epoch: 3, n: 1 }) } });
    const del = await op(oldHead.url, { op: "delete", key: "never-written" });
    expect(del).toEqual({
      status: 200,
      body: { key: "never-written", version: versionOf({ epoch: 3, n: 2 }) },
    });
    const again = await op(oldHead.url, { op: "put", key: "k2", value: "b" });
    expect(again.body.version).toBe(versionOf({ epoch: 3, n: 3 }));
    expect(await served("/v1/read")).toBe(readsBefore);
    expect(await served("/v1/apply")).toBeGreaterThan(appliesBefore);
    byOldHead.set("k", put.body.version as number);
    byOldHead.set("k2", again.body.version as number);

    // A compare-and-set on a key this head has not seen does read: it needs the current version.
    const cas = await op(oldHead.url, { op: "cas", key: "cas-fresh", expectedVersion: 0, value: "c" });
    expect(cas.body.version).toBe(versionOf({ epoch: 3, n: 4 }));
    expect(await served("/v1/read")).toBeGreaterThan(readsBefore);
  });

  it("orders a newer epoch's writes after every write of the older one, whatever its counter reached", async () => {
    // A write of epoch 3 with the highest counter an epoch can hold, on one server only (unacknowledged).
    const batcher = new ServerBatcher(new ServerRpc(TOKEN, 5000, { role: "server" }), 3, oldHead.headId);
    const highest = { epoch: 3, n: MAX_COUNTER };
    const landed = await batcher.apply(slots[0]!.address, {
      key: "k",
      partition: partitionOfKey("k", 64),
      ...highest,
      version: versionOf(highest),
      value: "old epoch, last counter",
    });
    expect(landed.kind).toBe("ok");

    newHead = await startHeadFor(slots, 4);
    await newHead.ready;
    // Fencing holds: the old head can no longer get a write acknowledged.
    const late = await op(oldHead.url, { op: "put", key: "k", value: "late" });
    expect(late.status).toBe(409);
    expect(late.body).toMatchObject({ error: "head_fenced" });

    const put = await op(newHead.url, { op: "put", key: "k", value: "new epoch" });
    expect(put.body.version).toBe(versionOf({ epoch: 4, n: 1 }));
    expect(put.body.version).toBeGreaterThan(versionOf(highest));
    expect((await op(newHead.url, { op: "get", key: "k" })).body).toEqual({
      key: "k",
      found: true,
      value: "new epoch",
      version: put.body.version,
    });
    // Anti-entropy orders records the same way: every server ends with the epoch-4 record.
    for (const s of servers) await s.syncNow();
    for (const slot of slots) {
      expect(readRecordsOnDisk(slot.dataDir).get("k")).toMatchObject({
        epoch: 4,
        n: 1,
        version: put.body.version,
      });
    }
  });

  it("keeps compare-and-set: decided on the current version, whichever head wrote it", async () => {
    const current = (await op(newHead.url, { op: "get", key: "k" })).body.version as number;
    const stale = await op(newHead.url, {
      op: "cas",
      key: "k",
      expectedVersion: byOldHead.get("k"),
      value: "x",
    });
    expect(stale).toMatchObject({
      status: 412,
      body: { error: "version_mismatch", currentVersion: current },
    });
    const won = await op(newHead.url, { op: "cas", key: "k", expectedVersion: current, value: "y" });
    expect(won.status).toBe(200);
    expect(won.body.version).toBeGreaterThan(current);

    // A key only the old head wrote: the new head reads its version from a quorum.
    const k2 = await op(newHead.url, {
      op: "cas",
      key: "k2",
      expectedVersion: byOldHead.get("k2"),
      value: "z",
    });
    expect(k2.status).toBe(200);
    expect(k2.body.version).toBeGreaterThan(byOldHead.get("k2")!);

    // A tombstone's version is not the key's: the deleted key is at version 0, and 0 creates it.
    const del = await op(newHead.url, { op: "delete", key: "k2" });
    const onTombstone = await op(newHead.url, {
      op: "cas",
      key: "k2",
      expectedVersion: del.body.version,
      value: "w",
    });
    expect(onTombstone).toMatchObject({ status: 412, body: { currentVersion: 0 } });
    const created = await op(newHead.url, { op: "cas", key: "k2", expectedVersion: 0, value: "w" });
    expect(created.status).toBe(200);
    expect(created.body.version).toBeGreaterThan(del.body.version as number);
  });

  it("refuses to start with an epoch a version cannot hold", async () => {
    await expect(startHeadFor(slots, MAX_EPOCH + 1)).rejects.toThrow(/not an integer from 0 to 1048575/);
  });
});

describe("a superseded head that has not yet heard of its successor", () => {
  it("answers no compare-and-set from its cache: it is refused, not told a stale version", async () => {
    const slots = await planServers(3);
    const servers = await Promise.all(slots.map((s) => startInProcess(s, slots)));
    const heads: HeadHandle[] = [];
    try {
      const old = await startHeadFor(slots, 1);
      heads.push(old);
      await old.ready;
      expect((await op(old.url, { op: "put", key: "k", value: "a" })).status).toBe(200); // cached
      const successor = await startHeadFor(slots, 2);
      heads.push(successor);
      await successor.ready;
      const current = (await op(successor.url, { op: "put", key: "k", value: "b" })).body.version as number;
      const cas = await op(old.url, { op: "cas", key: "k", expectedVersion: current, value: "late" });
      expect(cas.status).toBe(409);
      expect(cas.body).not.toHaveProperty("currentVersion");
      expect((await op(successor.url, { op: "get", key: "k" })).body).toMatchObject({
        value: "b",
        version: current,
      });
    } finally {
      await Promise.all(heads.map((h) => h.close()));
      await Promise.all(servers.map((s) => s.close()));
      cleanup(slots);
    }
  });
});
