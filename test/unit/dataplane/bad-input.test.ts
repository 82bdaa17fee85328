// Every kind of malformed request gets a 4xx naming the problem, and nothing stored changes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HeadHandle } from "../../../src/dataplane/head.ts";
import { partitionOfKey } from "../../../src/dataplane/placement.ts";
import { readRecordsOnDisk } from "../../../src/dataplane/server-store.ts";
import type { ServerHandle } from "../../../src/dataplane/server.ts";
import {
  cleanup,
  op,
  planServers,
  post,
  startHeadFor,
  startInProcess,
  TOKEN,
  type ServerSlot,
} from "./harness.ts";

describe("bad input", () => {
  let slots: ServerSlot[];
  let servers: ServerHandle[];
  let head: HeadHandle;
  let snapshot: string[];
  /** The version of k's one write. */
  let original = 0;

  const disks = () => slots.map((s) => JSON.stringify([...readRecordsOnDisk(s.dataDir)].sort()));

  beforeAll(async () => {
    slots = await planServers(3);
    servers = await Promise.all(slots.map((s) => startInProcess(s, slots)));
    head = await startHeadFor(slots, 1);
    await head.ready;
    const put = await op(head.url, { op: "put", key: "k", value: "original" });
    expect(put.status).toBe(200);
    original = put.body.version as number;
    expect((await op(head.url, { op: "put", key: "other", value: "o" })).status).toBe(200);
    snapshot = disks();
  });
  afterAll(async () => {
    await head.close();
    await Promise.all(servers.map((s) => s.close()));
    cleanup(slots);
  });

  const headCases: [string, unknown, number, string, RegExp][] = [
    ["malformed JSON", '{"op": "put", "key": "k", "value": ', 400, "invalid_json", /not valid JSON/],
    ["a JSON array", "[1, 2]", 400, "invalid_request", /must be a JSON object/],
    [
      "an unknown operation",
      { op: "increment", key: "k" },
      400,
      "unknown_operation",
      /op must be one of get, put, delete, cas/,
    ],
    ["a missing operation", { key: "k", value: "v" }, 400, "unknown_operation", /op must be one of/],
    [
      "a key over 1 KiB",
      { op: "put", key: "é".repeat(513), value: "v" },
      400,
      "key_too_long",
      /key is 1026 bytes; the limit is 1024/,
    ],
    [
      "a value over 1 MiB",
      { op: "put", key: "k", value: "x".repeat(1024 * 1024 + 1) },
      413,
      "value_too_large",
      /limit is 1048576/,
    ],
    [
      "an empty key",
      { op: "put", key: "", value: "v" },
      400,
      "invalid_request",
      /key: key must not be empty/,
    ],
    ["a value that is not a string", { op: "put", key: "k", value: 42 }, 400, "invalid_request", /value/],
    ["a put without a value", { op: "put", key: "k" }, 400, "invalid_request", /value/],
    [
      "a cas without expectedVersion",
      { op: "cas", key: "k", value: "v" },
      400,
      "invalid_request",
      /expectedVersion/,
    ],
    [
      "a negative expectedVersion",
      { op: "cas", key: "k", expectedVersion: -1, value: "v" },
      400,
      "invalid_request",
      /expectedVersion/,
    ],
    [
      "an unexpected field",
      { op: "delete", key: "k", value: "v" },
      400,
      "invalid_request",
      /Unrecognized key/,
    ],
  ];

  for (const [what, body, status, code, message] of headCases) {
    it(`head: ${what} -> ${status} ${code}, storage unchanged`, async () => {
      const r = await op(head.url, body);
      expect(r.status).toBe(status);
      expect(r.body.error).toBe(code);
      expect(String(r.body.message)).toMatch(message);
      expect(disks()).toEqual(snapshot);
    });
  }

  it("head: a body over 8 MiB -> 413 body_too_large, storage unchanged", async () => {
    const r = await op(head.url, { op: "put", key: "k", value: "x".repeat(9 * 1024 * 1024) });
    expect(r.status).toBe(413);
    expect(r.body.error).toBe("body_too_large");
    expect(disks()).toEqual(snapshot);
  });

  it("head: unknown path -> 404, wrong method -> 405", async () => {
    expect((await post(`${head.url}/v1/put`, { key: "k" })).status).toBe(404);
    const r = await fetch(`${head.url}/v1/op`);
    expect(r.status).toBe(405);
    expect(((await r.json()) as { error: string }).error).toBe("method_not_allowed");
  });

  it("head: a compare-and-set on the wrong version -> 412 with the current version, storage unchanged", async () => {
    const r = await op(head.url, { op: "cas", key: "k", expectedVersion: 7, value: "v" });
    expect(r.status).toBe(412);
    expect(r.body).toMatchObject({
      error: "version_mismatch",
      currentVersion: original,
      outcome: "not_applied",
    });
    const create = await op(head.url, { op: "cas", key: "k", expectedVersion: 0, value: "v" });
    expect(create.status).toBe(412);
    expect(disks()).toEqual(snapshot);
  });

  const key = "k";
  const record = {
    key,
    partition: partitionOfKey(key, 64),
    epoch: 1,
    n: 999_999,
    version: 99,
    value: "evil",
  };
  const serverCases: [string, string, unknown, Record<string, string>, number, string, RegExp][] = [
    [
      "no token",
      "/v1/apply",
      { epoch: 1, head: "x", records: [record] },
      {},
      401,
      "unauthorized",
      /missing Authorization/,
    ],
    [
      "a wrong token",
      "/v1/apply",
      { epoch: 1, head: "x", records: [record] },
      { authorization: "Bearer nope" },
      401,
      "unauthorized",
      /wrong bearer token/,
    ],
    [
      "a token of another length",
      "/v1/fence",
      { epoch: 9, head: "x" },
      { authorization: `Bearer ${TOKEN}x` },
      401,
      "unauthorized",
      /wrong bearer token/,
    ],
    ["malformed JSON", "/v1/apply", "{nope", {}, 400, "invalid_json", /not valid JSON/],
    [
      "a record without a version",
      "/v1/apply",
      { epoch: 1, head: "x", records: [{ ...record, version: undefined }] },
      {},
      400,
      "invalid_request",
      /records\.0\.version/,
    ],
    [
      "a record in the wrong partition",
      "/v1/apply",
      { epoch: 1, head: "x", records: [{ ...record, partition: (record.partition + 1) % 64 }] },
      {},
      400,
      "wrong_partition",
      /is not in partition/,
    ],
    [
      "an oversized key",
      "/v1/read",
      { epoch: 1, head: "x", keys: ["k".repeat(1025)] },
      {},
      400,
      "invalid_request",
      /keys\.0: key is longer than 1024 bytes/,
    ],
    [
      "an older epoch",
      "/v1/apply",
      { epoch: 0, head: "old", records: [{ ...record, epoch: 0 }] },
      {},
      409,
      "stale_epoch",
      /epoch 0 is older than this server's epoch 1/,
    ],
    [
      "the current epoch from another head",
      "/v1/apply",
      { epoch: 1, head: "impostor", records: [record] },
      {},
      409,
      "stale_epoch",
      /already belongs to another head/,
    ],
    ["an unknown path", "/v1/drop", {}, {}, 404, "not_found", /no such path/],
  ];

  for (const [what, path, body, headers, status, code, message] of serverCases) {
    it(`server: ${what} -> ${status} ${code}, storage unchanged`, async () => {
      const authHeaders =
        "authorization" in headers || what === "no token" ? headers : { authorization: `Bearer ${TOKEN}` };
      const r = await post(`${servers[0]!.url}${path}`, body, authHeaders);
      expect(r.status).toBe(status);
      expect(r.body.error).toBe(code);
      expect(String(r.body.message)).toMatch(message);
      expect(disks()).toEqual(snapshot);
    });
  }

  it("still serves the original values afterwards", async () => {
    expect((await op(head.url, { op: "get", key: "k" })).body).toEqual({
      key: "k",
      found: true,
      value: "original",
      version: original,
    });
  });
});
