// Head failover on the test cluster, many times over, timed from the StorageService's own status
// timelines: detection -> new head bound to its node (HeadStarted: the pod is created pinned to the
// slot's node) and detection -> head Service switched (RoutingSwitched). Also the wall clock from the
// fault (the head pod made NotReady through KWOK) to the switch, as a client would see it.
// Two scenarios side by side: a free slot (hot spare) taken, and a tenant's lease revoked.
// The operator runs as its own process (node src/operator/main.ts), managing only this run's pools.
//
//   npx node bench/failover.ts [--failovers 50] [--kube-api-qps 20 --kube-api-burst 30] [--label failover]
// (with the test cluster up: npm run cluster:up). Results go to bench/results/<label>.json.
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
} from "../test/support/kube.ts";
import { startOperator } from "../test/support/operator.ts";
import { deleteClaim, deletePool, getClaim, listClaims, testPoolSelector } from "../test/support/pools.ts";
import { writeResults } from "./chart.ts";

const { values } = parseArgs({
  options: {
    failovers: { type: "string", default: "50" },
    // The operator's client-side API rate limit (its defaults: 20 QPS, bursts of 30).
    "kube-api-qps": { type: "string" },
    "kube-api-burst": { type: "string" },
    label: { type: "string", default: "failover" },
  },
});
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
  faultToSwitchedMs: number;
  detectToDoneMs: number;
  revoked: boolean;
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

async function scenario(name: string, leased: boolean): Promise<Sample[]> {
  const scope = `bench-${run}-${name}`;
  const pool = `bench-${run}-${name}`;
  const opNs = await freshNamespace(client, "bench-op");
  const ns = await freshNamespace(client, "bench");
  const operator = await startOperator({
    namespace: opNs,
    poolSelector: testPoolSelector(scope),
    env: { UNDERSTUDY_LOG_LEVEL: "info", ...limits },
  });
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
      samples.push({
        detectToBoundMs: at("HeadStarted") - detected,
        detectToSwitchedMs: at("RoutingSwitched") - detected,
        faultToSwitchedMs: at("RoutingSwitched") - fault,
        detectToDoneMs: last.durationMilliseconds ?? 0,
        revoked: last.revokedClaim !== undefined,
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
    await operator.stop();
    await Promise.all([deleteNamespace(client, ns), deleteNamespace(client, opNs)]);
    await sleep(100);
  }
  return samples;
}

await installCrds();
const free = await scenario("free", false);
const revoked = await scenario("revoked", true);

const summary = (samples: Sample[]) => ({
  n: samples.length,
  revoked: samples.filter((s) => s.revoked).length,
  detectToBound: {
    p50: quantile(
      samples.map((s) => s.detectToBoundMs),
      0.5,
    ),
    p99: quantile(
      samples.map((s) => s.detectToBoundMs),
      0.99,
    ),
  },
  detectToSwitched: {
    p50: quantile(
      samples.map((s) => s.detectToSwitchedMs),
      0.5,
    ),
    p99: quantile(
      samples.map((s) => s.detectToSwitchedMs),
      0.99,
    ),
  },
  faultToSwitched: {
    p50: quantile(
      samples.map((s) => s.faultToSwitchedMs),
      0.5,
    ),
    p99: quantile(
      samples.map((s) => s.faultToSwitchedMs),
      0.99,
    ),
  },
  detectToDone: {
    p50: quantile(
      samples.map((s) => s.detectToDoneMs),
      0.5,
    ),
    p99: quantile(
      samples.map((s) => s.detectToDoneMs),
      0.99,
    ),
  },
});
const a = summary(free);
const b = summary(revoked);
const ratio = (x: number, y: number) => (y === 0 ? "—" : `${(x / y).toFixed(2)}x`);
const rows: [string, keyof typeof a][] = [
  ["detection -> new head bound", "detectToBound"],
  ["detection -> Service switched", "detectToSwitched"],
  ["fault -> Service switched", "faultToSwitched"],
  ["detection -> done (pool refilled)", "detectToDone"],
];
console.log(
  `\n${failovers} failovers per scenario (ms; free: ${a.revoked} revoked, revoked: ${b.revoked} revoked)`,
);
console.log("| interval | free slot p50 | p99 | revoked lease p50 | p99 | revoked/free p50 |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
for (const [label, key] of rows) {
  const x = a[key] as { p50: number; p99: number };
  const y = b[key] as { p50: number; p99: number };
  console.log(`| ${label} | ${x.p50} | ${x.p99} | ${y.p50} | ${y.p99} | ${ratio(y.p50, x.p50)} |`);
}
const path = writeResults({
  benchmark: values.label!,
  command: `npx node bench/failover.ts ${process.argv.slice(2).join(" ")}`.trim(),
  figures: { free: a, revoked: b },
  charts: [
    {
      name: `${values.label}-switch`,
      title: `Detection to head Service switched, ${failovers} failovers each`,
      unit: "ms",
      markerLabel: "p99",
      bars: [
        {
          label: "free slot (p50, p99 marker)",
          value: a.detectToSwitched.p50,
          marker: a.detectToSwitched.p99,
        },
        {
          label: "revoked lease (p50, p99 marker)",
          value: b.detectToSwitched.p50,
          marker: b.detectToSwitched.p99,
        },
      ],
    },
  ],
});
console.log(`results: ${path}`);
process.exit(0);
