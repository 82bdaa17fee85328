// How long a finished tenant pod keeps its slot: from the pod's phase becoming Succeeded or Failed
// to its slot Lease naming no holder, both seen by this benchmark's own watches (one process, one
// clock; the two events are matched by etcd revision, the Lease change after the pod's). The
// operator runs as its own process (node src/operator/main.ts), managing only this run's pools.
// Three scenarios, one after another, each on its own pool of --pods slots:
//
// - job: a Job of --pods pods on a workload claim; KWOK completes each pod (Succeeded) at a random
//   time 10 s to 10 + pods s after it is Ready, so completions come one by one, sometimes close
//   together, and none before every pod runs and the operator has caught up with the setup.
// - bare: --pods bare pods on a workload claim; the benchmark fails one (KWOK's chaos label), waits
//   for its slot to be released, and goes on to the next.
// - inline: --pods inline claims (the operator runs each claim's pod), failed one at a time the same
//   way: the reference the workload mode is compared with.
//
//   npx node bench/workload-release.ts [--pods 30] [--kube-api-qps 20 --kube-api-burst 30]
//     [--scenario job|bare|inline ...] [--label workload-release]
// (with the test cluster up: npm run cluster:up). Results go to bench/results/<label>.json.
import type * as k8s from "@kubernetes/client-node";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { labels } from "../src/controllers/labels.ts";
import { Informer } from "../src/kube/informer.ts";
import { core } from "../src/kube/resources.ts";
import { installCrds } from "../test/support/crds.ts";
import {
  deleteNamespace,
  eventually,
  freshNamespace,
  isPodReady,
  makePodFailed,
  testClient,
  testKubeConfig,
} from "../test/support/kube.ts";
import { parseSamples, startOperator, type OperatorProcess } from "../test/support/operator.ts";
import {
  claimManifest,
  createClaim,
  createPool,
  deleteClaim,
  deletePool,
  kwokCompletionAnnotations,
  listClaims,
  poolManifest,
  testPoolSelector,
  workloadClaimManifest,
  workloadPodTemplate,
} from "../test/support/pools.ts";
import { listPods, livePods } from "../test/support/workloads.ts";
import { percentile, writeResults } from "./chart.ts";

const { values } = parseArgs({
  options: {
    pods: { type: "string", default: "30" },
    label: { type: "string", default: "workload-release" },
    // Only these scenarios (job, bare, inline); all by default.
    scenario: { type: "string", multiple: true },
    // The operator's client-side API rate limit (its defaults: 20 QPS, bursts of 30).
    "kube-api-qps": { type: "string" },
    "kube-api-burst": { type: "string" },
  },
});
const pods = Number(values.pods);
const limits: Record<string, string> = {
  ...(values["kube-api-qps"] ? { UNDERSTUDY_KUBE_API_QPS: values["kube-api-qps"] } : {}),
  ...(values["kube-api-burst"] ? { UNDERSTUDY_KUBE_API_BURST: values["kube-api-burst"] } : {}),
};
const client = testClient();
const run = `wlrel-${Date.now().toString(36)}`;

/**
 * The pods of one namespace and the slot Leases of one pool, as this process's watches see them:
 * when each pod was first seen finished (and on which slot), and every change of a Lease's holder.
 */
class ReleaseWatch {
  private readonly finished = new Map<string, { slot: string; rv: number; at: number }>();
  private readonly changes: { lease: string; holder: string; rv: number; at: number }[] = [];
  private readonly podInformer: Informer<k8s.V1Pod>;
  private readonly leaseInformer: Informer<k8s.V1Lease>;

  constructor(kc: k8s.KubeConfig, opNs: string, namespace: string, pool: string) {
    this.podInformer = new Informer<k8s.V1Pod>(kc, { resource: core.pods, namespace });
    this.leaseInformer = new Informer<k8s.V1Lease>(kc, {
      resource: core.leases,
      namespace: opNs,
      labelSelector: `${labels.pool}=${pool}`,
    });
    this.podInformer.on((e) => {
      const pod = e.object;
      const phase = pod.status?.phase;
      const slot = pod.metadata?.labels?.[labels.slot];
      if (e.type === "delete" || !slot || (phase !== "Succeeded" && phase !== "Failed")) return;
      if (this.finished.has(pod.metadata!.uid!)) return;
      this.finished.set(pod.metadata!.uid!, {
        slot,
        rv: Number(pod.metadata!.resourceVersion),
        at: performance.now(),
      });
    });
    this.leaseInformer.on((e) => {
      if (e.type === "delete") return;
      this.changes.push({
        lease: e.object.metadata!.name!,
        holder: e.object.spec?.holderIdentity ?? "",
        rv: Number(e.object.metadata!.resourceVersion),
        at: performance.now(),
      });
    });
  }

  start = () => Promise.all([this.podInformer.start(), this.leaseInformer.start()]);

  stop(): void {
    this.podInformer.stop();
    this.leaseInformer.stop();
  }

  /** Milliseconds from each finished pod seen to its slot seen free, for the pods whose slot was. */
  releases(): number[] {
    return [...this.finished.values()].flatMap(({ slot, rv, at }) => {
      const free = this.changes.find((c) => c.lease === slot && c.rv > rv && c.holder === "");
      return free ? [Math.max(0, free.at - at)] : [];
    });
  }
}

interface Scenario {
  key: "job" | "bare" | "inline";
  name: string;
  /** Creates the claims and pods (bare, inline: resolves once every pod runs on its slot). */
  setUp(ns: string, pool: string): Promise<void>;
  /** Finishes the pods (or waits for them to finish), returns once every release was seen. */
  finish(ns: string, watch: ReleaseWatch): Promise<void>;
}

const runningOnSlots = async (ns: string, selector: string) =>
  eventually(
    `${pods} pods running on slots`,
    async () =>
      livePods(await listPods(client, ns, selector)).filter(
        (p) => isPodReady(p) && p.metadata?.labels?.[labels.slot],
      ).length === pods,
    120_000,
  );

/** Fails each pod in turn (KWOK's chaos label), waiting for its release before the next. */
async function failOneByOne(ns: string, names: string[], watch: ReleaseWatch): Promise<void> {
  for (const [i, name] of names.entries()) {
    await makePodFailed(client, ns, name);
    await eventually(`${name} released`, async () => watch.releases().length > i, 60_000, 10);
    process.stdout.write(`\r  ${i + 1}/${names.length}`);
    await sleep(100);
  }
  process.stdout.write("\n");
}

const podBody = (template: ReturnType<typeof workloadPodTemplate>, name: string) =>
  ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { ...template.metadata, name },
    spec: template.spec,
  }) as k8s.V1Pod;
const names = (prefix: string) => Array.from({ length: pods }, (_, i) => `${prefix}-${i}`);

const scenarios: Scenario[] = [
  {
    key: "job",
    name: "job (Succeeded, KWOK's timing)",
    async setUp(ns, pool) {
      await createClaim(client, workloadClaimManifest(ns, "job", pool, 10, { slots: pods }));
      const template = workloadPodTemplate("job", "10s", { restartPolicy: "Never" });
      template.metadata.annotations["pod-complete.stage.kwok.x-k8s.io/jitter-delay"] = `${10 + pods}s`;
      await client.objects.create({
        apiVersion: "batch/v1",
        kind: "Job",
        metadata: { name: "job", namespace: ns },
        spec: { parallelism: pods, completions: pods, template },
      } as k8s.KubernetesObject);
    },
    async finish(_ns, watch) {
      await eventually(
        `${pods} pods finished and released`,
        async () => {
          process.stdout.write(`\r  ${watch.releases().length}/${pods}`);
          return watch.releases().length === pods;
        },
        180_000,
        100,
      );
      process.stdout.write("\n");
    },
  },
  {
    key: "bare",
    name: "bare (Failed, one at a time)",
    async setUp(ns, pool) {
      await createClaim(client, workloadClaimManifest(ns, "bare", pool, 10, { slots: pods }));
      const template = workloadPodTemplate("bare");
      for (const name of names("bare"))
        await client.core.createNamespacedPod({ namespace: ns, body: podBody(template, name) });
      await runningOnSlots(ns, "app=bare");
    },
    finish: (ns, watch) => failOneByOne(ns, names("bare"), watch),
  },
  {
    key: "inline",
    name: "inline (Failed, one at a time)",
    async setUp(ns, pool) {
      for (const name of names("inline")) await createClaim(client, claimManifest(ns, name, pool, 10));
      await runningOnSlots(ns, labels.claim);
    },
    finish: (ns, watch) =>
      failOneByOne(
        ns,
        names("inline").map((claim) => `${claim}-tenant`),
        watch,
      ),
  },
];

/**
 * Waits until the operator has caught up with the setup (no key queued, at most one reconcile in
 * a second), so the first pod's release does not queue behind the setup's status writes; gives up
 * waiting after 30 s.
 */
async function settled(operator: OperatorProcess): Promise<void> {
  const reading = async () => {
    const samples = parseSamples(await operator.metrics());
    const sum = (name: string) =>
      samples.filter((s) => s.name === name).reduce((total, s) => total + s.value, 0);
    return { reconciles: sum("understudy_reconcile_total"), queued: sum("understudy_workqueue_depth") };
  };
  let last = await reading();
  await eventually(
    "the operator idle",
    async () => {
      const now = await reading();
      const idle = now.queued === 0 && now.reconciles - last.reconciles <= 1;
      last = now;
      return idle;
    },
    30_000,
    1000,
  ).catch(() => console.log("  (the operator did not go idle within 30 s; measuring anyway)"));
}

async function measure(scenario: Scenario, index: number): Promise<number[]> {
  const pool = `${run}-${index}`;
  const opNs = await freshNamespace(client, "bench-op");
  const ns = await freshNamespace(client, "bench");
  const operator = await startOperator({
    namespace: opNs,
    poolSelector: testPoolSelector(run),
    env: { UNDERSTUDY_LOG_LEVEL: "info", ...limits },
  });
  const watch = new ReleaseWatch(testKubeConfig(), opNs, ns, pool);
  await watch.start();
  try {
    const perZone = Math.ceil(pods / 3);
    await createPool(
      client,
      poolManifest(
        pool,
        {
          zones: { "zone-a": perZone, "zone-b": perZone, "zone-c": pods - 2 * perZone },
          plannedGraceSeconds: 1,
          tenantPods: kwokCompletionAnnotations,
        },
        run,
      ),
    );
    console.log(`${scenario.name}: ${pods} pods`);
    await scenario.setUp(ns, pool);
    await settled(operator);
    await scenario.finish(ns, watch);
    return watch.releases();
  } finally {
    watch.stop();
    for (const claim of await listClaims(client, ns)) await deleteClaim(client, ns, claim.metadata.name!);
    await eventually("claims gone", async () => (await listClaims(client, ns)).length === 0, 60_000).catch(
      () => {},
    );
    await deletePool(client, pool);
    await operator.stop();
    await Promise.all([deleteNamespace(client, ns), deleteNamespace(client, opNs)]);
  }
}

await installCrds();
const results: { name: string; samples: number[] }[] = [];
for (const [i, scenario] of scenarios.entries())
  if (!values.scenario || values.scenario.includes(scenario.key))
    results.push({ name: scenario.name, samples: await measure(scenario, i) });

const round = (ms: number) => Math.round(ms);
const figures = results.map(({ name, samples }) => ({
  name,
  n: samples.length,
  p50: round(percentile(samples, 50)),
  p90: round(percentile(samples, 90)),
  p99: round(percentile(samples, 99)),
  max: round(Math.max(...samples)),
  /** In the order the pods finished. */
  samples: samples.map(round),
}));
const inline = figures.find((f) => f.name.startsWith("inline")) ?? figures[0]!;
console.log(`\nfinished pod -> slot Lease free, ms (${pods} pods per scenario)`);
console.log(`| scenario | n | p50 | p90 | p99 | max | p50 vs ${inline.name.split(" ")[0]} |`);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const f of figures)
  console.log(
    `| ${f.name} | ${f.n} | ${f.p50} | ${f.p90} | ${f.p99} | ${f.max} | ${(f.p50 / inline.p50).toFixed(2)}x |`,
  );
const path = writeResults({
  benchmark: values.label!,
  command: `npx node bench/workload-release.ts ${process.argv.slice(2).join(" ")}`.trim(),
  figures: Object.fromEntries(figures.map(({ name, ...f }) => [name, f])),
  charts: [
    {
      name: values.label!,
      title: `Finished pod to slot Lease free, ${pods} pods each`,
      unit: "ms",
      markerLabel: "p99",
      bars: figures.map((f) => ({ label: `${f.name} (p50, p99 marker)`, value: f.p50, marker: f.p99 })),
    },
  ],
});
console.log(`results: ${path}`);
process.exit(0);
