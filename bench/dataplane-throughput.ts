// Acknowledged writes/s and latency through the head (R=3, W=2, three server processes) side by
// side with writes sent straight to one server process with the same durability (node:sqlite WAL,
// synchronous=FULL, group commit), and the head with TLS on every hop and client authentication on
// beside the same head with both off. Every process is real; the load generator runs here.
//
// The three set-ups run at once and are measured in rounds: each round measures every set-up back
// to back, in an order that rotates from round to round, so a change in the machine's load (it is
// shared) hits all of them alike; ratios are taken within a round and their median reported.
// Usage:
//   npx node bench/dataplane-throughput.ts [--clients 32] [--writes 2000] [--rounds 7] [--value-bytes 100]
//     [--profile-dir <dir>]
// (--writes: per scenario and round; --profile-dir: a CPU profile of each head, written when it exits.) Results: bench/results/dataplane-throughput.json.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Agent } from "undici";
import { tokenDigest } from "../src/dataplane/client-auth.ts";
import { partitionOfKey } from "../src/dataplane/placement.ts";
import { createCa, issueServing } from "../src/pki/certificates.ts";
import {
  eventually,
  freePorts,
  planServers,
  serverList,
  spawnHead,
  spawnServer,
  TOKEN,
  type ChildServer,
} from "../test/unit/dataplane/harness.ts";
import { medianInterval, percentile, writeResults } from "./chart.ts";

const { values } = parseArgs({
  options: {
    clients: { type: "string", default: "32" },
    writes: { type: "string", default: "2000" },
    rounds: { type: "string", default: "7" },
    "value-bytes": { type: "string", default: "100" },
    /** Write a CPU profile of each head (Node's --cpu-prof) into this folder. */
    "profile-dir": { type: "string" },
  },
});
const CLIENTS = Number(values.clients);
const WRITES = Number(values.writes);
const ROUNDS = Number(values.rounds);
const VALUE = "x".repeat(Number(values["value-bytes"]));
const PROFILE_DIR = values["profile-dir"];

/** What a run started, to stop and remove at the end. */
interface Started {
  children: ChildServer[];
  dirs: string[];
  agents: Agent[];
}

/** TLS files (a CA of this run, a certificate for 127.0.0.1) and a client token's digest file. */
async function securityFiles(started: Started) {
  const dir = mkdtempSync(join(tmpdir(), "understudy-bench-tls-"));
  started.dirs.push(dir);
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
    clientTokensFile: join(dir, "clients.json"),
    ca: ca.cert,
    clientToken,
  };
}

/** Server processes, one per zone; the first also serves /metrics (plain HTTP) for the batch figure. */
async function startServers(started: Started, count: number, env: Record<string, string> = {}) {
  const slots = await planServers(count);
  started.dirs.push(...slots.map((s) => s.dataDir));
  const [metricsPort] = await freePorts(1);
  const metrics = `127.0.0.1:${metricsPort}`;
  const children = await Promise.all(
    slots.map((slot, i) =>
      spawnServer(slot, slots, {
        UNDERSTUDY_ANTI_ENTROPY_INTERVAL_MS: "0",
        ...(i === 0 ? { UNDERSTUDY_METRICS_LISTEN: metrics } : {}),
        ...env,
      }),
    ),
  );
  started.children.push(...children);
  return { slots, metrics, pids: children.map((c) => c.process.pid!) };
}

interface Sample {
  perSecond: number;
  p50: number;
  p99: number;
  /** Records per transaction committed by the set-up's first server during the sample. */
  batch: number;
  /**
   * CPU time (user + system) per acknowledged write, microseconds: of the head, of all the set-up's
   * servers together, and of this load generator. Unlike writes/s it hardly depends on how busy
   * the rest of the machine is, so it shows what TLS and authentication cost where.
   */
  cpuMicros: { head: number; servers: number; client: number };
}

const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }));

/** CPU time a process has used so far, microseconds (utime + stime of /proc/<pid>/stat). */
function cpuMicrosOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS) * 1e6;
}

function cpuNow(processes: Setup["processes"]) {
  const { user, system } = process.cpuUsage();
  return {
    head: processes.head === undefined ? 0 : cpuMicrosOf(processes.head),
    servers: processes.servers.reduce((sum, pid) => sum + cpuMicrosOf(pid), 0),
    client: user + system,
  };
}

/** CLIENTS concurrent loops sending `count` requests in total; every one must be acknowledged. */
async function load(name: string, count: number, send: (i: number) => Promise<Response>) {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      for (let i = next++; i < count; i = next++) {
        const t = performance.now();
        const res = await send(i);
        const body = await res.text();
        if (res.status !== 200) throw new Error(`${name}: write ${i} answered ${res.status} ${body}`);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { perSecond: count / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

/** Records and transactions the server has committed so far. */
async function commits(metricsAddress: string): Promise<{ records: number; transactions: number }> {
  const text = await (await fetch(`http://${metricsAddress}/metrics`)).text();
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

/** One sample of `count` writes, with the first server's records per commit over it. */
async function sample(setup: Setup, name: string, send: (i: number) => Promise<Response>): Promise<Sample> {
  const before = await commits(setup.metrics);
  const cpuBefore = cpuNow(setup.processes);
  const result = await load(name, WRITES, send);
  const cpuAfter = cpuNow(setup.processes);
  const after = await commits(setup.metrics);
  const perWrite = (role: keyof Sample["cpuMicros"]) => (cpuAfter[role] - cpuBefore[role]) / WRITES;
  return {
    ...result,
    batch: (after.records - before.records) / (after.transactions - before.transactions),
    cpuMicros: { head: perWrite("head"), servers: perWrite("servers"), client: perWrite("client") },
  };
}

/** A set-up measured once per round: its scenarios run back to back, in this order. */
interface Setup {
  name: string;
  /** Scenario name -> how to write key `i` of round `round`. */
  scenarios: { name: string; send: (round: number, i: number) => Promise<Response> }[];
  /** Writes that only open connections (not measured) before the set-up's turn. */
  warmUp: (round: number, i: number) => Promise<Response>;
  metrics: string;
  /** Process ids of the set-up's head (if any) and servers. */
  processes: { head?: number; servers: number[] };
}

const json = { "content-type": "application/json" };

async function directSetup(started: Started): Promise<Setup> {
  const { slots, metrics, pids } = await startServers(started, 1, { UNDERSTUDY_REPLICATION_FACTOR: "1" });
  const url = `http://${slots[0]!.address}`;
  const agent = new Agent();
  started.agents.push(agent);
  const headers = { ...json, authorization: `Bearer ${TOKEN}` };
  await fetch(`${url}/v1/fence`, {
    method: "POST",
    headers,
    body: JSON.stringify({ epoch: 1, head: "bench" }),
  });
  let n = 0;
  const apply = (key: string) =>
    fetch(`${url}/v1/apply`, {
      method: "POST",
      headers,
      body: JSON.stringify({
        epoch: 1,
        head: "bench",
        records: [{ key, partition: partitionOfKey(key, 64), epoch: 1, n: ++n, version: 1, value: VALUE }],
      }),
      dispatcher: agent,
    } as RequestInit);
  return {
    name: "one server, direct",
    scenarios: [{ name: "one server, direct", send: (round, i) => apply(`direct-${round}-${i}`) }],
    warmUp: (round, i) => apply(`warm-${round}-${i}`),
    metrics,
    processes: { servers: pids },
  };
}

/**
 * Three servers and a head; `secure`: TLS required on every hop (client to head, head to servers)
 * and the head requiring a client token, as spec.tls.mode Required and spec.authentication do.
 */
async function headSetup(started: Started, secure: boolean): Promise<Setup> {
  const security = secure ? await securityFiles(started) : undefined;
  const { slots, metrics, pids } = await startServers(started, 3, security?.env);
  const head = await spawnHead(
    serverList(slots),
    1,
    {
      ...security?.env,
      ...(security ? { UNDERSTUDY_CLIENT_TOKENS_FILE: security.clientTokensFile } : {}),
    },
    PROFILE_DIR === undefined
      ? {}
      : {
          nodeArgs: [
            "--cpu-prof",
            `--cpu-prof-dir=${PROFILE_DIR}`,
            `--cpu-prof-name=head-${secure ? "tls-auth" : "plain"}.cpuprofile`,
          ],
        },
  );
  started.children.push(head);
  const agent = new Agent(security ? { connect: { ca: security.ca } } : {});
  started.agents.push(agent);
  await eventually(async () => {
    const res = await fetch(`${head.url}/readyz`, { dispatcher: agent } as RequestInit);
    await res.text();
    return res.status === 200;
  }, "the head fenced its epoch (/readyz 200)");
  const headers = { ...json, ...(security ? { authorization: `Bearer ${security.clientToken}` } : {}) };
  const put = (key: string) =>
    fetch(`${head.url}/v1/op`, {
      method: "POST",
      headers,
      body: JSON.stringify({ op: "put", key, value: VALUE }),
      dispatcher: agent,
    } as RequestInit);
  const label = secure ? "TLS + auth" : "no TLS, no auth";
  return {
    name: `head, ${label}`,
    scenarios: [
      { name: `head, ${label}, new keys`, send: (round, i) => put(`new-${round}-${i}`) },
      // The keys the round just wrote, again.
      { name: `head, ${label}, rewrites`, send: (round, i) => put(`new-${round}-${i}`) },
    ],
    warmUp: (round, i) => put(`warm-${round}-${i}`),
    metrics,
    processes: { head: head.process.pid!, servers: pids },
  };
}

function stop(started: Started): void {
  for (const c of started.children) if (c.process.exitCode === null) c.process.kill("SIGTERM");
  for (const a of started.agents) void a.close();
  for (const d of started.dirs) rmSync(d, { recursive: true, force: true });
}

const spread = (values: number[], digits: number) =>
  `${percentile(values, 50).toFixed(digits)} (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`;

const started: Started = { children: [], dirs: [], agents: [] };
try {
  const conditions =
    `${cpus().length} cores (${cpus()[0]?.model.trim()}), node ${process.version}; ${CLIENTS} concurrent ` +
    `clients, ${ROUNDS} rounds of ${WRITES} writes per scenario, ${VALUE.length}-byte values; durability: ` +
    `node:sqlite WAL, synchronous=FULL, group commit (window 0: next event-loop turn)`;
  console.log(conditions);
  const setups = [
    await directSetup(started),
    await headSetup(started, false),
    await headSetup(started, true),
  ];
  const samples = new Map<string, Sample[]>(
    setups.flatMap((s) => s.scenarios.map((sc) => [sc.name, [] as Sample[]])),
  );
  for (let round = 0; round < ROUNDS; round++) {
    const order = setups.map((_, i) => setups[(i + round) % setups.length]!);
    const line: string[] = [];
    for (const setup of order) {
      await load("warm-up", 2 * CLIENTS, (i) => setup.warmUp(round, i));
      for (const scenario of setup.scenarios) {
        const s = await sample(setup, scenario.name, (i) => scenario.send(round, i));
        samples.get(scenario.name)!.push(s);
        line.push(`${scenario.name} ${s.perSecond.toFixed(0)}/s`);
      }
    }
    console.log(`round ${round + 1}/${ROUNDS}: ${line.join(", ")}`);
  }

  const direct = samples.get(setups[0]!.scenarios[0]!.name)!;
  /** Per-round ratio of writes/s, scenario a over scenario b. */
  const ratios = (a: Sample[], b: Sample[]) => a.map((x, round) => x.perSecond / b[round]!.perSecond);
  console.log("");
  console.log(
    "| scenario | acknowledged writes/s, median (min–max) | p50 ms | p99 ms | records per commit (server 1) | vs direct, median of rounds (min–max) |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
  const table = [...samples].map(([name, runs]) => {
    const row = {
      name,
      perSecond: runs.map((r) => r.perSecond),
      p50: percentile(
        runs.map((r) => r.p50),
        50,
      ),
      p99: percentile(
        runs.map((r) => r.p99),
        50,
      ),
      batch: percentile(
        runs.map((r) => r.batch),
        50,
      ),
      vsDirect: ratios(runs, direct),
    };
    console.log(
      `| ${name} | ${spread(row.perSecond, 0)} | ${row.p50.toFixed(1)} | ${row.p99.toFixed(1)} | ` +
        `${row.batch.toFixed(1)} | ${spread(row.vsDirect, 2)}x |`,
    );
    return row;
  });
  console.log("");
  console.log("| scenario | CPU µs per acknowledged write: head | servers (all) | load generator | total |");
  console.log("| --- | ---: | ---: | ---: | ---: |");
  const median = (values: number[]) => percentile(values, 50);
  const cpu = [...samples].map(([name, runs]) => {
    const of = (role: keyof Sample["cpuMicros"]) => median(runs.map((r) => r.cpuMicros[role]));
    const row = { name, head: of("head"), servers: of("servers"), client: of("client") };
    const total = median(runs.map((r) => r.cpuMicros.head + r.cpuMicros.servers + r.cpuMicros.client));
    console.log(
      `| ${name} | ${row.head.toFixed(0)} | ${row.servers.toFixed(0)} | ${row.client.toFixed(0)} | ${total.toFixed(0)} |`,
    );
    return { ...row, total };
  });
  console.log("");
  const [plain, secure] = [setups[1]!, setups[2]!];
  const security = plain.scenarios.map((off, i) => {
    const on = secure.scenarios[i]!;
    const perRound = ratios(samples.get(on.name)!, samples.get(off.name)!);
    const kind = off.name.replace(/^head, no TLS, no auth, /, "");
    const cost = (ratio: number) => (1 - ratio) * 100;
    const costMedian = cost(median(perRound));
    const interval = medianInterval(perRound);
    console.log(
      `TLS + auth vs off (${kind}): ${spread(perRound, 3)} of the writes/s per round, ` +
        `cost ${costMedian.toFixed(1)} % (median of rounds; 95 % bootstrap interval ` +
        `${cost(interval.high).toFixed(1)}–${cost(interval.low).toFixed(1)} %)`,
    );
    return {
      scenario: kind,
      perRound,
      costPercent: {
        median: costMedian,
        interval95: [cost(interval.high), cost(interval.low)],
      },
    };
  });
  const path = writeResults({
    benchmark: "dataplane-throughput",
    command: `npx node bench/dataplane-throughput.ts ${process.argv.slice(2).join(" ")}`.trim(),
    figures: {
      conditions,
      rounds: Object.fromEntries(samples),
      table,
      cpuMicrosPerWrite: cpu,
      securityOnOverOff: security,
    },
    charts: [],
  });
  console.log(`results: ${path}`);
} finally {
  stop(started);
}
