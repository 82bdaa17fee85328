// Identity checks: every reply names who gave it, every request whom it is for, and a mismatch is
// refused on both sides. The processes here are real heads and servers on loopback, two services
// side by side, as when a pod IP of one is reused by the other.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, DataplaneError, decide, expectedHead } from "../../../src/dataplane/client.ts";
import type { HeadHandle } from "../../../src/dataplane/head.ts";
import {
  EXPECT_HEADER,
  formatIdentity,
  IDENTITY_HEADER,
  identityFromBody,
  identityMismatch,
  parseExpected,
  parseIdentity,
} from "../../../src/dataplane/identity.ts";
import { epochOfVersion } from "../../../src/dataplane/record.ts";
import type { ServerHandle } from "../../../src/dataplane/server.ts";
import { readRecordsOnDisk } from "../../../src/dataplane/server-store.ts";
import { cleanup, planServers, startHeadFor, startInProcess, TOKEN, type ServerSlot } from "./harness.ts";

describe("identity text", () => {
  it("round-trips, leaving out what is unset", () => {
    const head = { service: "5f2c-uid", role: "head", pod: "kv-head-7", epoch: 7 } as const;
    expect(formatIdentity(head)).toBe("service=5f2c-uid; role=head; pod=kv-head-7; epoch=7");
    expect(parseIdentity(formatIdentity(head))).toEqual(head);
    expect(parseIdentity("role=server; pod=kv-server-zone-a-0")).toEqual({
      service: "",
      role: "server",
      pod: "kv-server-zone-a-0",
    });
    expect(parseExpected("service=u1; role=server")).toEqual({ service: "u1", role: "server" });
    expect(parseExpected(undefined)).toBeUndefined();
  });

  it.each([
    [undefined],
    [""],
    ["role=tenant"],
    ["service=a; service=b; role=head"],
    ["role=head; epoch=-1"],
    ["role=head; epoch=x"],
    ["role=head; pod=a b"],
    ["role=head; colour=blue"],
    ["role=head; =x"],
    [`role=head; pod=${"p".repeat(600)}`],
  ])("refuses the malformed identity %j", (text) => {
    expect(parseIdentity(text)).toBeUndefined();
  });

  it("reads an identity from a /healthz body", () => {
    expect(identityFromBody({ status: "ok", service: "u", role: "head", pod: "p", epoch: 2 })).toEqual({
      service: "u",
      role: "head",
      pod: "p",
      epoch: 2,
    });
    expect(identityFromBody({ status: "ok" })).toBeUndefined();
    expect(identityFromBody("ok")).toBeUndefined();
  });

  it("names every field that does not match, and treats a missing identity as a mismatch", () => {
    const actual = { service: "u2", role: "head", pod: "kv-head-3", epoch: 3 } as const;
    expect(identityMismatch({ service: "u2", role: "head", pod: "kv-head-3", epoch: 3 }, actual)).toBeNull();
    expect(identityMismatch({ role: "head" }, actual)).toBeNull();
    expect(identityMismatch({ service: "u1", role: "head", pod: "kv-head-4", epoch: 4 }, actual)).toBe(
      "answered as service u2, not u1, pod kv-head-3, not kv-head-4, epoch 3, not 4",
    );
    expect(identityMismatch({ role: "server" }, actual)).toBe("answered as role head, not server");
    expect(identityMismatch({ role: "head" }, undefined)).toBe("the answer names no understudy identity");
    expect(identityMismatch({ service: "u1" }, { service: "", role: "head", pod: "" })).toBe(
      "answered as service (none), not u1",
    );
  });

  it("a client expects the service of its resolver, else its own, and the resolver's pod", () => {
    expect(expectedHead({ url: "http://h" }, undefined)).toEqual({ role: "head" });
    expect(expectedHead({ url: "http://h" }, "u1")).toEqual({ role: "head", service: "u1" });
    expect(expectedHead({ url: "http://h", serviceUid: "u2", pod: "kv-head-2" }, "u1")).toEqual({
      role: "head",
      service: "u2",
      pod: "kv-head-2",
    });
  });

  it("a client retries an answer from another process and a misdirected refusal, reads and writes alike", () => {
    for (const op of ["get", "put", "cas"] as const) {
      expect(decide(op, { kind: "misdirected", message: "" })).toBe("retry");
      expect(decide(op, { kind: "response", status: 421, body: { outcome: "not_applied" } })).toBe("retry");
    }
  });
});

describe("two services side by side", () => {
  let slotsA: ServerSlot[];
  let slotsB: ServerSlot[];
  let serversA: ServerHandle[];
  let serversB: ServerHandle[];
  let headA: HeadHandle;
  let headB: HeadHandle;

  beforeAll(async () => {
    slotsA = await planServers(3);
    slotsB = await planServers(3);
    serversA = await Promise.all(
      slotsA.map((s, i) =>
        startInProcess(s, slotsA, { identity: { service: "uid-a", pod: `a-server-${i}` } }),
      ),
    );
    serversB = await Promise.all(
      slotsB.map((s, i) =>
        startInProcess(s, slotsB, { identity: { service: "uid-b", pod: `b-server-${i}` } }),
      ),
    );
    headA = await startHeadFor(slotsA, 1, { identity: { service: "uid-a", pod: "a-head-1" } });
    headB = await startHeadFor(slotsB, 5, { identity: { service: "uid-b", pod: "b-head-5" } });
    await Promise.all([headA.ready, headB.ready]);
  });
  afterAll(async () => {
    await Promise.all([headA.close(), headB.close()]);
    await Promise.all([...serversA, ...serversB].map((s) => s.close()));
    cleanup([...slotsA, ...slotsB]);
  });

  it("heads and servers name themselves on every reply and in /healthz and /readyz", async () => {
    for (const path of ["/healthz", "/readyz", "/nope"]) {
      const res = await fetch(`${headA.url}${path}`);
      expect(parseIdentity(res.headers.get(IDENTITY_HEADER))).toEqual({
        service: "uid-a",
        role: "head",
        pod: "a-head-1",
        epoch: 1,
      });
      const body = (await res.json()) as Record<string, unknown>;
      if (path !== "/nope")
        expect(body).toMatchObject({ service: "uid-a", role: "head", pod: "a-head-1", epoch: 1 });
    }
    const res = await fetch(`${serversB[0]!.url}/healthz`);
    expect(parseIdentity(res.headers.get(IDENTITY_HEADER))).toEqual({
      service: "uid-b",
      role: "server",
      pod: "b-server-0",
    });
    expect(await res.json()).toMatchObject({ service: "uid-b", role: "server", pod: "b-server-0" });
  });

  it("a head refuses an operation meant for another service (421, not applied) and applies nothing", async () => {
    const res = await fetch(`${headB.url}/v1/op`, {
      method: "POST",
      headers: { "content-type": "application/json", [EXPECT_HEADER]: "service=uid-a; role=head" },
      body: JSON.stringify({ op: "put", key: "misdirected", value: "x" }),
    });
    expect(res.status).toBe(421);
    expect(await res.json()).toMatchObject({ error: "misdirected", outcome: "not_applied" });
    const ownClient = createClient({ resolveHead: async () => headB.url, serviceUid: "uid-b" });
    expect(await ownClient.get("misdirected")).toEqual({ found: false, value: null, version: 0 });
  });

  it("a client that reaches another service's head refuses it and finds its own head next", async () => {
    let resolved = 0;
    const client = createClient({
      resolveHead: async () => (resolved++ === 0 ? headB.url : headA.url),
      serviceUid: "uid-a",
      initialBackoffMs: 1,
    });
    // Numbered by A's head (epoch 1), not B's (epoch 5).
    expect(epochOfVersion((await client.put("k1", "for-a")).version)).toBe(1);
    expect(resolved).toBe(2);
    const onB = createClient({ resolveHead: async () => headB.url, serviceUid: "uid-b" });
    expect(await onB.get("k1")).toEqual({ found: false, value: null, version: 0 });
  });

  it("a client pinned to another head never trusts it, and says the operation was not applied", async () => {
    const client = createClient({
      resolveHead: async () => ({ url: headB.url, serviceUid: "uid-a", pod: "a-head-1" }),
      maxAttempts: 3,
      initialBackoffMs: 1,
    });
    const err = await client.get("k1").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataplaneError);
    expect(err).toMatchObject({ code: "unavailable" });
    expect(String((err as Error).message)).toContain("service uid-b, not uid-a");
    // The same head, right service but another pod than the resolver named: refused too.
    const wrongPod = createClient({
      resolveHead: async () => ({ url: headA.url, serviceUid: "uid-a", pod: "a-head-2" }),
      maxAttempts: 2,
      initialBackoffMs: 1,
    });
    await expect(wrongPod.get("k1")).rejects.toThrow(/pod a-head-1, not a-head-2/);
  });

  it("servers refuse a head of another service, and a head does not count another service's server", async () => {
    await createClient({ resolveHead: async () => headB.url, serviceUid: "uid-b" }).put("b-key", "v");
    // Same token, so only the identity tells them apart.
    const res = await fetch(`${serversB[0]!.url}/v1/fence`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${TOKEN}`,
        [EXPECT_HEADER]: "service=uid-a; role=server",
      },
      body: JSON.stringify({ epoch: 99, head: "intruder" }),
    });
    expect(res.status).toBe(421);
    expect(await res.json()).toMatchObject({ error: "misdirected" });

    // A head of service A whose server list points at B's servers: it cannot fence, write or be fooled.
    const lost = await startHeadFor(slotsB, 50, { identity: { service: "uid-a", pod: "a-head-50" } });
    try {
      const status = await Promise.race([
        lost.ready.then(() => "ready"),
        new Promise((resolve) => setTimeout(() => resolve("not ready"), 600)),
      ]);
      expect(status).toBe("not ready");
      const health = (await (await fetch(`${lost.url}/healthz`)).json()) as Record<string, unknown>;
      expect(health).toMatchObject({ status: "ok", ready: false });
    } finally {
      await lost.close();
    }
    // B's servers kept B's epoch: nothing of the lost head reached them.
    const b = await fetch(`${serversB[0]!.url}/healthz`);
    expect(await b.json()).toMatchObject({ epoch: 5 });
    const records = slotsB.flatMap((slot) => [...readRecordsOnDisk(slot.dataDir).values()]);
    expect(records.length).toBeGreaterThanOrEqual(2);
    for (const record of records) expect(record.epoch).toBe(5);
  });
});
