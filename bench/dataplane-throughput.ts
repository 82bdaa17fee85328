// Acknowledged writes/s and latency through the head (R=3, W=2, three server processes)
// side by side with writes sent straight to one server process with the same durability
// (node:sqlite WAL, synchronous=FULL, group commit), and the head with TLS on every hop and client
// authentication on beside the same head with both off, in one run. Every process is real; the
// load generator runs here. Usage:
//   npx node bench/dataplane-throughput.ts [--clients 32] [--writes 4000] [--value-bytes 100]
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { cpus, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { Agent } from "undici";
import { tokenDigest } from "../src/dataplane/client-auth.ts";
import { partitionOfKey } from "../src/dataplane/placement.ts";
import { createCa, issueServing } from "../src/pki/certificates.ts";

const { values } = parseArgs({
  options: {
    clients: { type: "string", default: "32" },
    writes: { type: "string", default: "4000" },
    "value-bytes": { type: "string", default: "100" },
  },
});
const CLIENTS = Number(values.clients);
const WRITES = Number(values.writes);
const VALUE = "x".repeat(Number(values["value-bytes"]));
const TOKEN = "bench-token";
const REPO = resolve(import.meta.dirname, "..");
const NODE = join(REPO, "node_modules/.bin/node");
const MAIN = join(REPO, "src/dataplane/main.ts");
const dirs: string[] = [];
const children: ChildProcess[] = [];

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((ok) => s.listen(0, "127.0.0.1", ok));
  const port = (s.address() as AddressInfo).port;
  await new Promise((ok) => s.close(ok));
  return port;
}

async function spawnRole(role: "server" | "head", env: Record<string, string>): Promise<void> {
  const child = spawn(NODE, [MAIN, role], {
    env: { ...process.env, UNDERSTUDY_TOKEN: TOKEN, UNDERSTUDY_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  const lines = createInterface({ input: child.stdout! });
  const marker = role === "head" ? '"msg":"fenced a write quorum' : '"msg":"listening"';
  await new Promise<void>((ok, fail) => {
    lines.on("line", (line) => line.includes(marker) && ok());
    child.once("exit", (code) => fail(new Error(`${role} exited with ${code}`)));
  });
}

/** TLS files (a CA of this run, a certificate for 127.0.0.1) and a client token's digest file. */
async function securityFiles(): Promise<{ env: Record<string, string>; ca: string; clientToken: string }> {
  const dir = mkdtempSync(join(tmpdir(), "understudy-bench-tls-"));
  dirs.push(dir);
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + 24 * 3600_000);
  const ca = await createCa("bench CA", notBefore, notAfter);
  const serving = await issueServing(ca, {
    commonName: "bench",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    notBefore,
    notAfter,
  });
  const clientToken = "bench-client-token-0123456789abcdef";
  const files = { "tls.crt": serving.cert, "tls.key": serving.key, "ca.crt": ca.cert };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  writeFileSync(join(dir, "clients.json"), JSON.stringify({ bench: tokenDigest(clientToken) }));
  return {
    env: {
      UNDERSTUDY_TLS_MODE: "required",
      UNDERSTUDY_TLS_CERT_FILE: join(dir, "tls.crt"),
      UNDERSTUDY_TLS_KEY_FILE: join(dir, "tls.key"),
      UNDERSTUDY_TLS_CA_FILE: join(dir, "ca.crt"),
    },
    ca: ca.cert,
    clientToken,
  };
}

interface Servers {
  addresses: string[];
  /** Each server's /metrics port (plain HTTP whatever the data port speaks). */
  metrics: string[];
}

async function startServers(count: number, tlsEnv: Record<string, string> = {}): Promise<Servers> {
  const zones = ["zone-a", "zone-b", "zone-c"];
  const addresses = await Promise.all(
    Array.from({ length: count }, async () => `127.0.0.1:${await freePort()}`),
  );
  const metrics = await Promise.all(addresses.map(async () => `127.0.0.1:${await freePort()}`));
  const list = addresses.map((a, i) => `${zones[i % 3]}=${a}`).join(",");
  await Promise.all(
    addresses.map((address, i) => {
      const dir = mkdtempSync(join(tmpdir(), "understudy-bench-"));
      dirs.push(dir);
      return spawnRole("server", {
        UNDERSTUDY_LISTEN: address,
        UNDERSTUDY_DATA_DIR: dir,
        UNDERSTUDY_ZONE: zones[i % 3]!,
        ...(count > 1 ? { UNDERSTUDY_SERVERS: list } : {}),
        UNDERSTUDY_ANTI_ENTROPY_INTERVAL_MS: "0",
        UNDERSTUDY_METRICS_LISTEN: metrics[i]!,
        ...tlsEnv,
      });
    }),
  );
  return { addresses, metrics };
}

interface Result {
  name: string;
  perSecond: number;
  p50: number;
  p99: number;
}

/** CLIENTS concurrent loops sending WRITES requests in total; every one must be acknowledged. */
async function load(name: string, send: (i: number) => Promise<Response>): Promise<Result> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      for (let i = next++; i < WRITES; i = next++) {
        const t = performance.now();
        const res = await send(i);
        const body = await res.text();
        if (res.status !== 200) throw new Error(`${name}: write ${i} answered ${res.status} ${body}`);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return { name, perSecond: WRITES / seconds, p50: at(0.5), p99: at(0.99) };
}

/** Records and transactions the server has committed so far. */
async function commits(address: string): Promise<{ records: number; transactions: number }> {
  const text = await (await fetch(`http://${address}/metrics`)).text();
  const read = (metric: string) =>
    Number(
      text
        .split("\n")
        .find((l) => l.startsWith(`${metric} `))
        ?.split(" ")[1],
    );
  return {
    records: read("understudy_server_commit_records_sum"),
    transactions: read("understudy_server_commit_records_count"),
  };
}

/** Runs a scenario and reports, besides its load figures, records per transaction on `address`. */
async function measured(address: string, name: string, send: (i: number) => Promise<Response>) {
  const before = await commits(address);
  const result = await load(name, send);
  const after = await commits(address);
  return { ...result, batch: (after.records - before.records) / (after.transactions - before.transactions) };
}

const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };

async function direct(): Promise<Result & { batch: number }> {
  const servers = await startServers(1);
  const address = servers.addresses[0]!;
  const url = `http://${address}`;
  await fetch(`${url}/v1/fence`, {
    method: "POST",
    headers: auth,
    body: JSON.stringify({ epoch: 1, head: "bench" }),
  });
  let n = 0;
  const apply = (key: string) =>
    fetch(`${url}/v1/apply`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({
        epoch: 1,
        head: "bench",
        records: [{ key, partition: partitionOfKey(key, 64), epoch: 1, n: ++n, version: 1, value: VALUE }],
      }),
    });
  await load("warm-up", (i) => apply(`warm-${i}`));
  return measured(servers.metrics[0]!, "one server, direct", (i) => apply(`direct-${i}`));
}

/**
 * Three servers and a head; `secure`: TLS required on every hop (client to head, head to servers)
 * and the head requiring a client token, as spec.tls.mode Required and spec.authentication do.
 */
async function throughHead(secure: boolean): Promise<(Result & { batch: number })[]> {
  const security = secure ? await securityFiles() : undefined;
  const { addresses, metrics } = await startServers(3, security?.env);
  const port = await freePort();
  await spawnRole("head", {
    UNDERSTUDY_LISTEN: `127.0.0.1:${port}`,
    UNDERSTUDY_SERVERS: addresses.map((a, i) => `${["zone-a", "zone-b", "zone-c"][i]}=${a}`).join(","),
    UNDERSTUDY_EPOCH: "1",
    ...security?.env,
    ...(security
      ? { UNDERSTUDY_CLIENT_TOKENS_FILE: join(dirname(security.env.UNDERSTUDY_TLS_CA_FILE!), "clients.json") }
      : {}),
  });
  const agent = security ? new Agent({ connect: { ca: security.ca } }) : undefined;
  const put = (key: string) =>
    fetch(`${security ? "https" : "http"}://127.0.0.1:${port}/v1/op`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(security ? { authorization: `Bearer ${security.clientToken}` } : {}),
      },
      body: JSON.stringify({ op: "put", key, value: VALUE }),
      ...(agent ? { dispatcher: agent } : {}),
    } as RequestInit);
  const label = secure ? "TLS + auth" : "no TLS, no auth";
  await load("warm-up", (i) => put(`warm-${i}`));
  const fresh = await measured(metrics[0]!, `head, ${label}, new keys (read + write)`, (i) =>
    put(`new-${i}`),
  );
  // Keys the head has written before: their version is cached, so the write needs no read.
  const known = await measured(metrics[0]!, `head, ${label}, rewrites (version cached)`, (i) =>
    put(`new-${i}`),
  );
  await agent?.close();
  return [fresh, known];
}

function stopAll(): void {
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

try {
  console.log(
    `machine: ${cpus().length} cores (${cpus()[0]?.model.trim()}), node ${process.version}; ` +
      `${CLIENTS} concurrent clients, ${WRITES} writes per scenario, ${VALUE.length}-byte values; ` +
      `durability: node:sqlite WAL, synchronous=FULL, group commit (window 0: next event-loop turn)`,
  );
  const base = await direct();
  stopAll();
  children.length = 0;
  dirs.length = 0;
  const plain = await throughHead(false);
  stopAll();
  children.length = 0;
  dirs.length = 0;
  const secure = await throughHead(true);
  const head = [...plain, ...secure];
  const rows = [base, ...head];
  console.log("");
  console.log(
    "| scenario | acknowledged writes/s | p50 ms | p99 ms | records per commit (server 1) | throughput vs direct |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${r.perSecond.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.batch.toFixed(1)} | ${(r.perSecond / base.perSecond).toFixed(2)}x |`,
    );
  }
  for (const r of head) {
    console.log(
      `head overhead (${r.name}): ${(base.perSecond / r.perSecond).toFixed(2)}x less throughput, ` +
        `${(r.p50 / base.p50).toFixed(2)}x p50 latency`,
    );
  }
  console.log("");
  plain.forEach((off, i) => {
    const on = secure[i]!;
    console.log(
      `TLS + auth vs off (${off.name.replace(/^head, no TLS, no auth, /, "")}): ` +
        `${(on.perSecond / off.perSecond).toFixed(3)} of the writes/s ` +
        `(${((1 - on.perSecond / off.perSecond) * 100).toFixed(1)} % cost), p50 ${on.p50.toFixed(2)} vs ${off.p50.toFixed(2)} ms`,
    );
  });
} finally {
  stopAll();
}
