// How fast a new head process starts: from spawn to listening (its "listening" log line, as this
// process reads it) and from spawn to ready (GET /readyz answers 200: it has fenced its epoch on a
// write quorum of every partition), against three real server processes. Ways of running the same
// code side by side, interleaved (each sample of every way, in an order that rotates, before the
// next), so the machine's changing load falls on all of them alike:
//   - the TypeScript sources (`node src/dataplane/main.ts head`), compile cache off;
//   - the built JavaScript (`node dist/src/dataplane/main.js head`, what the image runs: it loads
//     the bundle in dist/dataplane/), cache off;
//   - the built JavaScript with Node's module compile cache, warmed by one start (as in the image);
//   - the sources with the compile cache;
//   - as the floor under them all, Node starting and exiting with nothing to run;
//   - with --baseline <checkout>: that checkout's built JavaScript with its own compile cache (built
//     there first), to compare a change with the code before it in the same run.
// Each head is stopped (SIGTERM, waited for) before the next starts, at the next epoch. The servers'
// commit histograms are read before and after every start, so a start during which a server took
// more than 50 ms to commit a transaction (its disk; a fence waits for one) is counted as such. Builds
// dist/ first (npm run build). Usage:
//   npx node bench/head-start.ts [--heads 30] [--profile-dir <dir>] [--baseline <checkout>]
// Results: bench/results/head-start.json.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  DATAPLANE_SOURCE_ENTRY,
  planServers,
  serverList,
  spawnHead,
  spawnServer,
  type ChildServer,
} from "../test/unit/dataplane/harness.ts";
import { freePort, metricValue } from "../test/support/operator.ts";
import { percentile, writeResults } from "./chart.ts";

const { values } = parseArgs({
  options: {
    heads: { type: "string", default: "30" },
    /** Write a CPU profile of every head (Node's --cpu-prof) into this folder. */
    "profile-dir": { type: "string" },
    /** Another checkout of this repository (its node_modules installed) to start heads from too. */
    baseline: { type: "string" },
  },
});
const HEADS = Number(values.heads);
const PROFILE_DIR = values["profile-dir"];
const BASELINE = values.baseline === undefined ? undefined : resolve(values.baseline);
const REPO = resolve(import.meta.dirname, "..");
const BUILT_ENTRY = join(REPO, "dist/src/dataplane/main.js");
const NODE = join(REPO, "node_modules/.bin/node");

interface Way {
  name: string;
  /** The script; undefined: Node alone (`node -e ""`, spawn to exit), the floor under every way. */
  entry: string | undefined;
  env: Record<string, string>;
  listening: number[];
  ready: number[];
  /** Per start: whether a server took over 50 ms to commit a transaction meanwhile. */
  slowCommit: boolean[];
}

/** A way with no samples yet. */
function newWay(name: string, entry: string | undefined, env: Record<string, string>): Way {
  return { name, entry, env, listening: [], ready: [], slowCommit: [] };
}

/** Transactions the servers took over 50 ms to commit, so far, from their /metrics. */
async function slowCommits(metricsPorts: readonly number[]): Promise<number> {
  let slow = 0;
  for (const port of metricsPorts) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const all = metricValue(text, "understudy_server_commit_seconds_count") ?? 0;
    slow += all - (metricValue(text, "understudy_server_commit_seconds_bucket", { le: "0.05" }) ?? 0);
  }
  return slow;
}

/** Polls GET /readyz until 200; resolves with the time it did. */
async function readyAt(url: string): Promise<number> {
  for (const deadline = performance.now() + 30_000; performance.now() < deadline;) {
    const res = await fetch(`${url}/readyz`).catch(() => undefined);
    await res?.text();
    if (res?.status === 200) return performance.now();
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`${url} not ready within 30 s`);
}

const children: ChildServer[] = [];
const dirs: string[] = [];
try {
  console.log("building dist/ (npm run build)");
  execFileSync("npm", ["run", "--silent", "build"], { cwd: REPO, stdio: "inherit" });
  if (BASELINE !== undefined) {
    console.log(`building ${BASELINE}/dist/ (npm run build)`);
    execFileSync("npm", ["run", "--silent", "build"], { cwd: BASELINE, stdio: "inherit" });
  }
  const cache = mkdtempSync(join(tmpdir(), "understudy-compile-cache-"));
  dirs.push(cache);
  const off = { NODE_DISABLE_COMPILE_CACHE: "1" };
  const on = { NODE_COMPILE_CACHE: cache };
  const ways: Way[] = [
    newWay("Node alone (spawn to exit)", undefined, off),
    newWay("TypeScript sources", DATAPLANE_SOURCE_ENTRY, off),
    newWay("built JavaScript (bundled)", BUILT_ENTRY, off),
    newWay("built JavaScript (bundled) + compile cache", BUILT_ENTRY, on),
    newWay("TypeScript sources + compile cache", DATAPLANE_SOURCE_ENTRY, on),
  ];
  if (BASELINE !== undefined) {
    const baselineCache = mkdtempSync(join(tmpdir(), "understudy-compile-cache-"));
    dirs.push(baselineCache);
    ways.push(
      newWay(
        `baseline ${BASELINE}: built JavaScript + compile cache`,
        join(BASELINE, "dist/src/dataplane/main.js"),
        { NODE_COMPILE_CACHE: baselineCache },
      ),
    );
  }
  const slots = await planServers(3);
  dirs.push(...slots.map((s) => s.dataDir));
  const metricsPorts = await Promise.all(slots.map(() => freePort()));
  children.push(
    ...(await Promise.all(
      slots.map((slot, i) =>
        spawnServer(slot, slots, { UNDERSTUDY_METRICS_LISTEN: `127.0.0.1:${metricsPorts[i]}` }),
      ),
    )),
  );
  const servers = serverList(slots);
  const loadBefore = loadavg();
  let epoch = 0;
  /** One head of `way` from spawn to ready, then stopped; returns its two intervals. */
  const startOne = async (way: Way) => {
    epoch += 1;
    const spawned = performance.now();
    if (way.entry === undefined) {
      await new Promise((exited) => spawn(NODE, ["-e", ""]).once("exit", exited));
      const exited = performance.now() - spawned;
      return { listening: exited, ready: exited };
    }
    const profile = PROFILE_DIR === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`];
    const head = await spawnHead(servers, epoch, way.env, { entry: way.entry, nodeArgs: profile });
    const listening = performance.now() - spawned;
    const ready = (await readyAt(head.url)) - spawned;
    head.process.kill("SIGTERM");
    await head.exited;
    return { listening, ready };
  };
  // Untimed: fills the compile cache and the page cache, as a node that ran the image before would.
  for (const way of ways) await startOne(way);
  for (let i = 0; i < HEADS; i++) {
    const order = ways.map((_, k) => ways[(k + i) % ways.length]!);
    for (const way of order) {
      const slowBefore = await slowCommits(metricsPorts);
      const { listening, ready } = await startOne(way);
      way.listening.push(listening);
      way.ready.push(ready);
      way.slowCommit.push((await slowCommits(metricsPorts)) > slowBefore);
    }
    if ((i + 1) % 10 === 0) console.log(`${i + 1}/${HEADS} heads of each way`);
  }
  const loadAfter = loadavg();
  const conditions =
    `${cpus().length} cores (${cpus()[0]?.model.trim()}), node ${process.version}; ${HEADS} heads per way, ` +
    `interleaved; load average (1 min) ${loadBefore[0]!.toFixed(1)} before, ${loadAfter[0]!.toFixed(1)} after`;
  console.log(conditions);
  console.log("");
  console.log(
    "| way | spawn → listening p50 ms | p99 | spawn → ready (fenced) p50 ms | p99 | max | " +
      "listening → ready p50 / p99 ms | ready over 200 ms: all / with a server commit over 50 ms |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  const table = ways.map((w) => {
    const fence = w.ready.map((r, i) => r - w.listening[i]!);
    const slow = w.ready.map((r, i) => ({ over: r > 200, commit: w.slowCommit[i] === true }));
    return {
      way: w.name,
      listeningP50: percentile(w.listening, 50),
      listeningP99: percentile(w.listening, 99),
      readyP50: percentile(w.ready, 50),
      readyP99: percentile(w.ready, 99),
      readyMax: Math.max(...w.ready),
      fenceP50: percentile(fence, 50),
      fenceP99: percentile(fence, 99),
      readyOver200: slow.filter((x) => x.over).length,
      readyOver200WithSlowCommit: slow.filter((x) => x.over && x.commit).length,
    };
  });
  for (const r of table) {
    console.log(
      `| ${r.way} | ${r.listeningP50.toFixed(0)} | ${r.listeningP99.toFixed(0)} | ${r.readyP50.toFixed(0)} | ` +
        `${r.readyP99.toFixed(0)} | ${r.readyMax.toFixed(0)} | ${r.fenceP50.toFixed(0)} / ${r.fenceP99.toFixed(0)} | ` +
        `${r.readyOver200} / ${r.readyOver200WithSlowCommit} |`,
    );
  }
  const path = writeResults({
    benchmark: "head-start",
    command: `npx node bench/head-start.ts ${process.argv.slice(2).join(" ")}`.trim(),
    figures: {
      conditions,
      table,
      samples: Object.fromEntries(
        ways.map((w) => [w.name, { listening: w.listening, ready: w.ready, slowCommit: w.slowCommit }]),
      ),
    },
    charts: [],
  });
  console.log(`results: ${path}`);
} finally {
  for (const c of children) if (c.process.exitCode === null) c.process.kill("SIGTERM");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
