import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { kubeconfigPath } from "../cluster/config.ts";
import { entryScript } from "./entry.ts";
import { eventually } from "./kube.ts";
import { inCgroup, type MemoryCgroup } from "./memory-cgroup.ts";

// The operator as a real child process, the way it runs in a pod: `node src/operator/main.ts`, or
// its build.

const root = join(import.meta.dirname, "../..");
const nodeBinary = join(root, "node_modules/.bin/node");
const operatorLogDir = join(root, ".understudy", "logs");

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

export interface OperatorOptions {
  /** The operator's namespace: slot Leases, placeholders and its leader-election Lease. */
  namespace: string;
  identity?: string;
  leaderElection?: boolean;
  env?: Record<string, string>;
  kubeconfig?: string;
  /** The pools this operator manages; tests label their pools so concurrent operators keep apart. */
  poolSelector?: string;
  /** Run the built JavaScript, as the image does (dist/ must be fresh), instead of the sources. */
  built?: boolean;
  /** Run another checkout's sources (`<checkout>/src/operator/main.ts`), for side-by-side benchmarks. */
  checkout?: string;
  /** Run the process inside this memory cgroup, under its limit as in a pod. */
  memoryCgroup?: MemoryCgroup;
}

export interface OperatorProcess {
  identity: string;
  process: ChildProcess;
  metricsUrl: string;
  exited: Promise<number | null>;
  logFile: string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  metrics(): Promise<string>;
}

let started = 0;

export async function startOperator(options: OperatorOptions): Promise<OperatorProcess> {
  const port = await freePort();
  const identity = options.identity ?? `operator-${process.pid}-${started++}`;
  mkdirSync(operatorLogDir, { recursive: true });
  const logFile = join(operatorLogDir, `${options.namespace}-${identity}.log`);
  const log = createWriteStream(logFile, { flags: "a" });
  const entry = options.built
    ? entryScript("operator/main.ts")
    : join(options.checkout ?? root, "src/operator/main.ts");
  if (options.built && !entry.endsWith(".js"))
    throw new Error("dist/ is older than src/: run `npm run build` first");
  const [command, ...args] = options.memoryCgroup
    ? inCgroup(options.memoryCgroup, [nodeBinary, entry])
    : [nodeBinary, entry];
  const child = spawn(command!, args, {
    env: {
      ...process.env,
      KUBECONFIG: options.kubeconfig ?? process.env.KUBECONFIG ?? kubeconfigPath,
      UNDERSTUDY_NAMESPACE: options.namespace,
      UNDERSTUDY_LEADER_ELECTION_IDENTITY: identity,
      UNDERSTUDY_LEADER_ELECT: String(options.leaderElection ?? true),
      UNDERSTUDY_METRICS_BIND_ADDRESS: `127.0.0.1:${port}`,
      UNDERSTUDY_LOG_LEVEL: "debug",
      UNDERSTUDY_POOL_SELECTOR: options.poolSelector ?? "",
      ...options.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : null))),
  );
  const metricsUrl = `http://127.0.0.1:${port}/metrics`;
  await eventually(
    `operator ${identity} /healthz`,
    async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok,
    30_000,
  );
  return {
    identity,
    process: child,
    metricsUrl,
    exited,
    logFile,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const code = await Promise.race([exited, sleep(15_000).then(() => "timeout" as const)]);
      if (code === "timeout") {
        child.kill("SIGKILL");
        return exited;
      }
      return code;
    },
    async metrics() {
      return (await fetch(metricsUrl)).text();
    },
  };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a scrape in Prometheus' text format (the operator's metrics: no escaped quotes). */
export function parseSamples(text: string): Sample[] {
  return text.split("\n").flatMap((line) => {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) return [];
    const labels = Object.fromEntries(
      [...(match[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]),
    );
    return [{ name: match[1]!, labels, value: Number(match[3]) }];
  });
}

/** The samples of `name` whose labels include `labels`, in Prometheus text format. */
function samplesOf(text: string, name: string, labels: Record<string, string>): Sample[] {
  return samplesMatching(parseSamples(text), name, labels);
}

/** The samples of `name` among parsed ones whose labels include `labels`. */
export function samplesMatching(
  samples: readonly Sample[],
  name: string,
  labels: Record<string, string> = {},
): Sample[] {
  return samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
}

/** The sum of every sample of `name` whose labels include `labels` (a counter over all its results). */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  return sampleSum(parseSamples(text), name, labels);
}

/** metricSum over samples already parsed (parseSamples), for a caller reading one scrape many times. */
export function sampleSum(
  samples: readonly Sample[],
  name: string,
  labels: Record<string, string> = {},
): number {
  return samplesMatching(samples, name, labels).reduce((sum, s) => sum + s.value, 0);
}

/** The value of the sample of `name` whose labels include `labels`. */
export function metricValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  return samplesOf(text, name, labels)[0]?.value;
}
