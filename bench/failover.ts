// Head failover on the test cluster, many times over, timed from the StorageService's own status
// timelines: detection -> new head bound to its node (HeadStarted: the pod is created pinned to the
// slot's node) and detection -> head Service switched (RoutingSwitched: since 3069e7e, the time the
// switch was decided, its Service patch and record then sent together). Also the wall clock from the
// fault (the head pod made NotReady through KWOK) to the switch, as a client would see it.
// Two scenarios side by side: a free slot (hot spare) taken, and a tenant's lease revoked.
// The operator runs as its own process (node src/operator/main.ts), managing only this run's pools.
// Head pods are made Ready the moment KWOK shows them Running (bench/instant-kubelet.ts), so the
// figures are the operator's and the cluster's, not a head process's start (bench/head-start.ts
// measures that); --kubelet kwok leaves them to KWOK's fixed delay for unclaimed heads instead.
// --compare-lanes runs each scenario twice, the operator's priority lanes off (--no-priority-lanes:
// failover requests and keys queue with routine ones) and then on, and prints them side by side.
// --baseline <checkout> runs each scenario with that checkout's operator first, then with this one's.
//
//   npx node bench/failover.ts [--failovers 50] [--kube-api-qps 20 --kube-api-burst 30] [--compare-lanes]
//     [--baseline <checkout>] [--label failover] [--kubelet instant|kwok]
// (with the test cluster up: npm run cluster:up). Results go to bench/results/<label>.json.
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { installCrds } from "../test/support/crds.ts";
import {
  createScopedClaim,
  createScopedPool,
  createService,
  deleteService,
  getService,
  waitForFailover,
  waitForServing,
} from "../test/support/failover.ts";
import {
  deleteNamespace,
  eventually,
  freshNamespace,
  makePodNotReady,
  testClient,
  testKubeConfig,
} from "../test/support/kube.ts";
import { startOperator } from "../test/support/operator.ts";
import { InstantKubelet } from "./instant-kubelet.ts";
import { deleteClaim, deletePool, getClaim, listClaims, testPoolSelector } from "../test/support/pools.ts";
import { writeResults } from "./chart.ts";

const { values } = parseArgs({
  options: {
    failovers: { type: "string", default: "50" },
    // The operator's client-side API rate limit (its defaults: 20 QPS, bursts of 30).
    "kube-api-qps": { type: "string" },
    "kube-api-burst": { type: "string" },
    label: { type: "string", default: "failover" },
    "compare-lanes": { type: "boolean", default: false },
    baseline: { type: "string" },
    kubelet: { type: "string", default: "instant" },
  },
});
if (values.kubelet !== "instant" && values.kubelet !== "kwok")
  throw new Error("--kubelet is instant or kwok");
if (values.baseline !== undefined && values["compare-lanes"])
  throw new Error("--baseline and --compare-lanes each make their own pairs: use one");
const baseline = values.baseline === undefined ? undefined : resolve(values.baseline);
const failovers = Number(values.failovers);
const limits: Record<string, string> = {
  ...(values["kube-api-qps"] ? { UNDERSTUDY_KUBE_API_QPS: values["kube-api-qps"] } : {}),
  ...(values["kube-api-burst"] ? { UNDERSTUDY_KUBE_API_BURST: values["kube-api-burst"] } : {}),
};
const client = testClient();
const run = Date.now().toString(36);

interface Sample {
  detectToBoundMs: number;
  detectToSwitchedMs: number;
  /** The new head reported Ready by the instant kubelet -> Service switched: the operator's reaction. */
  readyToSwitchedMs: number;
  /**
   * detection -> bound plus Ready -> switched: detection to Service switched without the head's
   * start (KWOK running the pod), which a real head's start replaces (bench/head-start.ts).
   */
  operatorMs: number;
  faultToSwitchedMs: number;
  detectToDoneMs: number;
  revoked: boolean;
  /** Each step of the timeline up to RoutingSwitched from the one before (and the head's Ready between). */
  steps: Record<string, number>;
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

async function scenario(name: string, leased: boolean, lanes = true, checkout?: string): Promise<Sample[]> {
  const scope = `bench-${run}-${name}`;
  const pool = `bench-${run}-${name}`;
  const opNs = await freshNamespace(client, "bench-op");
  const ns = await freshNamespace(client, "bench");
  const operator = await startOperator({
    namespace: opNs,
    poolSelector: testPoolSelector(scope),
    env: { UNDERSTUDY_LOG_LEVEL: "info", UNDERSTUDY_PRIORITY_LANES: String(lanes), ...limits },
    ...(checkout ? { checkout } : {}),
  });
  const kubelet = values.kubelet === "instant" ? new InstantKubelet(testKubeConfig(), client, ns) : undefined;
  await kubelet?.start();
  const samples: Sample[] = [];
  const claims = leased ? ["t1", "t2", "t3"] : [];
  try {
    await createScopedPool(client, pool, scope, {
      zones: { "zone-a": 1, "zone-b": 1, "zone-c": 1 },
      hotSpares: leased ? 0 : 3,
      emergencyGraceSeconds: 0,
      plannedGraceSeconds: 1,
    });
    for (const [i, claim] of claims.entries())
      await createScopedClaim(client, scope, ns, claim, pool, 10 * (i + 1), { requeueOnRevoke: true });
    await createService(client, scope, ns, "kv", pool, {
      failureDetection: { probePeriodMilliseconds: 100, probeTimeoutMilliseconds: 50, failureThreshold: 3 },
    });
    let epoch = 1;
    // Other suites share the cluster (and may take nodes down): a failover this loop did not cause
    // is let finish and left out of the samples.
    let count = 0;
    let foreign = 0;
    while (samples.length < failovers) {
      const { service } = await waitForServing(client, ns, "kv", epoch, 60_000);
      // Every tenant slot leased again before the next failure, so each failover revokes one.
      for (const claim of claims)
        await eventually(
          `${claim} Bound`,
          async () => (await getClaim(client, ns, claim)).status?.phase === "Bound",
          60_000,
        );
      const fault = Date.now();
      const injected = await makePodNotReady(client, ns, service.status!.head!.pod!).then(
        () => true,
        (err: unknown) => {
          if ((err as { code?: number }).code !== 404) throw err;
          return false;
        },
      );
      const done = await waitForFailover(client, ns, "kv", ++count, 120_000);
      const last = done.status!.lastFailover!;
      epoch = done.status!.epoch!;
      count = done.status!.failoverCount!;
      if (!injected || last.reason !== "PodNotReady") {
        foreign++;
        continue;
      }
      const at = (step: string) => Date.parse(last.timeline!.find((t) => t.step === step)!.at);
      const detected = Date.parse(last.startedAt);
      const readyAt = kubelet?.readyAt(done.status!.head!.pod!);
      const marks = last
        .timeline!.slice(0, last.timeline!.findIndex((t) => t.step === "RoutingSwitched") + 1)
        .map((t) => ({ step: t.step as string, at: Date.parse(t.at) }));
      if (readyAt !== undefined) marks.splice(marks.length - 1, 0, { step: "Ready", at: readyAt });
      const steps = Object.fromEntries(
        marks.slice(1).map((m, i) => [`${marks[i]!.step} -> ${m.step}`, m.at - marks[i]!.at]),
      );
      samples.push({
        detectToBoundMs: at("HeadStarted") - detected,
        detectToSwitchedMs: at("RoutingSwitched") - detected,
        readyToSwitchedMs: readyAt === undefined ? NaN : at("RoutingSwitched") - readyAt,
        operatorMs:
          readyAt === undefined ? NaN : at("HeadStarted") - detected + (at("RoutingSwitched") - readyAt),
        faultToSwitchedMs: at("RoutingSwitched") - fault,
        detectToDoneMs: last.durationMilliseconds ?? 0,
        revoked: last.revokedClaim !== undefined,
        steps,
      });
      process.stdout.write(`\r${name}: ${samples.length}/${failovers}`);
    }
    process.stdout.write(foreign ? ` (${foreign} failovers caused by others left out)\n` : "\n");
    const final = await getService(client, ns, "kv");
    if (final.status?.failoverCount !== count)
      throw new Error(`expected ${count} failovers, status says ${final.status?.failoverCount}`);
  } finally {
    // Claims go while the operator runs, so they let go of their finalizers.
    await deleteService(client, ns, "kv");
    for (const claim of claims) await deleteClaim(client, ns, claim);
    await eventually("claims gone", async () => (await listClaims(client, ns)).length === 0, 30_000).catch(
      () => {},
    );
    await deletePool(client, pool);
    kubelet?.stop();
    await operator.stop();
    await Promise.all([deleteNamespace(client, ns), deleteNamespace(client, opNs)]);
    await sleep(100);
  }
  return samples;
}

await installCrds();
const runs: { name: string; samples: Sample[] }[] = [];
for (const [name, leased] of [
  ["free", false],
  ["revoked", true],
] as const) {
  if (values["compare-lanes"]) {
    runs.push({ name: `${name}, lanes off`, samples: await scenario(`${name}-off`, leased, false) });
    runs.push({ name: `${name}, lanes on`, samples: await scenario(`${name}-on`, leased, true) });
  } else if (baseline) {
    runs.push({ name: `${name}, baseline`, samples: await scenario(`${name}-base`, leased, true, baseline) });
    runs.push({ name: `${name}, this checkout`, samples: await scenario(name, leased) });
  } else runs.push({ name, samples: await scenario(name, leased) });
}

const summary = (samples: Sample[]) => {
  const q = (key: Exclude<keyof Sample, "revoked" | "steps">) => ({
    p50: quantile(
      samples.map((s) => s[key]),
      0.5,
    ),
    p99: quantile(
      samples.map((s) => s[key]),
      0.99,
    ),
  });
  return {
    n: samples.length,
    revoked: samples.filter((s) => s.revoked).length,
    detectToBound: q("detectToBoundMs"),
    detectToSwitched: q("detectToSwitchedMs"),
    readyToSwitched: q("readyToSwitchedMs"),
    operator: q("operatorMs"),
    faultToSwitched: q("faultToSwitchedMs"),
    detectToDone: q("detectToDoneMs"),
    steps: Object.fromEntries(
      [...new Set(samples.flatMap((s) => Object.keys(s.steps)))].map((step) => {
        const values = samples.flatMap((s) => (step in s.steps ? [s.steps[step]!] : []));
        return [step, { p50: quantile(values, 0.5), p99: quantile(values, 0.99) }];
      }),
    ),
  };
};
const summaries = runs.map((r) => ({ name: r.name, figures: summary(r.samples) }));
const rows: [
  string,
  "detectToBound" | "detectToSwitched" | "readyToSwitched" | "operator" | "faultToSwitched" | "detectToDone",
][] = [
  ["detection -> new head bound", "detectToBound"],
  ["detection -> Service switched", "detectToSwitched"],
  ...(values.kubelet === "instant"
    ? ([
        ["new head Ready -> Service switched", "readyToSwitched"],
        ["the operator's part (detection -> bound + Ready -> switched)", "operator"],
      ] as [string, "readyToSwitched" | "operator"][])
    : []),
  ["fault -> Service switched", "faultToSwitched"],
  ["detection -> done (pool refilled)", "detectToDone"],
];
console.log(
  `\n${failovers} failovers per run (ms; ${summaries.map((s) => `${s.name}: ${s.figures.revoked} revoked`).join(", ")})`,
);
console.log(`| interval | ${summaries.map((s) => `${s.name} p50 | p99`).join(" | ")} |`);
console.log(`| --- | ${summaries.map(() => "---: | ---:").join(" | ")} |`);
for (const [label, key] of rows)
  console.log(
    `| ${label} | ${summaries.map((s) => `${s.figures[key].p50} | ${s.figures[key].p99}`).join(" | ")} |`,
  );
console.log(`\nwhere the time goes, step by step (ms)`);
for (const s of summaries)
  console.log(
    `${s.name}: ${Object.entries(s.figures.steps)
      .map(([step, t]) => `${step} ${t.p50}/${t.p99}`)
      .join(", ")}`,
  );
const path = writeResults({
  benchmark: values.label!,
  command: `npx node bench/failover.ts ${process.argv.slice(2).join(" ")}`.trim(),
  figures: { kubelet: values.kubelet, ...Object.fromEntries(summaries.map((s) => [s.name, s.figures])) },
  charts: [
    {
      name: `${values.label}-switch`,
      title: `Detection to head Service switched, ${failovers} failovers each`,
      unit: "ms",
      markerLabel: "p99",
      bars: summaries.map((s) => ({
        label: `${s.name} (p50, p99 marker)`,
        value: s.figures.detectToSwitched.p50,
        marker: s.figures.detectToSwitched.p99,
      })),
    },
  ],
});
console.log(`results: ${path}`);
process.exit(0);
