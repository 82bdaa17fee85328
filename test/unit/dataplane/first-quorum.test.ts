// Every quorum operation completes on the first quorum that answers: one replica of three accepts
// connections and never answers (as a stopped or wedged server does), and fencing, writes, reads
// and a read's write-back all finish on the two live servers while their request to the silent
// replica is still open. The head's server timeout is far longer than the test may run, so an
// operation that waited for the silent replica could not pass.
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HeadHandle } from "../../../src/dataplane/head.ts";
import { partitionOfKey } from "../../../src/dataplane/placement.ts";
import { ServerBatcher, ServerRpc } from "../../../src/dataplane/server-client.ts";
import { readRecordsOnDisk } from "../../../src/dataplane/server-store.ts";
import type { ServerHandle } from "../../../src/dataplane/server.ts";
import { PATHS } from "../../../src/dataplane/wire.ts";
import {
  cleanup,
  eventually,
  op,
  planServers,
  startHeadFor,
  startInProcess,
  TOKEN,
  type ServerSlot,
} from "./harness.ts";

/** A TCP listener that reads every request sent to it and never answers. */
class SilentReplica {
  readonly #server: Server;
  readonly #connections = new Map<Socket, { received: string; open: boolean }>();

  private constructor(server: Server) {
    this.#server = server;
    server.on("connection", (socket) => {
      const state = { received: "", open: true };
      this.#connections.set(socket, state);
      socket.on("data", (d: Buffer) => (state.received += d.toString()));
      socket.on("close", () => (state.open = false));
      socket.on("error", () => undefined);
    });
  }

  static async listen(address: string): Promise<SilentReplica> {
    const [host, port] = address.split(":");
    const server = createServer();
    await new Promise<void>((ok, fail) => {
      server.once("error", fail);
      server.listen(Number(port), host, ok);
    });
    return new SilentReplica(server);
  }

  /** Requests to `path` that mention `text` and whose connection the head still holds open. */
  pending(path: string, text = ""): number {
    return [...this.#connections.values()].filter(
      (c) => c.open && c.received.startsWith(`POST ${path} `) && c.received.includes(text),
    ).length;
  }

  /** Every request to `path` that mentions `text`, answered or not. */
  received(path: string, text = ""): number {
    return [...this.#connections.values()].filter(
      (c) => c.received.startsWith(`POST ${path} `) && c.received.includes(text),
    ).length;
  }

  async close(): Promise<void> {
    for (const socket of this.#connections.keys()) socket.destroy();
    await new Promise((ok) => this.#server.close(ok));
  }
}

describe("quorum operations with one replica that never answers (R=3, W=2, R_read=2)", () => {
  let slots: ServerSlot[];
  let servers: ServerHandle[];
  let silent: SilentReplica;
  let head: HeadHandle;

  beforeAll(async () => {
    slots = await planServers(3);
    servers = await Promise.all(slots.slice(0, 2).map((s) => startInProcess(s, slots)));
    silent = await SilentReplica.listen(slots[2]!.address);
    // A timeout far past the test's own: waiting for it would fail the test.
    head = await startHeadFor(slots, 1, { serverTimeoutMs: 600_000 });
  });
  afterAll(async () => {
    await silent.close();
    await head.close();
    await Promise.all(servers.map((s) => s.close()));
    cleanup(slots);
  });

  /** The silent replica got this operation's request and the head has not given up on it. */
  async function stillWaitingOn(path: string, key: string): Promise<void> {
    await eventually(
      () => silent.received(path, key) > 0,
      `a ${path} request for ${key} at the silent replica`,
    );
    expect(silent.pending(path, key)).toBeGreaterThan(0);
  }

  it("is ready once the live servers took the epoch, with the silent replica's fence unanswered", async () => {
    await head.ready;
    expect(silent.pending(PATHS.fence)).toBe(1);
  });

  it("acknowledges a put, a cas and a delete on the two live servers", async () => {
    const put = await op(head.url, { op: "put", key: "w", value: "v1" });
    expect(put.status).toBe(200);
    await stillWaitingOn(PATHS.apply, '"w"');
    const version = put.body.version as number;

    const cas = await op(head.url, { op: "cas", key: "w", expectedVersion: version, value: "v2" });
    expect(cas.status).toBe(200);
    expect(silent.received(PATHS.apply, '"v2"')).toBeGreaterThan(0);
    expect(silent.pending(PATHS.apply, '"v2"')).toBeGreaterThan(0);

    const del = await op(head.url, { op: "delete", key: "w" });
    expect(del.status).toBe(200);
    for (const slot of slots.slice(0, 2)) {
      expect(readRecordsOnDisk(slot.dataDir).get("w")).toMatchObject({
        value: null,
        version: del.body.version,
      });
    }
  });

  it("answers a read from the two live servers", async () => {
    expect((await op(head.url, { op: "put", key: "r", value: "x" })).status).toBe(200);
    const get = await op(head.url, { op: "get", key: "r" });
    expect(get.body).toMatchObject({ found: true, value: "x" });
    await stillWaitingOn(PATHS.read, '"r"');
  });

  it("writes a newer record back to the lagging live server without waiting for the silent one", async () => {
    // A record of this head's epoch that reached one server only (an unacknowledged write).
    const batcher = new ServerBatcher(
      new ServerRpc(TOKEN, 5000, { role: "server" }),
      head.epoch,
      head.headId,
    );
    const key = "lagging";
    const applied = await batcher.apply(slots[0]!.address, {
      key,
      partition: partitionOfKey(key, 64),
      epoch: head.epoch,
      n: 2 ** 32,
      version: head.epoch * 2 ** 33 + 2 ** 32,
      value: "only-on-one",
    });
    expect(applied.kind).toBe("ok");
    expect(readRecordsOnDisk(slots[1]!.dataDir).get(key)).toBeUndefined();

    const get = await op(head.url, { op: "get", key });
    expect(get.body).toMatchObject({ found: true, value: "only-on-one" });
    expect(readRecordsOnDisk(slots[1]!.dataDir).get(key)).toMatchObject({ value: "only-on-one" });
    await stillWaitingOn(PATHS.read, `"${key}"`);
  });
});
