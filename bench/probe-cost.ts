// CPU the operator's head prober spends per probe, this tree's against a baseline checkout's, in
// interleaved rounds: each round runs a prober process of each side against the same stand-in
// heads (one HTTP listener per head, in a process of their own, answering /healthz as the head),
// and counts the prober process's CPU seconds over the probes the heads answered.
//
//   npx node bench/probe-cost.ts --baseline <checkout> [--heads 1000] [--period-ms 1000]
//     [--seconds 20] [--rounds 3]
//
// The baseline is any checkout of the repository (`git worktree add /tmp/base <commit>`); its
// node_modules may be a link to this one's.
import { fork, type ChildProcess } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { percentile, writeResults } from "./chart.ts";

const { values } = parseArgs({
  options: {
    baseline: { type: "string" },
    heads: { type: "string", default: "1000" },
    "period-ms": { type: "string", default: "1000" },
    seconds: { type: "string", default: "20" },
    rounds: { type: "string", default: "3" },
    // Internal: the role of a child process.
    role: { type: "string" },
    root: { type: "string" },
    ports: { type: "string" },
  },
});
const HEADS = Number(values.heads);
const PERIOD_MS = Number(values["period-ms"]);
const WINDOW_MS = Number(values.seconds) * 1000;
const WARMUP_MS = 3000;
const here = resolve(import.meta.dirname, "..");

if (values.role === "heads") await runHeads();
else if (values.role === "prober") await runProber(values.root!, values.ports!.split(",").map(Number));
else await main();

/** Stand-in heads: HEADS listeners, each naming its own pod; answers the parent's "count" with hits. */
async function runHeads(): Promise<void> {
  let hits = 0;
  const servers: Server[] = [];
  for (let i = 0; i < HEADS; i++) {
    const server = createServer((_req, res) => {
      hits++;
      res.setHeader("understudy-identity", `service=uid-${i}; role=head; pod=kv${i}-head-1; epoch=1`);
      res.setHeader("content-type", "application/json");
      res.end('{"status":"ok"}');
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    servers.push(server);
  }
  process.on("message", (m) => {
    if (m === "count") process.send!({ hits });
  });
  process.send!({ ports: servers.map((s) => (s.address() as AddressInfo).port) });
}

/** One prober of the checkout at `root`, probing every head until killed; reports its CPU on "cpu". */
async function runProber(root: string, ports: number[]): Promise<void> {
  const { HeadProber } = (await import(
    join(root, "src/controllers/storage-service/prober.ts")
  )) as typeof import("../src/controllers/storage-service/prober.ts");
  const prober = new HeadProber();
  prober.update(
    ports.map((port, i) => ({
      key: `bench/kv${i}`,
      serviceUid: `uid-${i}`,
      pod: `kv${i}-head-1`,
      epoch: 1,
      ip: "127.0.0.1",
      port,
      tls: false,
      periodMs: PERIOD_MS,
      timeoutMs: 500,
      failureThreshold: 3,
    })),
  );
  process.on("message", (m) => {
    if (m === "cpu") {
      const { user, system } = process.cpuUsage();
      process.send!({ cpuSeconds: (user + system) / 1e6 });
    }
  });
  process.send!({ started: true });
  setInterval(() => {}, 1 << 30); // keep running until killed
}

function ask<T>(child: ChildProcess, message: string): Promise<T> {
  return new Promise((done) => {
    child.once("message", (m) => done(m as T));
    child.send(message);
  });
}

function started<T>(child: ChildProcess): Promise<T> {
  return new Promise((done, fail) => {
    child.once("message", (m) => done(m as T));
    child.once("exit", (code) => fail(new Error(`child exited with ${code}`)));
  });
}

async function measure(root: string, heads: ChildProcess, ports: number[]): Promise<number> {
  const prober = fork(
    import.meta.filename,
    ["--role", "prober", "--root", root, "--ports", ports.join(","), "--period-ms", String(PERIOD_MS)],
    {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    },
  );
  await started(prober);
  await sleep(WARMUP_MS);
  const cpu0 = (await ask<{ cpuSeconds: number }>(prober, "cpu")).cpuSeconds;
  const hits0 = (await ask<{ hits: number }>(heads, "count")).hits;
  await sleep(WINDOW_MS);
  const cpu1 = (await ask<{ cpuSeconds: number }>(prober, "cpu")).cpuSeconds;
  const hits1 = (await ask<{ hits: number }>(heads, "count")).hits;
  prober.kill("SIGKILL");
  await new Promise((done) => prober.once("exit", done));
  return ((cpu1 - cpu0) / (hits1 - hits0)) * 1e6; // µs per probe
}

async function main(): Promise<void> {
  if (!values.baseline) throw new Error("--baseline <checkout> is required");
  const baseline = resolve(values.baseline);
  const heads = fork(import.meta.filename, ["--role", "heads", "--heads", String(HEADS)], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const { ports } = await started<{ ports: number[] }>(heads);
  const rounds: { baselineUs: number; currentUs: number; ratio: number }[] = [];
  for (let r = 0; r < Number(values.rounds); r++) {
    // Rotating order, so neither side always runs on a warmer machine.
    const order = r % 2 === 0 ? ([baseline, here] as const) : ([here, baseline] as const);
    const us = new Map<string, number>();
    for (const root of order) us.set(root, await measure(root, heads, ports));
    const round = {
      baselineUs: us.get(baseline)!,
      currentUs: us.get(here)!,
      ratio: us.get(here)! / us.get(baseline)!,
    };
    rounds.push(round);
    console.log(
      `round ${r + 1}: baseline ${round.baselineUs.toFixed(1)} µs/probe, this tree ${round.currentUs.toFixed(1)} µs/probe (${round.ratio.toFixed(2)}x)`,
    );
  }
  heads.kill("SIGKILL");
  const median = (xs: number[]) => percentile(xs, 50);
  const figures = {
    heads: HEADS,
    periodMs: PERIOD_MS,
    windowSeconds: WINDOW_MS / 1000,
    rounds,
    medianBaselineUs: median(rounds.map((r) => r.baselineUs)),
    medianCurrentUs: median(rounds.map((r) => r.currentUs)),
    medianRatio: median(rounds.map((r) => r.ratio)),
    // What probing every head once per period costs one operator, in cores.
    coresAtThisRate: {
      baseline: (median(rounds.map((r) => r.baselineUs)) * HEADS * (1000 / PERIOD_MS)) / 1e6,
      current: (median(rounds.map((r) => r.currentUs)) * HEADS * (1000 / PERIOD_MS)) / 1e6,
    },
  };
  console.log(JSON.stringify(figures, null, 2));
  const path = writeResults({
    benchmark: "probe-cost",
    command: `npx node bench/probe-cost.ts ${process.argv.slice(2).join(" ")}`,
    figures,
    charts: [
      {
        name: "probe-cost",
        title: `Head prober CPU per probe, ${HEADS} heads every ${PERIOD_MS} ms`,
        unit: "µs",
        bars: [
          { label: "baseline", value: figures.medianBaselineUs },
          { label: "this tree", value: figures.medianCurrentUs },
        ],
      },
    ],
  });
  console.log(`results: ${path}`);
}
