// Servers as real child processes: SIGKILL of one must not stop writes, and on restart
// with the same data directory it catches up by anti-entropy; SIGTERM drains cleanly.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../../src/dataplane/client.ts";
import type { HeadHandle } from "../../../src/dataplane/head.ts";
import { partitionOfKey } from "../../../src/dataplane/placement.ts";
import { epochOfVersion } from "../../../src/dataplane/record.ts";
import { readRecordsOnDisk } from "../../../src/dataplane/server-store.ts";
import {
  cleanup,
  eventually,
  planServers,
  post,
  spawnServer,
  startHeadFor,
  TOKEN,
  type ChildServer,
  type ServerSlot,
} from "./harness.ts";

describe("servers as child processes", () => {
  let slots: ServerSlot[];
  let children: ChildServer[];
  let head: HeadHandle;

  beforeAll(async () => {
    slots = await planServers(3);
    children = await Promise.all(slots.map((s) => spawnServer(s, slots)));
    head = await startHeadFor(slots, 1);
    await head.ready;
  });
  afterAll(async () => {
    await head.close();
    for (const c of children)
      if (c.process.exitCode === null && c.process.signalCode === null) c.process.kill("SIGTERM");
    await Promise.all(children.map((c) => c.exited));
    cleanup(slots);
  });

  it("keeps acknowledging writes after kill -9 of one server, which catches up after restart", async () => {
    const client = createClient({ resolveHead: async () => head.url });
    const versions = new Map<string, number>();
    const put = async (key: string, value: string) => {
      const { version } = await client.put(key, value);
      expect(epochOfVersion(version)).toBe(1);
      versions.set(key, version);
    };
    for (let i = 0; i < 10; i++) await put(`before-${i}`, `b${i}`);

    children[2]!.process.kill("SIGKILL");
    expect(await children[2]!.exited).toBe(null);
    expect(children[2]!.process.signalCode).toBe("SIGKILL");

    const written = new Map<string, string>();
    for (let i = 0; i < 30; i++) {
      const key = `during-${i}`;
      await put(key, `d${i}`);
      written.set(key, `d${i}`);
    }
    const first = versions.get("before-0")!;
    await put("before-0", "b0-updated");
    expect(versions.get("before-0")).toBeGreaterThan(first);
    written.set("before-0", "b0-updated");
    expect([...readRecordsOnDisk(slots[2]!.dataDir).keys()].filter((k) => k.startsWith("during-"))).toEqual(
      [],
    );

    children[2] = await spawnServer(slots[2]!, slots);
    await eventually(
      async () => (await fetch(`http://${slots[2]!.address}/readyz`)).status === 200,
      "restarted server ready",
    );
    await eventually(() => {
      const disk = readRecordsOnDisk(slots[2]!.dataDir);
      return [...written].every(([k, v]) => disk.get(k)?.value === v);
    }, "restarted server to hold every write made while it was down");
    const disk = readRecordsOnDisk(slots[2]!.dataDir);
    expect(disk.get("before-0")).toMatchObject({
      value: "b0-updated",
      version: versions.get("before-0"),
      epoch: 1,
    });
    expect(disk.get("during-7")).toMatchObject({
      value: "d7",
      version: versions.get("during-7"),
      partition: partitionOfKey("during-7", 64),
    });
  });

  it("on SIGTERM finishes in-flight commits, answers or refuses the rest, and exits 0", async () => {
    const target = slots[0]!;
    const child = children[0]!;
    const results: { key: string; status: number }[] = [];
    let signalled = false;
    // Eight writers send one write after another until the server stops answering;
    // SIGTERM goes out once 50 writes were acknowledged, while others are in flight.
    const writer = async (w: number) => {
      for (let i = 0; ; i++) {
        const key = `drain-${w}-${i}`;
        let status: number;
        try {
          const r = await post(
            `http://${target.address}/v1/apply`,
            {
              epoch: 1,
              head: head.headId,
              records: [
                {
                  key,
                  partition: partitionOfKey(key, 64),
                  epoch: 1,
                  n: 1_000_000 + w * 10_000 + i,
                  version: 1,
                  value: `x${i}`,
                },
              ],
            },
            { authorization: `Bearer ${TOKEN}` },
          );
          status = r.status;
        } catch {
          status = 0;
        }
        results.push({ key, status });
        if (!signalled && results.filter((r) => r.status === 200).length >= 50) {
          signalled = true;
          child.process.kill("SIGTERM");
        }
        if (status !== 200) return;
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, w) => writer(w)));
    expect(await child.exited).toBe(0);
    const disk = readRecordsOnDisk(target.dataDir);
    const acked = results.filter((r) => r.status === 200);
    expect(acked.length).toBeGreaterThanOrEqual(50);
    for (const r of acked) expect(disk.get(r.key)?.value, r.key).toBeDefined();
    // Everything else was refused while draining (503) or found the listener closed (0).
    for (const r of results) expect([0, 200, 503]).toContain(r.status);
    children[0] = await spawnServer(target, slots);
  });
});
