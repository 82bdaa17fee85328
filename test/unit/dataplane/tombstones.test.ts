// Tombstones are collected once every replica of their partition holds them (each peer says how
// far it has taken a server's change feed), and only once their epoch is over: a delete whose
// tombstone went can never be undone by an older write that a lagging replica still held.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { heldEverywhere } from "../../../src/dataplane/anti-entropy.ts";
import type { HeadHandle } from "../../../src/dataplane/head.ts";
import { readRecordsOnDisk, ServerStore } from "../../../src/dataplane/server-store.ts";
import type { ServerHandle } from "../../../src/dataplane/server.ts";
import { cleanup, op, planServers, startHeadFor, startInProcess, type ServerSlot } from "./harness.ts";

describe("which partitions' tombstones every replica holds", () => {
  it("takes, per partition, the least position its peers reported, and none while a peer said nothing", () => {
    const shares = [
      { peer: "b", partitions: [0, 1, 2] },
      { peer: "c", partitions: [1, 2, 3] },
    ];
    expect(
      heldEverywhere(
        shares,
        new Map([
          ["b", 40],
          ["c", 25],
        ]),
      ),
    ).toEqual(
      new Map([
        [0, 40],
        [1, 25],
        [2, 25],
        [3, 25],
      ]),
    );
    expect(heldEverywhere(shares, new Map([["b", 40]]))).toEqual(new Map([[0, 40]]));
    expect(heldEverywhere(shares, new Map())).toEqual(new Map());
  });
});

describe("tombstone collection on three servers (R=3, W=2)", () => {
  let slots: ServerSlot[];
  let servers: (ServerHandle | null)[];
  let heads: HeadHandle[] = [];

  beforeAll(async () => {
    slots = await planServers(3);
    // Anti-entropy only when the test asks (syncNow), so each round is seen.
    servers = await Promise.all(slots.map((s) => startInProcess(s, slots)));
    heads.push(await startHeadFor(slots, 1));
    await heads[0]!.ready;
  });
  afterAll(async () => {
    await Promise.all(heads.map((h) => h.close()));
    await Promise.all(servers.map((s) => s?.close()));
    cleanup(slots);
    heads = [];
  });

  const live = () => servers.filter((s): s is ServerHandle => s !== null);
  /** Two anti-entropy rounds on every live server: one to pull, one to hear that peers pulled. */
  async function rounds(): Promise<void> {
    for (let i = 0; i < 2; i++) for (const s of live()) await s.syncNow();
  }
  const onDisk = (i: number, key: string) => readRecordsOnDisk(slots[i]!.dataDir).get(key);

  it("keeps the tombstones of the current epoch, even once every replica holds them", async () => {
    const head = heads[0]!;
    expect((await op(head.url, { op: "put", key: "gone", value: "v" })).status).toBe(200);
    expect((await op(head.url, { op: "delete", key: "gone" })).status).toBe(200);
    // Written while every server was up; the third one's copy reaches it by anti-entropy.
    expect((await op(head.url, { op: "put", key: "resurrectable", value: "old" })).status).toBe(200);
    await rounds();
    for (const i of [0, 1, 2]) {
      expect(onDisk(i, "gone")).toMatchObject({ value: null });
      expect(onDisk(i, "resurrectable")).toMatchObject({ value: "old" });
    }
  });

  it("keeps a tombstone a replica has not taken, while that replica holds an older value", async () => {
    await servers[2]!.close();
    servers[2] = null;
    expect((await op(heads[0]!.url, { op: "delete", key: "resurrectable" })).status).toBe(200);
    heads.push(await startHeadFor(slots, 2));
    await heads[1]!.ready;
    await rounds();
    for (const i of [0, 1]) {
      expect(onDisk(i, "resurrectable")).toMatchObject({ value: null, epoch: 1 });
      expect(onDisk(i, "gone")).toMatchObject({ value: null, epoch: 1 });
    }
    expect(onDisk(2, "resurrectable")).toMatchObject({ value: "old" });
  });

  it("collects an older epoch's tombstones once every replica holds them, and the delete stays done", async () => {
    servers[2] = await startInProcess(slots[2]!, slots);
    await servers[2].ready;
    const head = heads[1]!;
    expect((await op(head.url, { op: "put", key: "current", value: "v" })).status).toBe(200);
    expect((await op(head.url, { op: "delete", key: "current" })).status).toBe(200);
    await rounds();
    for (const i of [0, 1, 2]) {
      expect(onDisk(i, "gone"), `server ${i}`).toBeUndefined();
      expect(onDisk(i, "resurrectable"), `server ${i}`).toBeUndefined();
      // This epoch's tombstone stays until a newer head takes over.
      expect(onDisk(i, "current"), `server ${i}`).toMatchObject({ value: null, epoch: 2 });
    }
    const metrics = await (await fetch(`${servers[0]!.url}/metrics`)).text();
    expect(metrics).toMatch(/^understudy_server_tombstones_collected_total 2$/m);

    // More rounds and reads bring nothing back.
    await rounds();
    for (const key of ["gone", "resurrectable"]) {
      expect((await op(head.url, { op: "get", key })).body).toMatchObject({ found: false, version: 0 });
      for (const i of [0, 1, 2]) expect(onDisk(i, key)).toBeUndefined();
    }
    const again = await op(head.url, { op: "cas", key: "resurrectable", expectedVersion: 0, value: "new" });
    expect(again.status).toBe(200);
    expect((await op(head.url, { op: "get", key: "resurrectable" })).body).toMatchObject({ value: "new" });
  });
});

describe("a server restarted after collecting its newest tombstones", () => {
  const record = (key: string, epoch: number, n: number, value: string | null) => ({
    key,
    partition: 0,
    epoch,
    n,
    version: epoch * 2 ** 33 + n,
    value,
  });

  it("hands out feed positions past every one it gave before, so a peer's cursor still sees new writes", () => {
    const dir = mkdtempSync(join(tmpdir(), "understudy-lsn-"));
    try {
      let store = new ServerStore(dir);
      store.commit([
        { kind: "apply", epoch: 1, head: "h1", records: [record("a", 1, 1, "x"), record("k", 1, 2, "v")] },
      ]);
      store.commit([{ kind: "apply", epoch: 1, head: "h1", records: [record("k", 1, 3, null)] }]);
      const peerCursor = store.changesSince(0, [0], 100, 1e9).next; // a peer took the whole feed
      store.commit([{ kind: "fence", epoch: 2, head: "h2" }]);
      const [collected] = store.commit([{ kind: "collect", heldEverywhere: new Map([[0, peerCursor]]) }]);
      expect(collected).toMatchObject({ kind: "ok", collected: 1 }); // the newest row, k's tombstone
      store.close();
      store = new ServerStore(dir); // the same volume: the same feed, the peer keeps its cursor
      store.commit([{ kind: "apply", epoch: 2, head: "h2", records: [record("new", 2, 1, "w")] }]);
      expect(store.changesSince(peerCursor, [0], 100, 1e9).records.map((r) => r.key)).toEqual(["new"]);
      store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
