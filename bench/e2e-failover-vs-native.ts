// Failover, side by side on the same test cluster in one run: how long clients cannot write when the
// head's node is lost (and when the head process is killed), with
//   (a) Understudy: the operator probes the head (200 ms period, 2 misses) and fails over onto a pool
//       slot, revoking a tenant, raising the epoch;
//   (b) the Kubernetes-native alternative: the head as a Deployment (1 replica) with a high
//       PriorityClass; spare capacity held by low-priority placeholder pods (overprovisioning) and
//       low-priority tenants filling the nodes; recovery by the node controller's taint-based
//       eviction, the ReplicaSet's replacement pod, preemption of a placeholder, and the Service's
//       endpoints. The head takes its epoch from the clock at start (no operator to raise it).
// The head and the servers are real processes (the pod runner starts them for the pods KWOK marks
// Running); clients are the real client library, finding the head through status or the head
// Service's endpoints (computed from its selector: EndpointSlices refuse loopback pod IPs). Write unavailability is the longest stretch without an acknowledged
// write, among those ending after the fault.
//
// What is simulated, and how it bends the comparison:
// - KWOK plays the kubelet. A "lost node" is reported NotReady at once (KWOK's chaos stage): a real
//   node's heartbeats would stop and the node controller would wait node-monitor-grace-period
//   (50 s in v1.36) before marking it. Understudy's probe does not wait for that; the native path
//   does, so the real native figure is higher by up to 50 s than what is measured here.
// - Default tolerationSeconds is 300 s (DefaultTolerationSeconds admission). The native runs are
//   measured with a tuned toleration (--tuned-toleration, default 2 s); the default figure is computed
//   as measured - tuned + 300 s, unless --measure-default runs it for real (over 5 minutes a run).
// - KWOK reports pods Ready as soon as they run: no readiness probe period is waited (10 s by
//   default, 1 s tuned), which favours the native path.
// - A killed process is restarted by the pod runner as a kubelet would (first restart at once).
//
//   node test/cluster/with-cluster.ts node bench/e2e-failover-vs-native.ts [--runs 10] [--kill-runs 5]
//        [--tuned-toleration 2] [--measure-default] [--only understudy|native]
import type * as k8s from "@kubernetes/client-node";
import { Command, Option } from "commander";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { CheckResult } from "../src/dataplane/linearizability.ts";
import { isNotFound } from "../src/kube/errors.ts";
import {
  deleteNamespace,
  eventually,
  freshNamespace,
  makeNodeNotReady,
  restoreNode,
  testClient,
  testKubeConfig,
} from "../test/support/kube.ts";
import { PodRunner } from "../test/support/pod-runner.ts";
import { runScenario, type Fault } from "../test/e2e/support/scenario.ts";
import { E2E_DIR, Stage } from "../test/e2e/support/stage.ts";
import { HeadDirectory, Traffic, writeUnavailability } from "../test/e2e/support/traffic.ts";
import { percentile, writeResults, type ChartSpec } from "./chart.ts";

const program = new Command("e2e-failover-vs-native")
  .addOption(new Option("--runs <n>", "node-loss runs per variant").default("10"))
  .addOption(new Option("--kill-runs <n>", "process-kill runs per variant").default("5"))
  .addOption(new Option("--tuned-toleration <s>", "native tolerationSeconds, tuned").default("2"))
  .addOption(new Option("--measure-default", "also run the native default (300 s toleration) once"))
  .addOption(new Option("--only <which>", "run one side only").choices(["understudy", "native"]))
  .parse();
const opts = program.opts<{
  runs: string;
  killRuns: string;
  tunedToleration: string;
  measureDefault?: boolean;
  only?: "understudy" | "native";
}>();
const RUNS = Number(opts.runs);
const KILL_RUNS = Number(opts.killRuns);
const TUNED = Number(opts.tunedToleration);
const DEFAULT_TOLERATION_S = 300;
const NODE_MONITOR_GRACE_S = 50;

const log = (m: string) => console.log(`[bench] ${m}`);

interface Variant {
  label: string;
  gapsMs: number[];
  /** Extra per-run figures (detection, timeline) for the record. */
  details: Record<string, unknown>[];
  note?: string;
}

const summary = (v: Variant) => ({
  label: v.label,
  runs: v.gapsMs.length,
  p50Ms: percentile(v.gapsMs, 50),
  p99Ms: percentile(v.gapsMs, 99),
  minMs: Math.min(...v.gapsMs),
  maxMs: Math.max(...v.gapsMs),
  gapsMs: v.gapsMs,
  note: v.note,
  details: v.details,
});

// ---------- (a) Understudy ----------

const understudyNodeLost: Fault = {
  name: "bench-node",
  async inject(ctx) {
    ctx.stage.touched(ctx.headNode);
    await Promise.all([
      ctx.stage.runner.killNode(ctx.headNode),
      makeNodeNotReady(ctx.stage.client, ctx.headNode),
    ]);
  },
};
const understudyKilled: Fault = {
  name: "bench-kill",
  async inject(ctx) {
    await ctx.stage.runner.kill(ctx.headPod, "SIGKILL", { namespace: ctx.stage.serviceNs });
  },
};

async function understudy(): Promise<Variant[]> {
  const stage = await Stage.create({ prefix: "bench-us", slotsPerZone: 2 });
  const node: Variant = { label: "Understudy, node lost", gapsMs: [], details: [] };
  const kill: Variant = { label: "Understudy, head process killed", gapsMs: [], details: [] };
  try {
    for (const [variant, fault, runs] of [
      [node, understudyNodeLost, RUNS],
      [kill, understudyKilled, KILL_RUNS],
    ] as const) {
      for (let run = 0; run < runs; run++) {
        const r = await runScenario(stage, fault, run);
        if (r.verdict.result !== "ok") log(`WARNING: ${variant.label} run ${run} not linearizable`);
        variant.gapsMs.push(r.writeUnavailabilityMs);
        variant.details.push({
          writeUnavailabilityMs: r.writeUnavailabilityMs,
          detectionMs: r.detectionMs,
          failoverMs: r.failoverMs,
          newHeadReadyMs: r.newHeadReadyMs,
          timeline: r.timeline,
          linearizable: r.verdict.result === "ok",
        });
      }
    }
  } finally {
    await stage.teardown();
  }
  return [node, kill];
}

// ---------- (b) Kubernetes-native ----------

const HEAD_PRIORITY = "bench-native-head";
const TENANT_PRIORITY = "bench-native-tenant";
const PLACEHOLDER_PRIORITY = "bench-native-overprovisioning";
const SIZE = { cpu: "500m", memory: "512Mi" };
const ZONES = ["zone-a", "zone-b", "zone-c"];
const HEAD_NODES = ZONES.map((z) => `kwok-${z}-2`);

const cpuMillis = (q: string | undefined) =>
  q === undefined ? 0 : q.endsWith("m") ? Number(q.slice(0, -1)) : Math.round(Number(q) * 1000);

class NativeStage {
  readonly client = testClient("understudy-bench");
  readonly kc = testKubeConfig();
  ns = "";
  runner!: PodRunner;
  directory!: HeadDirectory;

  async setUp(): Promise<void> {
    this.ns = await freshNamespace(this.client, "bench-native");
    for (const [name, value] of [
      [HEAD_PRIORITY, 1_000_000],
      [TENANT_PRIORITY, -5],
      [PLACEHOLDER_PRIORITY, -10],
    ] as const) {
      await this.client.scheduling
        .createPriorityClass({
          body: {
            metadata: { name },
            value,
            ...(value < 0 ? { preemptionPolicy: "Never" } : {}),
            description: "failover-vs-native benchmark",
          },
        })
        .catch((err: unknown) => {
          if ((err as { code?: number }).code !== 409) throw err;
        });
    }
    this.runner = await PodRunner.start({
      kubeConfig: this.kc,
      namespaces: [this.ns],
      // No operator raises the epoch: the head takes one from the clock at every start.
      envAtStart: (_pod, role): Record<string, string> =>
        role === "head" ? { UNDERSTUDY_EPOCH: String(Date.now()) } : {},
      restartBackoff: { initialMs: 0, maxMs: 0 },
    });
    await this.client.core.createNamespacedSecret({
      namespace: this.ns,
      body: { metadata: { name: "token" }, stringData: { token: "native-bench-token" } },
    });
    const servers = ZONES.map((z) => `${z}=server-${z}.servers.${this.ns}.svc:7001`).join(",");
    for (const zone of ZONES) {
      await this.client.core.createNamespacedPod({ namespace: this.ns, body: this.serverPod(zone, servers) });
    }
    // Overprovisioning: one placeholder per zone on the head's candidate nodes.
    await this.client.apps.createNamespacedDeployment({ namespace: this.ns, body: this.placeholders() });
    await eventually(
      "placeholders Running",
      async () =>
        (await this.pods("app=overprovisioning")).filter((p) => p.status?.phase === "Running").length === 3,
      60_000,
    );
    await this.client.core.createNamespacedService({
      namespace: this.ns,
      body: {
        metadata: { name: "native-head" },
        spec: { selector: { app: "native-head" }, ports: [{ name: "client", port: 7000, targetPort: 7000 }] },
      },
    });
    this.directory = await new HeadDirectory(this.kc, this.ns, "native").start();
  }

  async pods(selector: string): Promise<k8s.V1Pod[]> {
    return (await this.client.core.listNamespacedPod({ namespace: this.ns, labelSelector: selector })).items;
  }

  serverPod(zone: string, servers: string): k8s.V1Pod {
    return {
      metadata: { name: `server-${zone}`, labels: { "understudy.dev/role": "server", app: "servers" } },
      spec: {
        nodeName: `kwok-${zone}-1`,
        hostname: `server-${zone}`,
        subdomain: "servers",
        containers: [
          {
            name: "server",
            image: "understudy:dev",
            args: ["node", "src/dataplane/main.ts", "server"],
            env: [
              { name: "UNDERSTUDY_LISTEN", value: "0.0.0.0:7001" },
              { name: "UNDERSTUDY_ZONE", value: zone },
              { name: "UNDERSTUDY_SERVERS", value: servers },
              { name: "UNDERSTUDY_ADVERTISE", value: `server-${zone}.servers.${this.ns}.svc:7001` },
              { name: "UNDERSTUDY_DATA_DIR", value: "/data" },
              { name: "UNDERSTUDY_TOKEN", valueFrom: { secretKeyRef: { name: "token", key: "token" } } },
            ],
          },
        ],
      },
    };
  }

  placeholders(): k8s.V1Deployment {
    return {
      metadata: { name: "overprovisioning" },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: "overprovisioning" } },
        template: {
          metadata: { labels: { app: "overprovisioning" } },
          spec: {
            priorityClassName: PLACEHOLDER_PRIORITY,
            terminationGracePeriodSeconds: 0,
            affinity: headNodeAffinity(),
            topologySpreadConstraints: [
              {
                maxSkew: 1,
                topologyKey: "topology.kubernetes.io/zone",
                whenUnsatisfiable: "DoNotSchedule",
                labelSelector: { matchLabels: { app: "overprovisioning" } },
              },
            ],
            containers: [
              {
                name: "pause",
                image: "registry.k8s.io/pause:3.10",
                resources: { requests: SIZE, limits: SIZE },
              },
            ],
          },
        },
      },
    };
  }

  head(tolerationSeconds: number | undefined, servers: string): k8s.V1Deployment {
    const tolerations: k8s.V1Toleration[] | undefined =
      tolerationSeconds === undefined
        ? undefined // DefaultTolerationSeconds admission adds 300 s
        : ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"].map((key) => ({
            key,
            operator: "Exists",
            effect: "NoExecute",
            tolerationSeconds,
          }));
    return {
      metadata: { name: "native-head" },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: "native-head" } },
        template: {
          metadata: { labels: { app: "native-head", "understudy.dev/role": "head" } },
          spec: {
            priorityClassName: HEAD_PRIORITY,
            terminationGracePeriodSeconds: 3,
            affinity: headNodeAffinity(),
            ...(tolerations ? { tolerations } : {}),
            containers: [
              {
                name: "head",
                image: "understudy:dev",
                args: ["node", "src/dataplane/main.ts", "head"],
                ports: [{ name: "client", containerPort: 7000 }],
                env: [
                  { name: "UNDERSTUDY_LISTEN", value: "0.0.0.0:7000" },
                  { name: "UNDERSTUDY_SERVERS", value: servers },
                  { name: "UNDERSTUDY_TOKEN", valueFrom: { secretKeyRef: { name: "token", key: "token" } } },
                ],
                readinessProbe: {
                  httpGet: { path: "/readyz", port: 7000 },
                  periodSeconds: 1,
                  failureThreshold: 1,
                },
                resources: { requests: SIZE, limits: SIZE },
              },
            ],
          },
        },
      },
    };
  }

  /** Low-priority tenants take every free millicore of every node, so only preemption makes room. */
  async fillNodes(): Promise<void> {
    const nodes = (await this.client.core.listNode({ labelSelector: "type=kwok" })).items;
    const pods = (await this.client.core.listPodForAllNamespaces()).items.filter(
      (p) => p.spec?.nodeName && !["Succeeded", "Failed"].includes(p.status?.phase ?? ""),
    );
    for (const node of nodes) {
      const name = node.metadata!.name!;
      const used = pods
        .filter((p) => p.spec!.nodeName === name)
        .flatMap((p) => p.spec!.containers)
        .reduce((sum, c) => sum + cpuMillis(c.resources?.requests?.cpu as string | undefined), 0);
      const free = cpuMillis(node.status!.allocatable!.cpu) - used;
      if (free <= 0) continue;
      await this.client.core.createNamespacedPod({
        namespace: this.ns,
        body: {
          metadata: { generateName: `tenant-${name}-`, labels: { app: "tenant" } },
          spec: {
            nodeName: name,
            priorityClassName: TENANT_PRIORITY,
            terminationGracePeriodSeconds: 0,
            containers: [
              {
                name: "work",
                image: "registry.example/batch:1",
                resources: {
                  requests: { cpu: `${free}m`, memory: "64Mi" },
                  limits: { cpu: `${free}m`, memory: "64Mi" },
                },
              },
            ],
          },
        },
      });
    }
  }

  async deployHead(tolerationSeconds: number | undefined): Promise<k8s.V1Pod> {
    const servers = ZONES.map((z) => `${z}=server-${z}.servers.${this.ns}.svc:7001`).join(",");
    await this.client.apps
      .deleteNamespacedDeployment({ name: "native-head", namespace: this.ns, gracePeriodSeconds: 0 })
      .catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
    await eventually("no head pods", async () => (await this.pods("app=native-head")).length === 0, 60_000);
    await this.client.core.deleteCollectionNamespacedPod({
      namespace: this.ns,
      labelSelector: "app=tenant",
      gracePeriodSeconds: 0,
    });
    await eventually("no tenants", async () => (await this.pods("app=tenant")).length === 0, 60_000);
    await eventually(
      "placeholders Running",
      async () =>
        (await this.pods("app=overprovisioning")).filter((p) => p.status?.phase === "Running").length === 3,
      120_000,
    );
    await this.client.apps.createNamespacedDeployment({
      namespace: this.ns,
      body: this.head(tolerationSeconds, servers),
    });
    const pod = await eventually(
      "the head pod Running",
      async () =>
        (await this.pods("app=native-head")).find((p) => p.status?.phase === "Running" && p.status.podIP),
      60_000,
    );
    await this.runner.waitForListening(pod.metadata!.name!, this.ns, 60_000);
    await this.fillNodes();
    await eventually("the head endpoint", () => this.directory.fromEndpoints(), 30_000);
    return pod;
  }

  /** Node lost: KWOK reports NotReady, the node's processes die; recovery is Kubernetes' own. */
  async nodeLostRun(
    tolerationSeconds: number | undefined,
    run: number,
  ): Promise<{ gapMs: number; detail: Record<string, unknown> }> {
    const head = await this.deployHead(tolerationSeconds);
    const node = head.spec!.nodeName!;
    const traffic = new Traffic({
      clients: Array.from({ length: 4 }, () => ({
        resolve: this.directory.resolver("endpoints"),
        label: "endpoints",
      })),
      seed: 100 + run,
      keyPrefix: `node-${tolerationSeconds ?? "default"}-${run}-`,
    }).start();
    const marks: Record<string, number> = {};
    try {
      await sleep(1_500);
      const faultAt = performance.now();
      await Promise.all([this.runner.killNode(node), makeNodeNotReady(this.client, node)]);
      // Watch the native path's milestones.
      await eventually(
        "a replacement head serving writes",
        async () => {
          const now = performance.now() - faultAt;
          const n = await this.client.core.readNode({ name: node });
          if (marks.tainted === undefined && n.spec?.taints?.some((t) => t.effect === "NoExecute"))
            marks.tainted = now;
          const pods = await this.pods("app=native-head");
          const old = pods.find((p) => p.metadata!.name === head.metadata!.name);
          if (marks.evicted === undefined && (!old || old.metadata?.deletionTimestamp)) marks.evicted = now;
          const next = pods.find((p) => p.metadata!.name !== head.metadata!.name);
          if (marks.replacementCreated === undefined && next) marks.replacementCreated = now;
          if (marks.scheduled === undefined && next?.spec?.nodeName) marks.scheduled = now;
          if (marks.running === undefined && next?.status?.phase === "Running") marks.running = now;
          return traffic.writeAcks.some((a) => a.call > faultAt + (marks.running ?? Infinity));
        },
        (tolerationSeconds ?? DEFAULT_TOLERATION_S) * 1000 + 120_000,
        100,
      );
      await sleep(1_000);
      await traffic.stop();
      const gap = writeUnavailability(traffic.writeAcks, faultAt);
      const verdict = traffic.check();
      const preempted = (await this.pods("app=overprovisioning")).filter(
        (p) => p.status?.phase !== "Running",
      ).length;
      return {
        gapMs: Math.round(gap.gapMs),
        detail: {
          writeUnavailabilityMs: Math.round(gap.gapMs),
          tolerationSeconds: tolerationSeconds ?? DEFAULT_TOLERATION_S,
          milestonesMs: Object.fromEntries(Object.entries(marks).map(([k, v]) => [k, Math.round(v)])),
          placeholdersNotRunning: preempted,
          linearizable: recordVerdict(verdict, `native-node-${run}`),
        },
      };
    } finally {
      await traffic.stop();
      await restoreNode(this.client, node);
      await this.runner.reviveNode(node);
    }
  }

  /** Process killed: the kubelet restarts the container at once; the head takes a new epoch. */
  async killRun(run: number): Promise<{ gapMs: number; detail: Record<string, unknown> }> {
    const head = await this.deployHead(TUNED);
    const traffic = new Traffic({
      clients: Array.from({ length: 4 }, () => ({
        resolve: this.directory.resolver("endpoints"),
        label: "endpoints",
      })),
      seed: 200 + run,
      keyPrefix: `kill-${run}-`,
    }).start();
    try {
      await sleep(1_500);
      const faultAt = performance.now();
      await this.runner.kill(head.metadata!.name!, "SIGKILL", { namespace: this.ns });
      await eventually(
        "writes after the restart",
        () => traffic.writeAcks.filter((a) => a.call > faultAt).length >= 20,
        60_000,
        50,
      );
      await sleep(1_000);
      await traffic.stop();
      const gap = writeUnavailability(traffic.writeAcks, faultAt);
      return {
        gapMs: Math.round(gap.gapMs),
        detail: {
          writeUnavailabilityMs: Math.round(gap.gapMs),
          linearizable: recordVerdict(traffic.check(), `native-kill-${run}`),
        },
      };
    } finally {
      await traffic.stop();
    }
  }

  async teardown(): Promise<void> {
    this.directory?.stop();
    await this.runner?.stop();
    await deleteNamespace(this.client, this.ns);
    for (const name of [HEAD_PRIORITY, TENANT_PRIORITY, PLACEHOLDER_PRIORITY]) {
      await this.client.scheduling.deletePriorityClass({ name }).catch(() => undefined);
    }
  }
}

/** True when linearizable; otherwise writes the checker's explanation next to the e2e logs. */
function recordVerdict(verdict: CheckResult, name: string): boolean {
  if (verdict.result === "ok") return true;
  mkdirSync(E2E_DIR, { recursive: true });
  const file = join(E2E_DIR, `bench-${name}-violation.txt`);
  writeFileSync(file, verdict.result === "illegal" ? verdict.operations.join("\n") : verdict.reason);
  log(`history of ${name} is not linearizable: ${file}`);
  return false;
}

function headNodeAffinity(): k8s.V1Affinity {
  return {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [
          { matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: HEAD_NODES }] },
        ],
      },
    },
  };
}

async function native(): Promise<Variant[]> {
  const stage = new NativeStage();
  const tuned: Variant = {
    label: `native, node lost, tolerationSeconds ${TUNED}`,
    gapsMs: [],
    details: [],
  };
  const kill: Variant = { label: "native, head process killed (kubelet restart)", gapsMs: [], details: [] };
  const variants = [tuned];
  try {
    await stage.setUp();
    for (let run = 0; run < RUNS; run++) {
      const r = await stage.nodeLostRun(TUNED, run);
      log(`${tuned.label} run ${run}: ${r.gapMs} ms ${JSON.stringify(r.detail.milestonesMs)}`);
      tuned.gapsMs.push(r.gapMs);
      tuned.details.push(r.detail);
    }
    if (opts.measureDefault) {
      const measured: Variant = {
        label: "native, node lost, default 300 s (measured)",
        gapsMs: [],
        details: [],
      };
      const r = await stage.nodeLostRun(undefined, 0);
      log(`${measured.label}: ${r.gapMs} ms`);
      measured.gapsMs.push(r.gapMs);
      measured.details.push(r.detail);
      variants.push(measured);
    }
    for (let run = 0; run < KILL_RUNS; run++) {
      const r = await stage.killRun(run);
      log(`${kill.label} run ${run}: ${r.gapMs} ms`);
      kill.gapsMs.push(r.gapMs);
      kill.details.push(r.detail);
    }
  } finally {
    await stage.teardown();
  }
  const computed: Variant = {
    label: "native, node lost, default 300 s (computed)",
    gapsMs: tuned.gapsMs.map((g) => g - TUNED * 1000 + DEFAULT_TOLERATION_S * 1000),
    details: [],
    note: `measured tuned - ${TUNED} s + ${DEFAULT_TOLERATION_S} s (default tolerationSeconds); a real node loss adds up to node-monitor-grace-period (${NODE_MONITOR_GRACE_S} s) before NotReady`,
  };
  const realWorld: Variant = {
    label: `native, node lost, defaults incl. ${NODE_MONITOR_GRACE_S} s heartbeat grace (computed)`,
    gapsMs: computed.gapsMs.map((g) => g + NODE_MONITOR_GRACE_S * 1000),
    details: [],
    note: "the computed default plus node-monitor-grace-period: what a node that stops heartbeating costs",
  };
  return [...variants, computed, realWorld, kill];
}

const started = Date.now();
const all: Variant[] = [];
if (opts.only !== "native") all.push(...(await understudy()));
if (opts.only !== "understudy") all.push(...(await native()));
const summaries = all.map(summary);
const seconds = (ms: number) => (ms / 1000).toFixed(ms < 10_000 ? 2 : 1);
console.log(
  `\nFailover vs Kubernetes-native: client-observed write unavailability (${((Date.now() - started) / 60000).toFixed(1)} min)`,
);
console.log("variant                                                         | runs |   p50 s |   p99 s");
for (const s of summaries) {
  console.log(
    `${s.label.padEnd(63)} | ${String(s.runs).padStart(4)} | ${seconds(s.p50Ms).padStart(7)} | ${seconds(s.p99Ms).padStart(7)}`,
  );
}
const find = (prefix: string) => summaries.find((s) => s.label.startsWith(prefix));
const us = find("Understudy, node lost");
const ratios: Record<string, number> = {};
if (us) {
  for (const s of summaries.filter((x) => x.label.startsWith("native, node lost"))) {
    ratios[`${s.label} / Understudy (p50)`] = s.p50Ms / us.p50Ms;
    ratios[`${s.label} / Understudy (p99)`] = s.p99Ms / us.p99Ms;
  }
}
const usKill = find("Understudy, head process killed");
const nativeKill = find("native, head process killed");
if (usKill && nativeKill) {
  ratios["native process kill / Understudy process kill (p50)"] = nativeKill.p50Ms / usKill.p50Ms;
}
for (const [k, v] of Object.entries(ratios)) console.log(`ratio ${k}: ${v.toFixed(1)}x`);

const charts: ChartSpec[] = [
  {
    name: "failover-vs-native",
    title: "Write unavailability when the head's node is lost (p50, marker p99)",
    unit: "s",
    log: true,
    markerLabel: "p99",
    bars: summaries
      .filter((s) => s.label.includes("node lost"))
      .map((s) => ({ label: s.label, value: s.p50Ms / 1000, marker: s.p99Ms / 1000 })),
  },
  {
    name: "failover-vs-native-process-kill",
    title: "Write unavailability when the head process is killed (p50, marker p99)",
    unit: "s",
    markerLabel: "p99",
    bars: summaries
      .filter((s) => s.label.includes("killed"))
      .map((s) => ({ label: s.label, value: s.p50Ms / 1000, marker: s.p99Ms / 1000 })),
  },
];
const path = writeResults({
  benchmark: opts.only ? `failover-vs-native-${opts.only}` : "failover-vs-native",
  command: `npm run bench:failover-vs-native -- ${process.argv.slice(2).join(" ")}`.trim(),
  figures: {
    runs: RUNS,
    killRuns: KILL_RUNS,
    tunedTolerationSeconds: TUNED,
    defaultTolerationSeconds: DEFAULT_TOLERATION_S,
    nodeMonitorGracePeriodSeconds: NODE_MONITOR_GRACE_S,
    understudyProbe: { periodMs: 200, timeoutMs: 150, failureThreshold: 2 },
    variants: summaries,
    ratios,
  },
  charts,
});
log(`results: ${path}`);
process.exit(0);
