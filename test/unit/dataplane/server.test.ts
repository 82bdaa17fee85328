// One server in-process: fencing by epoch, the highest-sequence rule, group commit, anti-entropy.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GroupCommitter } from "../../../src/dataplane/group-commit.ts";
import { partitionOfKey } from "../../../src/dataplane/placement.ts";
import type { KvRecord } from "../../../src/dataplane/record.ts";
import { readRecordsOnDisk } from "../../../src/dataplane/server-store.ts";
import type { ServerHandle } from "../../../src/dataplane/server.ts";
import { cleanup, planServers, post, startInProcess, TOKEN, type ServerSlot } from "./harness.ts";

const auth = { authorization: `Bearer ${TOKEN}` };
const rec = (key: string, epoch: number, n: number, version: number, value: string | null): KvRecord => ({
  key,
  partition: partitionOfKey(key, 64),
  epoch,
  n,
  version,
  value,
});

describe("group commit", () => {
  it("commits ops submitted together in one batch and answers each only after it", async () => {
    const batches: number[][] = [];
    let committed = 0;
    const committer = new GroupCommitter<number, string>({
      commit: (ops) => {
        batches.push([...ops]);
        committed += ops.length;
        return ops.map((o) => `done-${o}`);
      },
      windowMs: 0,
      maxBatch: 100,
    });
    const answers = [1, 2, 3, 4, 5].map((i) =>
      committer.submit(i).then((r) => {
        expect(committed).toBeGreaterThanOrEqual(i);
        return r;
      }),
    );
    expect(committed).toBe(0);
    expect(await Promise.all(answers)).toEqual(["done-1", "done-2", "done-3", "done-4", "done-5"]);
    expect(batches).toEqual([[1, 2, 3, 4, 5]]);
  });

  it("fails every op of a batch whose transaction fails", async () => {
    const committer = new GroupCommitter<number, number>({
      commit: () => {
        throw new Error("disk full");
      },
      windowMs: 0,
      maxBatch: 100,
    });
    const results = await Promise.allSettled([committer.submit(1), committer.submit(2)]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
  });

  it("splits a long queue into batches of at most maxBatch", async () => {
    const sizes: number[] = [];
    const committer = new GroupCommitter<number, number>({
      commit: (ops) => (sizes.push(ops.length), [...ops]),
      windowMs: 0,
      maxBatch: 4,
    });
    await Promise.all(Array.from({ length: 10 }, (_, i) => committer.submit(i)));
    expect(sizes).toEqual([4, 4, 2]);
  });
});

describe("a server", () => {
  let slots: ServerSlot[];
  let server: ServerHandle;
  let url: string;

  beforeAll(async () => {
    slots = await planServers(1);
    // A 5 ms group-commit window, so writes sent together share transactions even in one process.
    server = await startInProcess(slots[0]!, slots, { servers: [], groupCommitWindowMs: 5 });
    url = server.url;
  });
  afterAll(async () => {
    await server.close();
    cleanup(slots);
  });

  const apply = (epoch: number, head: string, records: KvRecord[]) =>
    post(`${url}/v1/apply`, { epoch, head, records }, auth);
  const read = async (epoch: number, head: string, key: string) => {
    const r = await post(`${url}/v1/read`, { epoch, head, keys: [key] }, auth);
    return { ...r, body: { ...r.body, record: (r.body.records as unknown[] | undefined)?.[0] } };
  };

  it("takes a head's epoch, then refuses older epochs and other heads of the same epoch with 409", async () => {
    expect((await post(`${url}/v1/fence`, { epoch: 5, head: "h5" }, auth)).body).toEqual({
      epoch: 5,
      holder: "h5",
    });
    expect((await apply(5, "h5", [rec("a", 5, 1, 1, "x")])).status).toBe(200);

    const older = await apply(4, "h4", [rec("a", 4, 9, 9, "old")]);
    expect(older.status).toBe(409);
    expect(older.body).toMatchObject({ error: "stale_epoch", epoch: 5, holder: "h5" });
    expect(String(older.body.message)).toMatch(/epoch 4 is older than this server's epoch 5/);
    expect((await read(4, "h4", "a")).status).toBe(409);
    const impostor = await apply(5, "other", [rec("a", 5, 2, 2, "imp")]);
    expect(impostor.status).toBe(409);
    expect(String(impostor.body.message)).toMatch(/already belongs to another head/);
    expect(readRecordsOnDisk(slots[0]!.dataDir).get("a")).toMatchObject({ value: "x", epoch: 5, n: 1 });
  });

  it("keeps the epoch across a restart", async () => {
    await server.close();
    server = await startInProcess(slots[0]!, slots, { servers: [], groupCommitWindowMs: 5 });
    url = server.url;
    expect((await apply(4, "h4", [rec("a", 4, 9, 9, "old")])).status).toBe(409);
    expect((await read(5, "h5", "a")).body).toMatchObject({ record: { value: "x" } });
  });

  it("raises its epoch durably when a newer head reads or writes", async () => {
    expect((await read(6, "h6", "a")).status).toBe(200);
    expect((await apply(5, "h5", [rec("b", 5, 3, 1, "late")])).status).toBe(409);
  });

  it("keeps per key the record with the highest sequence, tombstones included", async () => {
    const first = await apply(6, "h6", [rec("k", 6, 10, 3, "newer")]);
    expect(first.body.applied).toEqual([true]);
    // An older sequence (a lagging repair, a replayed write) changes nothing.
    expect(
      (await apply(6, "h6", [rec("k", 6, 9, 2, "older"), rec("k", 5, 99, 9, "old epoch")])).body.applied,
    ).toEqual([false, false]);
    expect((await read(6, "h6", "k")).body.record).toMatchObject({ value: "newer", n: 10 });
    expect((await apply(6, "h6", [rec("k", 6, 11, 4, null)])).body.applied).toEqual([true]);
    expect((await read(6, "h6", "k")).body.record).toMatchObject({ value: null, version: 4 });
    expect((await apply(6, "h6", [rec("k", 6, 10, 3, "newer")])).body.applied).toEqual([false]);
  });

  it("commits concurrent writes in shared transactions", async () => {
    const before = await metric("understudy_server_commit_batch_size_count");
    const writes = await Promise.all(
      Array.from({ length: 200 }, (_, i) => apply(6, "h6", [rec(`gc-${i}`, 6, 100 + i, 1, `v${i}`)])),
    );
    expect(writes.every((w) => w.status === 200)).toBe(true);
    const batches = (await metric("understudy_server_commit_batch_size_count")) - before;
    expect(batches).toBeLessThan(200);
    const disk = readRecordsOnDisk(slots[0]!.dataDir);
    for (let i = 0; i < 200; i++) expect(disk.get(`gc-${i}`)?.value).toBe(`v${i}`);
  });

  async function metric(name: string): Promise<number> {
    const text = await (await fetch(`${url}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith(`${name} `));
    return Number(line?.split(" ")[1] ?? 0);
  }

  it("answers health, readiness and metrics without a token", async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${url}/metrics`)).text()).toContain("understudy_server_epoch 6");
  });
});

describe("anti-entropy", () => {
  it("pulls the records a server missed from its peers, and the peers' epoch", async () => {
    const slots = await planServers(3);
    const [a, b] = await Promise.all([startInProcess(slots[0]!, slots), startInProcess(slots[1]!, slots)]);
    try {
      const records = Array.from({ length: 1200 }, (_, i) => rec(`ae-${i}`, 3, i + 1, 1, `v${i}`));
      for (let i = 0; i < records.length; i += 400) {
        expect(
          (
            await post(
              `${a.url}/v1/apply`,
              { epoch: 3, head: "h3", records: records.slice(i, i + 400) },
              auth,
            )
          ).status,
        ).toBe(200);
      }
      await post(
        `${b.url}/v1/apply`,
        { epoch: 3, head: "h3", records: [rec("ae-0", 3, 5000, 2, "newer on b")] },
        auth,
      );

      const c = await startInProcess(slots[2]!, slots);
      await c.ready;
      const disk = readRecordsOnDisk(slots[2]!.dataDir);
      expect(disk.size).toBe(1200);
      expect(disk.get("ae-0")).toMatchObject({ value: "newer on b", version: 2 });
      expect(disk.get("ae-1199")).toMatchObject({ value: "v1199" });
      // It learned epoch 3 from its peers, so an older head is refused there too.
      expect(
        (await post(`${c.url}/v1/apply`, { epoch: 2, head: "h2", records: [rec("z", 2, 1, 1, "z")] }, auth))
          .status,
      ).toBe(409);
      // A later round only moves what changed since.
      await post(
        `${a.url}/v1/apply`,
        { epoch: 3, head: "h3", records: [rec("ae-5", 3, 6000, 2, "changed")] },
        auth,
      );
      expect(await c.syncNow()).toBe(1);
      expect(readRecordsOnDisk(slots[2]!.dataDir).get("ae-5")?.value).toBe("changed");
      await c.close();
    } finally {
      await Promise.all([a.close(), b.close()]);
      cleanup(slots);
    }
  });
});
