// TLS on every hop and client authentication, with real sockets: servers in this process, the head
// as a child process (`node src/dataplane/main.ts head`), certificates from a CA made here with the
// operator's own issuing code. Whatever is refused must have written nothing: each case reads back.
import { renameSync, writeFileSync } from "node:fs";
import { connect } from "node:tls";
import { join } from "node:path";
import { Agent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tokenDigest } from "../../../src/dataplane/client-auth.ts";
import { createClient, DataplaneError, type DataplaneClient } from "../../../src/dataplane/client.ts";
import { epochOfVersion } from "../../../src/dataplane/record.ts";
import type { ServerHandle } from "../../../src/dataplane/server.ts";
import { TlsMaterial } from "../../../src/dataplane/tls.ts";
import { PATHS } from "../../../src/dataplane/wire.ts";
import { certificateInfo, createCa, issueServing, type KeyPairPem } from "../../../src/pki/certificates.ts";
import {
  cleanup,
  eventually,
  planServers,
  serverList,
  spawnHead,
  startInProcess,
  tempDir,
  TOKEN,
  type ChildHead,
  type ServerSlot,
} from "./harness.ts";

const HOUR = 3600_000;
const validity = () => ({ notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + HOUR) });

async function servingFor(ca: KeyPairPem): Promise<KeyPairPem> {
  return issueServing(ca, {
    commonName: "kv",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    ...validity(),
  });
}

/** Writes a file whole (rename), as a Secret volume update does. */
function writeAtomically(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

/** The serial number of the certificate a new TLS connection to `address` is served. */
function servedSerial(address: string, ca: string): Promise<string> {
  const i = address.lastIndexOf(":");
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address.slice(0, i), port: Number(address.slice(i + 1)), ca }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      resolve(serial.toLowerCase());
    });
    socket.once("error", reject);
  });
}

describe("TLS on every hop and authenticated clients (head as a process)", () => {
  let dir: string;
  let ca: KeyPairPem;
  let otherCa: KeyPairPem;
  let slots: ServerSlot[];
  let servers: ServerHandle[];
  let head: ChildHead;
  const files = { cert: "", key: "", ca: "", digests: "" };
  const tokens = { alice: "alice-token-0123456789abcdef", bob: "bob-token-0123456789abcdef" };
  const clients: DataplaneClient[] = [];

  const client = (options: { token?: string; ca?: string } = {}) => {
    const c = createClient({
      resolveHead: () => Promise.resolve(head.url),
      maxAttempts: 2,
      initialBackoffMs: 5,
      ...(options.ca !== undefined ? { tls: { ca: options.ca } } : {}),
      ...(options.token !== undefined ? { credentials: { token: options.token } } : {}),
    });
    clients.push(c);
    return c;
  };
  const alice = () => client({ token: tokens.alice, ca: ca.cert });

  beforeAll(async () => {
    dir = tempDir("tls");
    ca = await createCa("kv CA", ...(Object.values(validity()) as [Date, Date]));
    otherCa = await createCa("another CA", ...(Object.values(validity()) as [Date, Date]));
    const serving = await servingFor(ca);
    Object.assign(files, {
      cert: join(dir, "tls.crt"),
      key: join(dir, "tls.key"),
      ca: join(dir, "ca.crt"),
      digests: join(dir, "clients.json"),
    });
    writeAtomically(files.cert, serving.cert);
    writeAtomically(files.key, serving.key);
    writeAtomically(files.ca, ca.cert);
    writeAtomically(
      files.digests,
      JSON.stringify({ alice: tokenDigest(tokens.alice), bob: tokenDigest(tokens.bob) }),
    );
    slots = await planServers(3);
    servers = await Promise.all(
      slots.map((s) => {
        const material = TlsMaterial.fromFiles({
          certFile: files.cert,
          keyFile: files.key,
          caFile: files.ca,
        });
        material.watch(100);
        return startInProcess(s, slots, { tls: { mode: "required", material } });
      }),
    );
    head = await spawnHead(serverList(slots), 1, {
      UNDERSTUDY_TLS_MODE: "required",
      UNDERSTUDY_TLS_CERT_FILE: files.cert,
      UNDERSTUDY_TLS_KEY_FILE: files.key,
      UNDERSTUDY_TLS_CA_FILE: files.ca,
      UNDERSTUDY_TLS_RELOAD_INTERVAL_MS: "100",
      UNDERSTUDY_CLIENT_TOKENS_FILE: files.digests,
    });
    expect(head.url).toMatch(/^https:\/\//);
    const ready = alice();
    await eventually(async () => {
      try {
        await ready.get("warm-up");
        return true;
      } catch {
        return false;
      }
    }, "the TLS head to fence its servers");
  }, 30_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    head?.process.kill("SIGTERM");
    await head?.exited;
    await Promise.all((servers ?? []).map((s) => s.close()));
    cleanup(slots ?? []);
  });

  it("serves an authenticated client over TLS, head to servers over TLS too", async () => {
    const c = alice();
    expect(epochOfVersion((await c.put("k-ok", "v1")).version)).toBe(1);
    expect(await c.get("k-ok")).toMatchObject({ found: true, value: "v1" });
    expect(servers.every((s) => s.url.startsWith("https://"))).toBe(true);
  });

  it("refuses a client without a token (401) and writes nothing", async () => {
    const err = await client({ ca: ca.cert })
      .put("k-anonymous", "x")
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataplaneError);
    expect((err as DataplaneError).status).toBe(401);
    expect(await alice().get("k-anonymous")).toMatchObject({ found: false });
  });

  it("refuses a wrong token (401) and writes nothing", async () => {
    const err = await client({ ca: ca.cert, token: "not-a-token-anyone-was-given" })
      .put("k-wrong", "x")
      .catch((e: unknown) => e);
    expect((err as DataplaneError).status).toBe(401);
    expect(await alice().get("k-wrong")).toMatchObject({ found: false });
  });

  it("refuses plain HTTP on a TLS-only port", async () => {
    const res = await fetch(head.url.replace("https:", "http:") + "/v1/op", {
      method: "POST",
      headers: { authorization: `Bearer ${tokens.alice}` },
      body: JSON.stringify({ op: "put", key: "k-plain", value: "x" }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "tls_required" });
    expect(await alice().get("k-plain")).toMatchObject({ found: false });
  });

  it("a client trusting another CA does not send its request (the head's certificate is refused)", async () => {
    const err = await client({ ca: otherCa.cert, token: tokens.alice })
      .put("k-other-ca", "x")
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataplaneError);
    expect((err as DataplaneError).code).toBe("unavailable");
    expect((err as Error).message).toMatch(/certificate|UNABLE_TO_VERIFY|SELF_SIGNED/i);
    expect(await alice().get("k-other-ca")).toMatchObject({ found: false });
  });

  it("servers refuse a request without the head token, and a client certificate of another CA changes nothing", async () => {
    const server = slots[0]!.address;
    const record = { key: "k-direct", partition: 0, epoch: 99, n: 1, version: 1, value: "x" };
    const trusted = new Agent({ connect: { ca: ca.cert } });
    const noToken = await fetch(`https://${server}${PATHS.apply}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ epoch: 99, head: "intruder", records: [record] }),
      dispatcher: trusted,
    } as RequestInit);
    expect(noToken.status).toBe(401);
    const wrongToken = await fetch(`https://${server}${PATHS.fence}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer guessed" },
      body: JSON.stringify({ epoch: 99, head: "intruder" }),
      dispatcher: trusted,
    } as RequestInit);
    expect(wrongToken.status).toBe(401);
    const plain = await fetch(`http://${server}${PATHS.fence}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ epoch: 99, head: "intruder" }),
    });
    expect(plain.status).toBe(400);
    await trusted.close();
    // Nothing was written and no epoch was raised: the head of epoch 1 still serves.
    expect(await alice().get("k-direct")).toMatchObject({ found: false });
    expect(epochOfVersion((await alice().put("k-after-intruders", "v")).version)).toBe(1);
  });

  it("a head trusting another CA cannot reach the servers: it never becomes ready and writes nothing", async () => {
    const otherDir = tempDir("tls-other");
    const serving = await servingFor(otherCa);
    const paths = { cert: join(otherDir, "c"), key: join(otherDir, "k"), ca: join(otherDir, "ca") };
    writeAtomically(paths.cert, serving.cert);
    writeAtomically(paths.key, serving.key);
    writeAtomically(paths.ca, otherCa.cert);
    const rogue = await spawnHead(serverList(slots), 50, {
      UNDERSTUDY_TLS_MODE: "required",
      UNDERSTUDY_TLS_CERT_FILE: paths.cert,
      UNDERSTUDY_TLS_KEY_FILE: paths.key,
      UNDERSTUDY_TLS_CA_FILE: paths.ca,
    });
    try {
      await new Promise((r) => setTimeout(r, 1500));
      const rogueClient = createClient({
        resolveHead: () => Promise.resolve(rogue.url),
        maxAttempts: 1,
        tls: { ca: otherCa.cert },
      });
      clients.push(rogueClient);
      const err = await rogueClient.put("k-rogue", "x").catch((e: unknown) => e);
      expect((err as DataplaneError).status).toBe(503);
      // The servers never heard of epoch 50: the real head still serves, and k-rogue does not exist.
      expect(await alice().get("k-rogue")).toMatchObject({ found: false });
      expect(epochOfVersion((await alice().put("k-after-rogue", "v")).version)).toBe(1);
    } finally {
      rogue.process.kill("SIGKILL");
      await rogue.exited;
    }
  });

  it("a revoked client is refused within seconds, without a restart, and its write changes nothing", async () => {
    const bob = client({ ca: ca.cert, token: tokens.bob });
    const before = await bob.put("k-bob", "before");
    expect(epochOfVersion(before.version)).toBe(1);
    writeAtomically(files.digests, JSON.stringify({ alice: tokenDigest(tokens.alice) }));
    const revokedAt = Date.now();
    await eventually(async () => {
      const err = await bob.put("k-bob-probe", "x").catch((e: unknown) => e);
      return err instanceof DataplaneError && err.status === 401;
    }, "the head to refuse the revoked token");
    expect(Date.now() - revokedAt).toBeLessThan(5000);
    const err = await bob.put("k-bob", "after").catch((e: unknown) => e);
    expect((err as DataplaneError).status).toBe(401);
    expect(await alice().get("k-bob")).toMatchObject({
      found: true,
      value: "before",
      version: before.version,
    });
    expect(head.process.exitCode).toBeNull();
  });

  it("certificate renewal under traffic: new connections get the new certificate, no write is lost", async () => {
    const before = await servedSerial(head.url.slice("https://".length), ca.cert);
    const writers = 4;
    let stop = false;
    const acknowledged = new Map<string, string>();
    const failures: string[] = [];
    const traffic = Array.from({ length: writers }, async (_, w) => {
      const c = alice();
      for (let i = 0; !stop; i++) {
        const key = `renew-${w}-${i % 20}`;
        const value = `${w}-${i}`;
        try {
          await c.put(key, value);
          acknowledged.set(key, value);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    });
    await new Promise((r) => setTimeout(r, 300));
    const renewed = await servingFor(ca);
    // As the kubelet updates a Secret volume: the files change under the running processes.
    writeAtomically(files.key, renewed.key);
    writeAtomically(files.cert, renewed.cert);
    const wanted = certificateInfo(renewed.cert).serialNumber.toLowerCase();
    await eventually(
      async () => (await servedSerial(head.url.slice("https://".length), ca.cert)) === wanted,
      "the head to serve the renewed certificate",
    );
    await eventually(
      async () => (await servedSerial(slots[1]!.address, ca.cert)) === wanted,
      "a server to serve the renewed certificate",
    );
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await Promise.all(traffic);
    expect(before).not.toBe(wanted);
    expect(failures).toEqual([]);
    expect(acknowledged.size).toBeGreaterThan(0);
    const reader = alice();
    for (const [key, value] of acknowledged) {
      expect(await reader.get(key)).toMatchObject({ found: true, value });
    }
  }, 40_000);
});

describe("permissive TLS (a service moving from plain to TLS)", () => {
  it("takes TLS and plain clients on the same port, and dials its servers over TLS", async () => {
    const dir = tempDir("tls-permissive");
    const ca = await createCa("kv CA", ...(Object.values(validity()) as [Date, Date]));
    const serving = await servingFor(ca);
    const material = TlsMaterial.fromPem({ ...serving, ca: ca.cert });
    const slots = await planServers(3);
    // Servers already permissive (rolled first); the head dials them over TLS.
    const servers = await Promise.all(
      slots.map((s) => startInProcess(s, slots, { tls: { mode: "permissive", material } })),
    );
    writeAtomically(join(dir, "c"), serving.cert);
    writeAtomically(join(dir, "k"), serving.key);
    writeAtomically(join(dir, "ca"), ca.cert);
    const head = await spawnHead(serverList(slots), 1, {
      UNDERSTUDY_TLS_MODE: "permissive",
      UNDERSTUDY_TLS_CERT_FILE: join(dir, "c"),
      UNDERSTUDY_TLS_KEY_FILE: join(dir, "k"),
      UNDERSTUDY_TLS_CA_FILE: join(dir, "ca"),
    });
    const tlsClient = createClient({ resolveHead: () => Promise.resolve(head.url), tls: { ca: ca.cert } });
    const plainClient = createClient({
      resolveHead: () => Promise.resolve(head.url.replace("https:", "http:")),
    });
    try {
      await eventually(async () => {
        try {
          await tlsClient.put("k-tls", "a");
          return true;
        } catch {
          return false;
        }
      }, "the head to be ready");
      expect(epochOfVersion((await plainClient.put("k-plain", "b")).version)).toBe(1);
      expect(await plainClient.get("k-tls")).toMatchObject({ found: true, value: "a" });
      expect(await tlsClient.get("k-plain")).toMatchObject({ found: true, value: "b" });
    } finally {
      await tlsClient.close();
      head.process.kill("SIGTERM");
      await head.exited;
      await Promise.all(servers.map((s) => s.close()));
      cleanup(slots);
    }
  }, 30_000);
});
