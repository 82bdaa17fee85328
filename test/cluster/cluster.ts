import { spawn, spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { request as httpRequest } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import * as k8s from "@kubernetes/client-node";
import { adminToken, binaries, clusterDir, kubeconfigPath, ports } from "./config.ts";
import { commandFor, componentNames, paths, type ComponentName } from "./components.ts";
import { fakeNodes } from "./nodes.ts";
import { renderStages } from "./stages.ts";

// The local test cluster: real etcd, kube-apiserver, kube-controller-manager and kube-scheduler,
// with KWOK playing the kubelet for fake nodes in three zones. Processes run detached, so the
// cluster outlives `cluster:up`; their pids sit in files so `cluster:down` and tests find them.

const here = dirname(fileURLToPath(import.meta.url));
const progress = (msg: string) => process.stderr.write(`[cluster] ${msg}\n`);

function ensureBinaries(): void {
  const missing = Object.values(binaries).filter((b) => !existsSync(b));
  if (missing.length === 0) return;
  progress(
    `building ${missing.length} missing binaries from Go modules (the first build takes many minutes)`,
  );
  const result = spawnSync("bash", [join(here, "build-binaries.sh")], { stdio: ["ignore", 2, 2] });
  if (result.status !== 0)
    throw new Error(`building the test cluster's binaries failed (exit ${result.status})`);
}

const pidFile = (name: string) => join(paths.pids, `${name}.pid`);

function runningPid(name: string): number | undefined {
  if (!existsSync(pidFile(name))) return undefined;
  const pid = Number(readFileSync(pidFile(name), "utf8"));
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

function startComponent(name: ComponentName): void {
  if (runningPid(name)) return;
  const { binary, args } = commandFor(name);
  const log = openSync(join(paths.logs, `${name}.log`), "a");
  const child = spawn(binary, args, { detached: true, stdio: ["ignore", log, log] });
  if (!child.pid) throw new Error(`could not start ${name}`);
  writeFileSync(pidFile(name), String(child.pid));
  child.unref();
}

/**
 * Runs a process of our own beside the cluster (the demo's operator and pod runner), detached like
 * the components, so `cluster:down` stops it too.
 */
export function startCompanion(
  name: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): number {
  const existing = runningPid(name);
  if (existing) return existing;
  const log = openSync(join(paths.logs, `${name}.log`), "a");
  const child = spawn(command, args, {
    detached: true,
    stdio: ["ignore", log, log],
    env: { ...process.env, ...env },
  });
  if (!child.pid) throw new Error(`could not start ${name}`);
  writeFileSync(pidFile(name), String(child.pid));
  child.unref();
  return child.pid;
}

export const companionLog = (name: string) => join(paths.logs, `${name}.log`);

async function stopComponent(name: string, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  const pid = runningPid(name);
  if (!pid) return;
  // Each process leads its own group (detached): signal the group, so a companion's children go too.
  process.kill(-pid, signal);
  for (let i = 0; i < 100 && runningPid(name); i++) await sleep(100);
  if (runningPid(name)) process.kill(-pid, "SIGKILL");
  for (let i = 0; i < 50 && runningPid(name); i++) await sleep(100);
  rmSync(pidFile(name), { force: true });
}

function probe(url: string, secure: boolean): Promise<number> {
  return new Promise((resolve) => {
    const options = {
      timeout: 2000,
      rejectUnauthorized: false,
      headers: { authorization: `Bearer ${adminToken}` },
    };
    const req = (secure ? request : httpRequest)(url, options, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => resolve(0));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(200);
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}; logs are in ${paths.logs}`);
}

const apiserverReady = async () => (await probe(`https://127.0.0.1:${ports.apiserver}/readyz`, true)) === 200;

async function waitForApiserver(timeoutMs = 120_000): Promise<void> {
  await waitFor("kube-apiserver /readyz", apiserverReady, timeoutMs);
}

function writeCredentials(): void {
  mkdirSync(paths.pki, { recursive: true });
  if (!existsSync(paths.serviceAccountKey)) {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    writeFileSync(paths.serviceAccountKey, privateKey.export({ type: "pkcs8", format: "pem" }), {
      mode: 0o600,
    });
    writeFileSync(paths.serviceAccountPub, publicKey.export({ type: "spki", format: "pem" }));
  }
  // One static admin token in system:masters: tests act as cluster admin, components too.
  writeFileSync(paths.tokens, `${adminToken},understudy-admin,understudy-admin,system:masters\n`, {
    mode: 0o600,
  });
}

function kubeconfigYaml(ca: string): string {
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: "understudy-test",
        cluster: {
          server: `https://127.0.0.1:${ports.apiserver}`,
          "certificate-authority-data": Buffer.from(ca).toString("base64"),
        },
      },
    ],
    users: [{ name: "understudy-admin", user: { token: adminToken } }],
    contexts: [
      { name: "understudy-test", context: { cluster: "understudy-test", user: "understudy-admin" } },
    ],
    "current-context": "understudy-test",
  };
  return JSON.stringify(config, null, 2);
}

function loadKubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return kc;
}

async function createNodes(kc: k8s.KubeConfig): Promise<void> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  for (const node of fakeNodes()) {
    try {
      await core.createNode({ body: node });
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
    }
  }
  await waitFor(
    "fake nodes to become Ready",
    async () => {
      const list = await core.listNode({ labelSelector: "type=kwok" });
      return (
        list.items.length >= fakeNodes().length &&
        list.items.every((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"))
      );
    },
    60_000,
  );
  // Pods need their namespace's default ServiceAccount, which the controller-manager creates.
  await waitFor(
    "the default ServiceAccount",
    async () => {
      try {
        await core.readNamespacedServiceAccount({ name: "default", namespace: "default" });
        return true;
      } catch {
        return false;
      }
    },
    60_000,
  );
}

export async function isUp(): Promise<boolean> {
  return existsSync(kubeconfigPath) && componentNames.every((n) => runningPid(n)) && (await apiserverReady());
}

export async function up(): Promise<{ kubeconfig: string }> {
  if (await isUp()) {
    progress("already up");
    return { kubeconfig: kubeconfigPath };
  }
  ensureBinaries();
  // A cluster that is not (fully) up is stale: left by a session whose processes ended. Start clean,
  // so no test meets objects from an earlier run.
  if (existsSync(clusterDir)) {
    progress("removing the state of a cluster that is no longer running");
    await down();
  }
  for (const dir of [clusterDir, paths.logs, paths.pids]) mkdirSync(dir, { recursive: true });
  writeCredentials();
  writeFileSync(paths.stages, renderStages());
  const started = Date.now();
  progress("starting etcd");
  startComponent("etcd");
  await waitFor(
    "etcd /health",
    async () => (await probe(`http://127.0.0.1:${ports.etcdClient}/health`, false)) === 200,
    60_000,
  );
  progress("starting kube-apiserver");
  startComponent("kube-apiserver");
  await waitForApiserver();
  const kubeconfig = kubeconfigYaml(readFileSync(paths.servingCert, "utf8"));
  writeFileSync(paths.componentKubeconfig, kubeconfig, { mode: 0o600 });
  writeFileSync(kubeconfigPath, kubeconfig, { mode: 0o600 });
  progress("starting kube-controller-manager, kube-scheduler and kwok");
  for (const name of ["kube-controller-manager", "kube-scheduler", "kwok"] as const) startComponent(name);
  await createNodes(loadKubeConfig());
  progress(`up in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  return { kubeconfig: kubeconfigPath };
}

/** Stops every component and deletes the cluster's state, so the next `up` starts clean. */
export async function down(): Promise<void> {
  // Companions first (they talk to the API server), then the components in reverse order of start.
  const companions = existsSync(paths.pids)
    ? readdirSync(paths.pids)
        .map((f) => f.replace(/\.pid$/, ""))
        .filter((n) => !(componentNames as readonly string[]).includes(n))
    : [];
  for (const name of companions) await stopComponent(name);
  for (const name of [...componentNames].reverse()) await stopComponent(name);
  rmSync(clusterDir, { recursive: true, force: true });
}

/** Restarts kube-apiserver alone (etcd keeps the data), as tests of reconnecting clients need. */
export async function restartApiserver(downtimeMs = 0): Promise<void> {
  await stopComponent("kube-apiserver");
  if (downtimeMs > 0) await sleep(downtimeMs);
  startComponent("kube-apiserver");
  await waitForApiserver();
}
