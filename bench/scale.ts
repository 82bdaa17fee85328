// Scale: many storage services, slots and claims on KWOK nodes, one operator process.
//
//   node test/cluster/with-cluster.ts node bench/scale.ts [--services 1000] [--slots 5000] [--claims 5000]
//        [--probe-period-ms 1000] [--qps 200] [--timeout-min 10]
//
// Measures, side by side with the size that produced them:
// - time to converge: the pool's slots (Leases + placeholder pods Running), the claims Bound, the
//   storage services Ready;
// - the controllers' process CPU seconds and peak resident memory (from /proc/<pid>), its heap and
//   garbage-collection time (from its /metrics); the process runs as the chart runs it, in a memory
//   cgroup with the container's limit (this needs root; --memory-limit none runs it without) and
//   with the chart's Node flags, since Node sizes its heap from that limit;
// - API requests the controllers made, counted exactly by a small HTTP proxy their kubeconfig points
//   at (the API server's own apiserver_request_total cannot tell clients apart), per verb and
//   resource, and per reconcile when the operator's /metrics count reconciles;
// - then a zone outage: every node of zone-a NotReady at once, and the completion of the hundreds
//   of failovers it causes (fault to status.lastFailover.finishedAt), p50 and p99.
// Heads here are not real data-plane processes (thousands would not fit on two cores): one
// process of stand-ins (bench/stand-in-heads.ts) answers the operator's /healthz probes at every
// head pod's IP, and stops answering for the heads of a lost zone, as their machines would.
import type * as k8s from "@kubernetes/client-node";
import { Command, Option } from "commander";
import { readdirSync, readFileSync } from "node:fs";
import { fork, type ChildProcess } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parse as parseYaml } from "yaml";
import { GROUP, MAX_SLOTS_PER_ZONE, STORAGE_SERVICE_PLURAL, VERSION } from "../src/api/index.ts";
import { quantityValue } from "../src/api/quantity.ts";
import { fakeNode } from "../test/cluster/nodes.ts";
import { countingProxy } from "../test/support/counting-proxy.ts";
import { installCrds } from "../test/support/crds.ts";
import {
  deleteNamespace,
  freshNamespace,
  makeNodeNotReady,
  restoreNode,
  testClient,
  testKubeConfig,
} from "../test/support/kube.ts";
import { createMemoryCgroup, type MemoryCgroup } from "../test/support/memory-cgroup.ts";
import {
  metricSum,
  metricValue,
  parseSamples,
  sampleSum,
  samplesMatching,
  startOperator,
} from "../test/support/operator.ts";
import { VolumeProvisioner } from "../test/support/pod-runner.ts";
import {
  claimManifest,
  createClaim,
  createPool,
  deletePool,
  poolManifest,
  testPoolSelector,
  testRunLabel,
} from "../test/support/pools.ts";
import { deleteAllAndWait, ZONES, type ControlPlane } from "../test/e2e/support/stage.ts";
import { percentile, RESULTS_DIR, writeResults, type ChartSpec } from "./chart.ts";
import type { StandInMessage, StandInRequest } from "./stand-in-heads.ts";

const chart = chartOperator();
const opts = new Command("scale")
  .addOption(new Option("--services <n>").default("1000"))
  .addOption(new Option("--slots <n>").default("5000"))
  .addOption(new Option("--claims <n>").default("5000"))
  .addOption(new Option("--probe-period-ms <ms>", "head probe period of every service").default("1000"))
  .addOption(new Option("--qps <n>", "the operator's client QPS (burst 2x)").default("200"))
  .addOption(new Option("--concurrency <n>", "workers per controller").default("8"))
  .addOption(new Option("--timeout-min <m>", "give up a phase after this long").default("10"))
  .addOption(
    new Option(
      "--operator-env <KEY=VALUE...>",
      "extra environment of the operator process (NODE_OPTIONS, for instance)",
    ),
  )
  .addOption(
    new Option(
      "--sources",
      "run the operator from the TypeScript sources instead of dist/ (the image's build)",
    ),
  )
  .addOption(
    new Option(
      "--memory-limit <quantity>",
      "run the operator in a memory cgroup with this limit, as its pod (default: the chart's limit; none: no cgroup)",
    ).default(chart.memoryLimit),
  )
  .addOption(
    new Option(
      "--node-options <flags>",
      "Node's flags for the operator process (default: the chart's operator.nodeOptions; '' for none)",
    ).default(chart.nodeOptions),
  )
  .addOption(new Option("--keep", "leave everything in place afterwards"))
  .addOption(new Option("--cpu-prof <dir>", "write a V8 CPU profile of the operator process into <dir>"))
  .addOption(new Option("--summarize", "only chart the sizes already in bench/results/scale-*.json"))
  .parse()
  .opts<{
    services: string;
    slots: string;
    claims: string;
    probePeriodMs: string;
    qps: string;
    concurrency: string;
    timeoutMin: string;
    operatorEnv?: string[];
    memoryLimit: string;
    nodeOptions: string;
    sources?: boolean;
    keep?: boolean;
    cpuProf?: string;
    summarize?: boolean;
  }>();
const SERVICES = Number(opts.services);
const SLOTS = Number(opts.slots);
const CLAIMS = Number(opts.claims);
const PHASE_TIMEOUT_MS = Number(opts.timeoutMin) * 60_000;
const BENCH_LABEL = "understudy.dev/bench";
const client = testClient("understudy-bench");
const kc = testKubeConfig();
const MEMORY_LIMIT_BYTES = opts.memoryLimit === "none" ? undefined : quantityValue(opts.memoryLimit);
const log = (m: string) => console.log(`[scale ${new Date().toISOString().slice(11, 19)}] ${m}`);

/** One chart across the sizes measured so far: convergence, and the zone outage's completion. */
function summarize(): void {
  type Sized = {
    figures: {
      size: { services: number; slots: number; claims: number };
      phases: Record<string, { seconds: number | null }>;
      failover?: { affected: number; p50Ms: number; p99Ms: number };
    };
  };
  const runs = readdirSync(RESULTS_DIR)
    .filter((f) => /^scale-\d+\.json$/.test(f))
    .map((f) => JSON.parse(readFileSync(join(RESULTS_DIR, f), "utf8")) as Sized)
    .sort((a, b) => a.figures.size.services - b.figures.size.services);
  const label = (r: Sized) =>
    `${r.figures.size.services} services, ${r.figures.size.slots} slots, ${r.figures.size.claims} claims`;
  const converge = (r: Sized) =>
    ["slots", "claims", "services"].reduce((sum, k) => sum + (r.figures.phases[k]?.seconds ?? NaN), 0);
  const path = writeResults({
    benchmark: "scale-summary",
    command: "node bench/scale.ts --summarize",
    figures: {
      sizes: runs.map((r) => ({
        size: r.figures.size,
        convergeSeconds: converge(r),
        outage: r.figures.failover,
      })),
    },
    charts: [
      {
        name: "scale-converge",
        title: "Scale: pool, claims and services created to all converged",
        unit: "s",
        bars: runs.map((r) => ({ label: label(r), value: converge(r) })),
      },
      {
        name: "scale-outage",
        title: "Scale: zone outage, failovers completed (p50, marker p99)",
        unit: "s",
        log: true,
        markerLabel: "p99",
        bars: runs
          .filter((r) => r.figures.failover)
          .map((r) => ({
            label: `${r.figures.failover!.affected} failovers (${r.figures.size.services} services)`,
            value: r.figures.failover!.p50Ms / 1000,
            marker: r.figures.failover!.p99Ms / 1000,
          })),
      },
    ],
  });
  log(`summary: ${path}`);
}
if (opts.summarize) {
  summarize();
  process.exit(0);
}

/** How the chart's default values run the operator: its container's memory limit and Node's flags. */
function chartOperator(): { memoryLimit: string; nodeOptions: string } {
  const values = parseYaml(
    readFileSync(join(import.meta.dirname, "../deploy/helm/understudy/values.yaml"), "utf8"),
  ) as { resources: { limits: { memory: string } }; operator: { nodeOptions?: string } };
  return { memoryLimit: values.resources.limits.memory, nodeOptions: values.operator.nodeOptions ?? "" };
}

// ---------- /proc and /metrics sampling ----------

function procSample(pid: number): { cpuSeconds: number; rssBytes: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
    return { cpuSeconds: ticks / 100, rssBytes: rss };
  } catch {
    return undefined;
  }
}

/** The operator's heap and the time it spent collecting garbage, from its /metrics (prom-client's). */
async function heapSample(url: string): Promise<HeapSample | undefined> {
  try {
    const text = await (await fetch(url)).text();
    return {
      usedBytes: metricSum(text, "nodejs_heap_size_used_bytes"),
      totalBytes: metricSum(text, "nodejs_heap_size_total_bytes"),
      youngBytes: metricSum(text, "nodejs_heap_space_size_total_bytes", { space: "new" }),
      gcSeconds: metricSum(text, "nodejs_gc_duration_seconds_sum"),
    };
  } catch {
    return undefined;
  }
}
interface HeapSample {
  usedBytes: number;
  totalBytes: number;
  youngBytes: number;
  gcSeconds: number;
}

// ---------- stand-in heads ----------

/** The stand-in heads' process (bench/stand-in-heads.ts), and what the benchmark asks of it. */
class StandInHeads {
  readonly #child: ChildProcess;
  /** Waiters for lag reports, in the order asked (IPC keeps the order). */
  readonly #lagWaiters: ((lag: { p99: number; max: number }) => void)[] = [];

  #stopping = false;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on("message", (m: StandInMessage) => {
      if (m.kind === "lag") this.#lagWaiters.shift()?.({ p99: m.p99, max: m.max });
    });
    child.on("exit", (code, signal) => {
      if (!this.#stopping)
        log(`the stand-in heads exited (${code ?? signal}): from now on every probe fails`);
      for (const waiter of this.#lagWaiters.splice(0)) waiter({ p99: NaN, max: NaN });
    });
  }

  static async start(namespace: string): Promise<StandInHeads> {
    const child = fork(new URL("./stand-in-heads.ts", import.meta.url), [namespace], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    await new Promise<void>((resolve, reject) => {
      child.on("message", (m: StandInMessage) => m.kind === "started" && resolve());
      child.once("exit", (code) => reject(new Error(`the stand-in heads exited (${code}) before starting`)));
    });
    return new StandInHeads(child);
  }

  loseNodes(nodes: readonly string[]): void {
    if (this.#child.connected)
      this.#child.send({ kind: "loseNodes", nodes: [...nodes] } satisfies StandInRequest);
  }

  /** Their event-loop lag since the last call (ms). */
  lag(): Promise<{ p99: number; max: number }> {
    if (!this.#child.connected) return Promise.resolve({ p99: NaN, max: NaN });
    return new Promise((resolve) => {
      this.#lagWaiters.push(resolve);
      this.#child.send({ kind: "lag" } satisfies StandInRequest);
    });
  }

  stop(): void {
    this.#stopping = true;
    this.#child.kill();
  }
}

// ---------- helpers ----------

async function inBatches<T>(
  items: readonly T[],
  width: number,
  fn: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const item = items[next++]!;
        for (let attempt = 0; ; attempt++) {
          try {
            await fn(item);
            break;
          } catch (err) {
            if ((err as { code?: number }).code === 409 || attempt > 5) break;
            await sleep(200 * (attempt + 1));
          }
        }
      }
    }),
  );
}

async function until(what: string, check: () => Promise<string | true>): Promise<number> {
  const start = performance.now();
  let last = "";
  while (performance.now() - start < PHASE_TIMEOUT_MS) {
    const r = await check();
    if (r === true) {
      log(`${what}: ${((performance.now() - start) / 1000).toFixed(1)} s`);
      return performance.now() - start;
    }
    if (r !== last) log(`${what}: ${r}`);
    last = r;
    await sleep(2_000);
  }
  log(`${what}: gave up after ${opts.timeoutMin} min (${last})`);
  return NaN;
}

async function listAll<T>(
  fn: (cont?: string) => Promise<{ items: T[]; metadata?: { _continue?: string; continue?: string } }>,
): Promise<T[]> {
  const out: T[] = [];
  let cont: string | undefined;
  do {
    const page = await fn(cont);
    out.push(...page.items);
    // Typed lists call it _continue; custom objects come back as plain JSON: continue.
    cont = page.metadata?._continue ?? page.metadata?.continue;
  } while (cont);
  return out;
}

type ServiceItem = {
  metadata: k8s.V1ObjectMeta;
  status?: {
    phase?: string;
    failoverCount?: number;
    failover?: unknown;
    lastFailover?: {
      reason?: string;
      startedAt?: string;
      finishedAt?: string;
      timeline?: { step: string; at: string }[];
    };
    head?: { zone?: string; node?: string; pod?: string };
  };
};

// ---------- main ----------

const scope = `scale-${Date.now().toString(36)}`;
/** `n` split into `parts` whole shares, the first ones one larger where it does not divide. */
const splitAmong = (n: number, parts: number): number[] =>
  Array.from({ length: parts }, (_, i) => Math.floor(n / parts) + (i < n % parts ? 1 : 0));
const perZone = (n: number) => splitAmong(n, ZONES.length);
// A pool holds at most MAX_SLOTS_PER_ZONE slots a zone: larger sizes use several pools, with the
// claims and services spread over them round-robin.
const POOLS = Math.max(1, Math.ceil(Math.max(...perZone(SLOTS)) / MAX_SLOTS_PER_ZONE));
const pools = Array.from({ length: POOLS }, (_, i) => (POOLS === 1 ? scope : `${scope}-${i}`));
const poolOf = (i: number) => pools[i % POOLS]!;
// Each pool gets as many slots as claims (claims go round-robin too), spread over the zones.
const slotsOfPool = (p: number) => perZone(splitAmong(SLOTS, POOLS)[p]!);
// Pods per node stay under the kubelet's 110; CPU and memory fit with room to spare.
const podsPerZone = Math.ceil((4 * SERVICES + SLOTS) / ZONES.length);
const nodesPerZone = Math.max(1, Math.ceil((podsPerZone * 1.25) / 100));
const nodeNames = ZONES.flatMap((zone) =>
  Array.from({ length: nodesPerZone }, (_, i) => `kwok-scale-${zone}-${i + 1}`),
);

const proxy = await countingProxy(kc);
let control: ControlPlane | undefined;
let metricsUrl: string | undefined;
let standIns: StandInHeads | undefined;
let provisioner: VolumeProvisioner | undefined;
let opNs = "";
let tenants = "";
let servicesNs = "";
const samples: { t: number; cpuSeconds: number; rssBytes: number }[] = [];
const heapSamples: ({ t: number } & HeapSample)[] = [];
let sampler: NodeJS.Timeout | undefined;
let memoryCgroup: MemoryCgroup | undefined;
const figures: Record<string, unknown> = {
  size: {
    services: SERVICES,
    slots: SLOTS,
    claims: CLAIMS,
    pools: POOLS,
    nodes: nodeNames.length,
    nodesPerZone,
  },
  probePeriodMs: Number(opts.probePeriodMs),
  qps: Number(opts.qps),
  concurrency: Number(opts.concurrency),
  operatorRuns: opts.sources ? "sources" : "dist",
  operatorEnv: opts.operatorEnv ?? [],
  operatorMemoryLimit: opts.memoryLimit,
  operatorNodeOptions: opts.nodeOptions,
};

async function teardown(): Promise<void> {
  if (opts.keep) return;
  clearInterval(sampler);
  standIns?.stop();
  log("tearing down");
  await Promise.all(nodeNames.map((n) => restoreNode(client, n).catch(() => undefined)));
  for (const n of await (async () => {
    try {
      return (
        await client.core.listNode({ labelSelector: "topology.kubernetes.io/zone=zone-a,type=kwok" })
      ).items.map((x) => x.metadata!.name!);
    } catch {
      return [];
    }
  })())
    await restoreNode(client, n).catch(() => undefined);
  // While the controllers still run, so claims' finalizers release their slots.
  if (servicesNs) await deleteAllAndWait(client, STORAGE_SERVICE_PLURAL, servicesNs, 300_000);
  if (tenants) await deleteAllAndWait(client, "poolclaims", tenants, 300_000);
  for (const pool of pools) await deletePool(client, pool).catch(() => undefined);
  await control?.stop();
  try {
    memoryCgroup?.remove();
  } catch (err) {
    log(`${memoryCgroup?.dir} is left (a process of it still runs?): ${String(err)}`);
  }
  await provisioner?.stop();
  for (const ns of [servicesNs, tenants, opNs]) if (ns) await deleteNamespace(client, ns);
  await inBatches(nodeNames, 20, (name) => client.core.deleteNode({ name }));
  proxy.close();
}

// Interrupted: tear down anyway (while the operator still runs, so claims let go of their slots).
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`${signal}: tearing down`);
    void teardown().finally(() => process.exit(130));
  });
}

try {
  await installCrds(kc);
  log(
    `size: ${SERVICES} services, ${SLOTS} slots in ${POOLS} pool(s), ${CLAIMS} claims; adding ${nodeNames.length} KWOK nodes`,
  );
  await inBatches(nodeNames, 20, async (name) => {
    const node = fakeNode(name, name.split("-").slice(2, 4).join("-"));
    node.metadata!.labels![BENCH_LABEL] = "scale";
    await client.core.createNode({ body: node });
  });
  opNs = await freshNamespace(client, "scale-op");
  tenants = await freshNamespace(client, "scale-tenants");
  servicesNs = await freshNamespace(client, "scale-svc");

  const kubeconfig = proxy.kubeconfig();
  const nodeOptions = [opts.nodeOptions, opts.cpuProf && `--cpu-prof --cpu-prof-dir=${opts.cpuProf}`]
    .filter(Boolean)
    .join(" ");
  if (MEMORY_LIMIT_BYTES !== undefined)
    try {
      memoryCgroup = createMemoryCgroup(`understudy-scale-${process.pid}`, MEMORY_LIMIT_BYTES);
    } catch (err) {
      throw new Error(
        `cannot run the operator under its memory limit (needs root and a cgroup filesystem; --memory-limit none runs it without): ${String(err)}`,
        { cause: err },
      );
    }
  const operator = await startOperator({
    memoryCgroup,
    namespace: opNs,
    kubeconfig,
    built: !opts.sources,
    env: {
      UNDERSTUDY_POOL_SELECTOR: testPoolSelector(scope),
      UNDERSTUDY_KUBE_API_QPS: opts.qps,
      UNDERSTUDY_KUBE_API_BURST: String(2 * Number(opts.qps)),
      UNDERSTUDY_CONCURRENCY: opts.concurrency,
      UNDERSTUDY_LOG_LEVEL: "warn",
      UNDERSTUDY_LEADER_ELECT: "false",
      ...(nodeOptions && { NODE_OPTIONS: nodeOptions }),
      ...Object.fromEntries(
        (opts.operatorEnv ?? []).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
      ),
    },
  });
  control = { ...operator, stop: () => operator.stop() };
  metricsUrl = operator.metricsUrl;
  log(`operator process ${control.process.pid} (log ${control.logFile})`);
  void operator.exited.then((code) => {
    let oomKills: number | string = "-";
    try {
      oomKills = memoryCgroup?.oomKills() ?? "-";
    } catch {
      // The group is gone already.
    }
    log(`the operator process exited (${code}; OOM kills in its cgroup: ${oomKills})`);
  });
  const t0 = performance.now();
  let heapScrape: Promise<void> | undefined;
  sampler = setInterval(() => {
    const t = performance.now() - t0;
    const s = procSample(control!.process.pid!);
    if (s) samples.push({ t, ...s });
    heapScrape ??= heapSample(metricsUrl!)
      .then((h) => void (h && heapSamples.push({ t, ...h })))
      .finally(() => (heapScrape = undefined));
  }, 1_000);
  standIns = await StandInHeads.start(servicesNs);
  // Server StatefulSets claim volumes; the test cluster has no provisioner.
  provisioner = new VolumeProvisioner(
    kc,
    [servicesNs],
    join(tmpdir(), `understudy-scale-${process.pid}`),
    log,
  );
  await provisioner.start();

  const scoped = <T extends { metadata: Record<string, unknown> }>(m: T): T => ({
    ...m,
    metadata: { ...m.metadata, labels: { ...((m.metadata.labels as object) ?? {}), [testRunLabel]: scope } },
  });

  // 1. The pools.
  const poolBodies = pools.map((pool, p) => {
    const body = scoped(
      poolManifest(pool, {
        zones: Object.fromEntries(ZONES.map((z, i) => [z, slotsOfPool(p)[i]!])),
        allowedNamespaces: [tenants],
        emergencyGraceSeconds: 0,
      }),
    );
    (body.spec as Record<string, unknown>).slotSize = { cpu: "50m", memory: "64Mi" };
    (body.spec as Record<string, unknown>).nodeSelector = { [BENCH_LABEL]: "scale" };
    return body;
  });
  // When the stand-ins' event loop lags past the probe timeout, heads fail for a reason that is the
  // benchmark's, so each phase records that lag too.
  const phaseStart = () => {
    void standIns!.lag();
    return {
      metrics: scrape(metricsUrl!),
      requests: total(proxy.counts),
      byKind: new Map(proxy.counts),
      latencyByKind: new Map(proxy.latencyMs),
      cpu: samples.at(-1)?.cpuSeconds ?? 0,
      t: samples.at(-1)?.t ?? 0,
      gcSeconds: heapSamples.at(-1)?.gcSeconds ?? 0,
    };
  };
  const phases: Record<
    string,
    {
      seconds: number;
      requests: number;
      cpuSeconds: number;
      top: Record<string, number>;
      /** Mean time the API server took to answer, for the top request kinds (through the counting proxy). */
      meanLatencyMs: Record<string, number>;
      standInHeadsLoopDelayMs: { p99: number; max: number };
      gcSeconds: number;
      peakRssMiB: number;
      peakHeapUsedMiB: number;
      controllers: Record<string, ControllerWork>;
    }
  > = {};
  const endPhase = async (name: string, ms: number, start: ReturnType<typeof phaseStart>) => {
    const standInHeadsLoopDelayMs = await standIns!.lag();
    const delta = [...proxy.counts]
      .map(([k, v]) => [k, v - (start.byKind.get(k) ?? 0)] as const)
      .filter(([, v]) => v > 0)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8);
    phases[name] = {
      seconds: ms / 1000,
      requests: total(proxy.counts) - start.requests,
      cpuSeconds: (samples.at(-1)?.cpuSeconds ?? 0) - start.cpu,
      top: Object.fromEntries(delta),
      meanLatencyMs: Object.fromEntries(
        delta
          .filter(([k]) => !k.startsWith("watch "))
          .map(([k, n]) => [k, ((proxy.latencyMs.get(k) ?? 0) - (start.latencyByKind.get(k) ?? 0)) / n]),
      ),
      standInHeadsLoopDelayMs,
      gcSeconds: (heapSamples.at(-1)?.gcSeconds ?? 0) - start.gcSeconds,
      peakRssMiB: Math.max(0, ...samples.filter((x) => x.t >= start.t).map((x) => x.rssBytes)) / 2 ** 20,
      peakHeapUsedMiB:
        Math.max(0, ...heapSamples.filter((x) => x.t >= start.t).map((x) => x.usedBytes)) / 2 ** 20,
      controllers: controllerWork(await start.metrics, await scrape(metricsUrl!)),
    };
  };
  let start = phaseStart();
  for (const body of poolBodies) await createPool(client, body);
  await endPhase(
    "slots",
    await until(`${SLOTS} slots with Running placeholders`, async () => {
      const leases = await allSlotLeases();
      const running = await listAll((c) =>
        client.core.listNamespacedPod({
          namespace: opNs,
          labelSelector: "understudy.dev/pool,understudy.dev/role=placeholder",
          fieldSelector: "status.phase=Running",
          _continue: c,
          limit: 1000,
        }),
      );
      return leases.length >= SLOTS && running.length >= SLOTS
        ? true
        : `${leases.length} leases, ${running.length} placeholders Running`;
    }),
    start,
  );

  // 2. The claims.
  start = phaseStart();
  const claimNames = Array.from({ length: CLAIMS }, (_, i) => `claim-${i}`);
  await inBatches(claimNames, 16, (name) =>
    createClaim(
      client,
      scoped(claimManifest(tenants, name, poolOf(Number(name.slice(6))), 1 + (Number(name.slice(6)) % 100))),
    ),
  );
  await endPhase(
    "claims",
    await until(`${CLAIMS} claims Bound`, async () => {
      const claims = await listAll(
        (c) =>
          client.custom.listNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            plural: "poolclaims",
            namespace: tenants,
            _continue: c,
            limit: 1000,
          }) as Promise<{ items: { status?: { phase?: string } }[]; metadata?: { _continue?: string } }>,
      );
      const bound = claims.filter((c) => c.status?.phase === "Bound").length;
      return bound >= Math.min(CLAIMS, SLOTS) ? true : `${bound} Bound`;
    }),
    start,
  );

  // The ledger's invariant, checked on the real thing: no holder holds two slots.
  figures.holdersOfSeveralSlotsAfterClaims = await holdersOfSeveralSlots();

  // 3. The storage services, primary zones round-robin.
  start = phaseStart();
  const names = Array.from({ length: SERVICES }, (_, i) => `s${i}`);
  await inBatches(names, 16, (name) =>
    client.custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: STORAGE_SERVICE_PLURAL,
      namespace: servicesNs,
      body: scoped({
        apiVersion: `${GROUP}/${VERSION}`,
        kind: "StorageService",
        metadata: { name, namespace: servicesNs },
        spec: {
          pool: poolOf(Number(name.slice(1))),
          zones: [...ZONES],
          primaryZone: ZONES[Number(name.slice(1)) % ZONES.length],
          replicationFactor: 3,
          head: { image: "understudy:dev", port: 7000 },
          servers: { image: "understudy:dev", port: 7001, replicasPerZone: 1, storage: { size: "1Gi" } },
          failureDetection: {
            probePeriodMilliseconds: Number(opts.probePeriodMs),
            probeTimeoutMilliseconds: Math.min(Number(opts.probePeriodMs), 500),
            failureThreshold: 3,
          },
        },
      }),
    }),
  );
  const listServices = () =>
    listAll(
      (c) =>
        client.custom.listNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          plural: STORAGE_SERVICE_PLURAL,
          namespace: servicesNs,
          _continue: c,
          limit: 500,
        }) as Promise<{ items: ServiceItem[]; metadata?: { _continue?: string } }>,
    );
  await endPhase(
    "services",
    await until(`${SERVICES} storage services Ready`, async () => {
      const ready = (await listServices()).filter((s) => s.status?.phase === "Ready").length;
      return ready >= SERVICES ? true : `${ready} Ready`;
    }),
    start,
  );
  const steady = samples.at(-1);
  log(
    `steady state: controllers CPU ${steady?.cpuSeconds.toFixed(1)} s, RSS ${((steady?.rssBytes ?? 0) / 2 ** 20).toFixed(0)} MiB`,
  );
  // Idle cost: a minute of steady state (probes, resyncs).
  const idleStart = phaseStart();
  await sleep(30_000);
  await endPhase("steady 30 s", 30_000, idleStart);

  // 4. Zone outage: every node of zone-a NotReady; their heads stop answering.
  const zoneNodes = (
    await client.core.listNode({ labelSelector: "topology.kubernetes.io/zone=zone-a,type=kwok" })
  ).items.map((n) => n.metadata!.name!);
  const settledServices = await listServices();
  const before = new Map(settledServices.map((s) => [s.metadata.name!, s.status?.failoverCount ?? 0]));
  // Failovers before any fault: heads judged failed while the cluster converged (a probe timing out
  // on a loaded machine, say). Reported, as each one took a slot from a tenant.
  const earlyReasons = new Map<string, number>();
  for (const s of settledServices)
    if ((s.status?.failoverCount ?? 0) > 0) {
      const reason = s.status?.lastFailover?.reason ?? "?";
      earlyReasons.set(reason, (earlyReasons.get(reason) ?? 0) + 1);
    }
  const affected = settledServices
    .filter((s) => s.status?.head?.zone === "zone-a")
    .map((s) => s.metadata.name!);
  log(`zone outage: ${zoneNodes.length} nodes of zone-a, ${affected.length} heads there`);
  start = phaseStart();
  const faultWall = Date.now();
  standIns.loseNodes(zoneNodes);
  await inBatches(zoneNodes, 20, (n) => makeNodeNotReady(client, n));
  const completions: number[] = [];
  const detections: number[] = [];
  const switched: number[] = [];
  /** Each failover's time from one step of its timeline to the next, by "from -> to". */
  const stepTimes = new Map<string, number[]>();
  const movedTo: { zone: string; node: string }[] = [];
  /** Each moved head's pod, and when its failover recorded HeadStarted and RoutingSwitched. */
  const moved: { pod: string; startedAt: number; switchedAt: number }[] = [];
  await endPhase(
    "zone outage",
    await until(`${affected.length} failovers done`, async () => {
      const now = await listServices();
      completions.length = 0;
      detections.length = 0;
      switched.length = 0;
      stepTimes.clear();
      movedTo.length = 0;
      moved.length = 0;
      for (const s of now) {
        if (!affected.includes(s.metadata.name!)) continue;
        const done =
          (s.status?.failoverCount ?? 0) > (before.get(s.metadata.name!) ?? 0) &&
          !s.status?.failover &&
          s.status?.lastFailover?.finishedAt;
        if (!done) continue;
        const last = s.status!.lastFailover!;
        completions.push(Date.parse(last.finishedAt!) - faultWall);
        if (last.startedAt) detections.push(Date.parse(last.startedAt) - faultWall);
        const routed = last.timeline?.find((t) => t.step === "RoutingSwitched");
        if (routed) switched.push(Date.parse(routed.at) - faultWall);
        const marks = last.timeline ?? [];
        for (const [i, m] of marks.slice(1).entries()) {
          const key = `${marks[i]!.step} -> ${m.step}`;
          stepTimes.set(key, [...(stepTimes.get(key) ?? []), Date.parse(m.at) - Date.parse(marks[i]!.at)]);
        }
        movedTo.push({ zone: s.status?.head?.zone ?? "?", node: s.status?.head?.node ?? "?" });
        const started = marks.findLast((t) => t.step === "HeadStarted");
        if (routed && started && s.status?.head?.pod)
          moved.push({
            pod: s.status.head.pod,
            startedAt: Date.parse(started.at),
            switchedAt: Date.parse(routed.at),
          });
      }
      return completions.length >= affected.length ? true : `${completions.length}/${affected.length} done`;
    }),
    start,
  );
  const doubleHeldAtEnd = await holdersOfSeveralSlots();
  const headPods = new Map(
    (
      await client.core.listNamespacedPod({
        namespace: servicesNs,
        labelSelector: "understudy.dev/role=head",
      })
    ).items.map((p) => [p.metadata!.name!, p]),
  );
  // The Events of the failed-over services, by reason: a step taken twice shows here.
  const eventReasons = new Map<string, number>();
  for (const e of (await client.core.listNamespacedEvent({ namespace: servicesNs })).items)
    if (e.involvedObject.kind === "StorageService" && affected.includes(e.involvedObject.name!))
      eventReasons.set(e.reason ?? "?", (eventReasons.get(e.reason ?? "?") ?? 0) + (e.count ?? 1));
  const newSlotsAt = (await allSlotLeases())
    .map((l) => Date.parse(String(l.metadata!.creationTimestamp)) - faultWall)
    .filter((ms) => ms >= -1_000);
  const peakRss = Math.max(...samples.map((s) => s.rssBytes));
  const reconciles = metricsUrl ? await reconcileCount(metricsUrl) : undefined;
  Object.assign(figures, {
    phases,
    failover: {
      affected: affected.length,
      completed: completions.length,
      p50Ms: percentile(completions, 50),
      p99Ms: percentile(completions, 99),
      maxMs: Math.max(...completions),
      detectedP50Ms: percentile(detections, 50),
      detectedP99Ms: percentile(detections, 99),
      routingSwitchedP50Ms: percentile(switched, 50),
      routingSwitchedP99Ms: percentile(switched, 99),
      stepsMs: Object.fromEntries(
        [...stepTimes].map(([step, ms]) => [
          step,
          { n: ms.length, p50: percentile(ms, 50), p99: percentile(ms, 99) },
        ]),
      ),
      movedHeads: spreadOf(movedTo),
      headsMs: headTimes(moved, headPods),
      eventsByReason: Object.fromEntries([...eventReasons].sort((a, b) => b[1] - a[1])),
      newSlots: { n: newSlotsAt.length, p50Ms: percentile(newSlotsAt, 50), lastMs: Math.max(...newSlotsAt) },
    },
    holdersOfSeveralSlotsAtEnd: doubleHeldAtEnd,
    failoversBeforeOutage: {
      count: [...before.values()].reduce((sum, n) => sum + n, 0),
      services: [...before.values()].filter((n) => n > 0).length,
      lastReasons: Object.fromEntries(earlyReasons),
    },
    controllersCpuSeconds: samples.at(-1)?.cpuSeconds,
    controllersPeakRssMiB: peakRss / 2 ** 20,
    controllersPeakHeapMiB: {
      used: Math.max(...heapSamples.map((h) => h.usedBytes)) / 2 ** 20,
      total: Math.max(...heapSamples.map((h) => h.totalBytes)) / 2 ** 20,
      youngGeneration: Math.max(...heapSamples.map((h) => h.youngBytes)) / 2 ** 20,
    },
    controllersGcSeconds: heapSamples.at(-1)?.gcSeconds,
    memoryCgroup: memoryCgroup && {
      limitMiB: memoryCgroup.limitBytes / 2 ** 20,
      peakMiB: memoryCgroup.peakBytes() / 2 ** 20,
      oomKills: memoryCgroup.oomKills(),
    },
    requestsTotal: total(proxy.counts),
    requestsByKind: Object.fromEntries([...proxy.counts].sort((a, b) => b[1] - a[1])),
    reconciles,
  });
  console.log(JSON.stringify(figures, null, 2));
} finally {
  await teardown().catch((err: unknown) => log(`teardown: ${String(err)}`));
}

/** Where the moved heads landed: how many per zone, and the most any one node took. */
function spreadOf(places: readonly { zone: string; node: string }[]): {
  perZone: Record<string, number>;
  nodes: number;
  mostOnOneNode: number;
} {
  const count = (keys: string[]) =>
    keys.reduce((m, k) => m.set(k, (m.get(k) ?? 0) + 1), new Map<string, number>());
  const perNode = count(places.map((p) => p.node));
  return {
    perZone: Object.fromEntries([...count(places.map((p) => p.zone))].sort()),
    nodes: perNode.size,
    mostOnOneNode: Math.max(0, ...perNode.values()),
  };
}

/**
 * A moved head's time split between the cluster and the operator, p50 / p99 over the heads: from
 * HeadStarted to the pod's creation, from its creation to KWOK reporting it Ready, and from Ready
 * to the failover recording RoutingSwitched. The pod's times are the API server's, whole seconds.
 */
function headTimes(
  moved: readonly { pod: string; startedAt: number; switchedAt: number }[],
  pods: ReadonlyMap<string, k8s.V1Pod>,
): Record<string, { n: number; p50: number; p99: number }> {
  const spans: Record<string, number[]> = {
    "HeadStarted -> pod created": [],
    "pod created -> pod Ready": [],
    "pod Ready -> RoutingSwitched": [],
  };
  for (const head of moved) {
    const pod = pods.get(head.pod);
    const created = Date.parse(String(pod?.metadata?.creationTimestamp));
    const ready = Date.parse(
      String(pod?.status?.conditions?.find((c) => c.type === "Ready")?.lastTransitionTime),
    );
    if (Number.isNaN(created) || Number.isNaN(ready)) continue;
    spans["HeadStarted -> pod created"]!.push(created - head.startedAt);
    spans["pod created -> pod Ready"]!.push(ready - created);
    spans["pod Ready -> RoutingSwitched"]!.push(head.switchedAt - ready);
  }
  return Object.fromEntries(
    Object.entries(spans).map(([span, ms]) => [
      span,
      { n: ms.length, p50: percentile(ms, 50), p99: percentile(ms, 99) },
    ]),
  );
}

async function scrape(url: string): Promise<string> {
  try {
    return await (await fetch(url)).text();
  } catch {
    return "";
  }
}

/** One controller's work in a phase: its reconciles, and how long keys waited for a worker, per lane. */
interface ControllerWork {
  reconciles: number;
  reconcileMeanMs: number;
  queueWait: Record<string, { n: number; meanMs: number; p99UpToMs: number }>;
}

/** Each controller's work between two scrapes of the operator's /metrics. */
function controllerWork(before: string, after: string): Record<string, ControllerWork> {
  const [was, is] = [parseSamples(before), parseSamples(after)];
  const delta = (name: string, labels: Record<string, string>) =>
    sampleSum(is, name, labels) - sampleSum(was, name, labels);
  const controllers = new Set(
    samplesMatching(is, "understudy_reconcile_total").map((s) => s.labels.controller!),
  );
  const work: Record<string, ControllerWork> = {};
  for (const controller of [...controllers].sort()) {
    const reconciles = delta("understudy_reconcile_duration_seconds_count", { controller });
    if (reconciles === 0) continue;
    const queueWait: ControllerWork["queueWait"] = {};
    for (const lane of ["urgent", "routine"]) {
      const labels = { controller, lane };
      const n = delta("understudy_workqueue_queue_duration_seconds_count", labels);
      if (n === 0) continue;
      // The 99th percentile lies in the first bucket holding 99 % of the waits: its upper bound.
      const buckets = samplesMatching(is, "understudy_workqueue_queue_duration_seconds_bucket", labels)
        .map((s) => ({ le: s.labels.le!, upTo: Number(s.labels.le) }))
        .sort((a, b) => a.upTo - b.upTo);
      const p99 = buckets.find(
        (b) =>
          delta("understudy_workqueue_queue_duration_seconds_bucket", { ...labels, le: b.le }) >= 0.99 * n,
      );
      queueWait[lane] = {
        n,
        meanMs: (1000 * delta("understudy_workqueue_queue_duration_seconds_sum", labels)) / n,
        p99UpToMs: 1000 * (p99?.upTo ?? Infinity),
      };
    }
    work[controller] = {
      reconciles,
      reconcileMeanMs:
        (1000 * delta("understudy_reconcile_duration_seconds_sum", { controller })) / reconciles,
      queueWait,
    };
  }
  return work;
}

/** Reconciles of every controller, from the operator's understudy_reconcile_total. */
async function reconcileCount(url: string): Promise<number | undefined> {
  try {
    const text = await (await fetch(url)).text();
    let sum = 0;
    for (const line of text.split("\n"))
      if (line.startsWith("understudy_reconcile_total")) sum += Number(line.split(" ").at(-1));
    return sum || metricValue(text, "understudy_reconcile_total");
  } catch {
    return undefined;
  }
}

/** Every slot Lease of this run's pools (they all live in the operator's namespace). */
function allSlotLeases(): Promise<k8s.V1Lease[]> {
  return listAll((c) =>
    client.coordination.listNamespacedLease({
      namespace: opNs,
      labelSelector: "understudy.dev/pool",
      _continue: c,
      limit: 1000,
    }),
  );
}

/** Claims and services holding more than one slot Lease (the ledger allows one each), logged loudly. */
async function holdersOfSeveralSlots(): Promise<string[]> {
  const held = new Map<string, number>();
  for (const l of await allSlotLeases()) {
    const holder = l.spec?.holderIdentity;
    if (holder) held.set(holder, (held.get(holder) ?? 0) + 1);
  }
  const several = [...held].filter(([, n]) => n > 1).map(([holder, n]) => `${holder} (${n})`);
  if (several.length) log(`INVARIANT BROKEN: holders of several slots: ${several.join(", ")}`);
  return several;
}

function total(counts: Map<string, number>): number {
  let n = 0;
  for (const v of counts.values()) n += v;
  return n;
}

const phases = (figures.phases ?? {}) as Record<string, { seconds: number }>;
const charts: ChartSpec[] = [
  {
    name: `scale-${SERVICES}-phases`,
    title: `Scale: ${SERVICES} services, ${SLOTS} slots, ${CLAIMS} claims (seconds per phase)`,
    unit: "s",
    bars: Object.entries(phases).map(([label, p]) => ({ label, value: p.seconds })),
  },
];
const failover = figures.failover as { p50Ms: number; p99Ms: number } | undefined;
if (failover) {
  charts.push({
    name: `scale-${SERVICES}-zone-outage`,
    title: "Zone outage: failover completion (fault to Done)",
    unit: "s",
    bars: [
      { label: "p50", value: failover.p50Ms / 1000 },
      { label: "p99", value: failover.p99Ms / 1000 },
    ],
  });
}
const path = writeResults({
  benchmark: `scale-${SERVICES}`,
  command: `npm run bench:scale -- ${process.argv.slice(2).join(" ")}`.trim(),
  figures,
  charts,
});
log(`results: ${path}`);
process.exit(0);
