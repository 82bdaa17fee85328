// What the operator process holds with nothing to manage, taken apart: Node itself, the modules it
// loads, and the running operator (informers synced on the test cluster, no pools of its own), run
// from the TypeScript sources (as the tests run it) and compiled (as the image runs it, dist/).
// Each line is its own process; memory is read after a full GC and a settle time.
// `--pods N` first creates N pods that are not the operator's (shaped like a Deployment's, with the
// last-applied annotation kubectl leaves), which every operator caches, then measures the running
// operator again; `--baseline DIR` runs another checkout's compiled operator beside this one's.
//
//   npm run build && npx node bench/operator-memory.ts [--settle-ms 15000] [--pods 2000]
//     [--baseline DIR] [--label operator-memory]
// (with the test cluster up: npm run cluster:up). Results go to bench/results/<label>.json.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type * as k8s from "@kubernetes/client-node";
import { kubeconfigPath } from "../test/cluster/config.ts";
import { deleteNamespace, freshNamespace, testClient } from "../test/support/kube.ts";
import { freePort } from "../test/support/operator.ts";
import { writeResults } from "./chart.ts";

const { values } = parseArgs({
  options: {
    "settle-ms": { type: "string", default: "15000" },
    pods: { type: "string", default: "0" },
    baseline: { type: "string" },
    "populated-only": { type: "boolean", default: false },
    label: { type: "string", default: "operator-memory" },
  },
});
const settleMs = Number(values["settle-ms"]);
const root = join(import.meta.dirname, "..");
const node = join(root, "node_modules/.bin/node");

// Printed by each child on stderr: its memory after a full GC, in bytes.
const sampler = join(mkdtempSync(join(tmpdir(), "understudy-memory-")), "sample.mjs");
writeFileSync(
  sampler,
  `setTimeout(() => {
  globalThis.gc();
  const m = process.memoryUsage();
  process.stderr.write("MEMORY " + JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external }) + "\\n");
  process.exit(0);
}, Number(process.env.SAMPLE_AFTER_MS)).unref?.();
`,
);

interface Memory {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
}

async function measure(args: string[], afterMs: number, env: Record<string, string> = {}): Promise<Memory> {
  const child = spawn(node, ["--expose-gc", "--import", sampler, ...args], {
    cwd: root,
    env: { ...process.env, ...env, SAMPLE_AFTER_MS: String(afterMs) },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  await new Promise((resolve) => child.on("exit", resolve));
  const line = /MEMORY (.*)/.exec(err)?.[1];
  if (!line) throw new Error(`no memory sample from ${args.join(" ")}:\n${err.slice(-2000)}`);
  return JSON.parse(line) as Memory;
}

const imports = (...modules: string[]) => [
  "--input-type=module",
  "-e",
  modules.map((m) => `await import(${JSON.stringify(m)});`).join(" ") + " setInterval(() => {}, 1000);",
];

async function operatorEnv(): Promise<Record<string, string>> {
  return {
    KUBECONFIG: process.env.KUBECONFIG ?? kubeconfigPath,
    UNDERSTUDY_NAMESPACE: "default",
    UNDERSTUDY_LEADER_ELECT: "false",
    UNDERSTUDY_METRICS_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
    // A pool selector no pool matches: the operator watches everything and manages nothing.
    UNDERSTUDY_POOL_SELECTOR: "understudy.dev/memory-bench=none",
    UNDERSTUDY_LOG_LEVEL: "warn",
  };
}

const dist = join(root, "dist/src/operator/main.js");
const cases: [string, () => Promise<Memory>][] = [
  ["Node alone", () => measure(imports(), 500)],
  ["+ @kubernetes/client-node", () => measure(imports("@kubernetes/client-node"), 500)],
  [
    "+ zod, pino, prom-client, commander",
    () => measure(imports("zod", "pino", "prom-client", "commander"), 500),
  ],
  [
    "every operator module, from sources",
    () =>
      measure(imports(join(root, "src/controllers/index.ts"), join(root, "src/operator/manager.ts")), 500),
  ],
  [
    "operator running, from sources",
    async () => measure(["src/operator/main.ts"], settleMs, await operatorEnv()),
  ],
];
if (existsSync(dist))
  cases.push(
    [
      "every operator module, compiled",
      () =>
        measure(
          imports(join(root, "dist/src/controllers/index.js"), join(root, "dist/src/operator/manager.js")),
          500,
        ),
    ],
    ["operator running, compiled", async () => measure([dist], settleMs, await operatorEnv())],
    [
      "operator running, compiled, --max-semi-space-size=8",
      async () => measure(["--max-semi-space-size=8", dist], settleMs, await operatorEnv()),
    ],
  );
else console.log(`(${dist} not built: run npm run build for the compiled lines)`);

const baseline = values.baseline && join(values.baseline, "dist/src/operator/main.js");
type Case = [string, () => Promise<Memory>];
const runningCases = (label: string): Case[] => {
  const out: Case[] = [];
  if (baseline)
    out.push([
      `operator running, compiled, baseline${label}`,
      async () => measure([baseline], settleMs, await operatorEnv()),
    ]);
  if (existsSync(dist))
    out.push([
      `operator running, compiled${label}`,
      async () => measure([dist], settleMs, await operatorEnv()),
    ]);
  return out;
};
if (baseline) cases.push(runningCases("")[0]!);

/** A pod the operator does not run, shaped like one a Deployment made from an applied manifest. */
function foreignPod(i: number, nodes: string[]): k8s.V1Pod {
  const container = {
    name: "web",
    image: "registry.example/web:1.2.3",
    args: ["--port=8080", "--log-level=info"],
    env: Array.from({ length: 10 }, (_, j) => ({ name: `SETTING_${j}`, value: `value-${j}-${i}` })),
    ports: [{ containerPort: 8080, name: "http" }],
    resources: { requests: { cpu: "1m", memory: "1Mi" }, limits: { cpu: "100m", memory: "64Mi" } },
    volumeMounts: [{ name: "config", mountPath: "/etc/web" }],
  };
  const spec = { containers: [container], volumes: [{ name: "config", emptyDir: {} }] };
  return {
    metadata: {
      name: `web-${i}`,
      labels: { app: "web", "pod-template-hash": "5d8f7c9b6" },
      annotations: {
        "kubectl.kubernetes.io/last-applied-configuration": JSON.stringify({
          metadata: { name: "web" },
          spec,
        }),
      },
    },
    spec: { ...spec, nodeName: nodes[i % nodes.length] },
  };
}

async function populate(count: number): Promise<() => Promise<void>> {
  const client = testClient();
  const namespace = await freshNamespace(client, "memory-bench");
  const nodes = (await client.core.listNode()).items.map((n) => n.metadata!.name!);
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < count) {
        const body = foreignPod(next++, nodes);
        await client.core.createNamespacedPod({ namespace, body });
      }
    }),
  );
  const listed = await client.core.listNamespacedPod({ namespace });
  const bytes = JSON.stringify(listed.items).length;
  console.log(`(${listed.items.length} pods created, ${(bytes / 2 ** 20).toFixed(1)} MiB of JSON as listed)`);
  return () => deleteNamespace(client, namespace);
}

const mib = (b: number) => (b / 2 ** 20).toFixed(1);
const results: Record<string, Memory> = {};
console.log("| process | RSS MiB | heap used MiB | heap total MiB | external MiB |");
console.log("| --- | ---: | ---: | ---: | ---: |");
const report = async ([name, run]: [string, () => Promise<Memory>]) => {
  const m = await run();
  results[name] = m;
  console.log(`| ${name} | ${mib(m.rss)} | ${mib(m.heapUsed)} | ${mib(m.heapTotal)} | ${mib(m.external)} |`);
};
if (!values["populated-only"]) for (const c of cases) await report(c);
const pods = Number(values.pods);
if (pods > 0) {
  const cleanUp = await populate(pods);
  try {
    for (const c of runningCases(`, ${pods} other pods`)) await report(c);
  } finally {
    await cleanUp();
  }
}
const path = writeResults({
  benchmark: values.label!,
  command: `npx node bench/operator-memory.ts ${process.argv.slice(2).join(" ")}`.trim(),
  figures: results,
  charts: [],
});
console.log(`results: ${path}`);
