import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubeconfigPath } from "../cluster/config.ts";
import { installCrds } from "../support/crds.ts";
import { deleteNamespace, eventually, freshNamespace, testClient } from "../support/kube.ts";

// The operator as Kubernetes runs it: `node src/operator/main.ts` in its own process. It serves
// health, readiness and metrics, leads through its Lease, and on SIGTERM releases the Lease and
// exits 0. Its controllers are switched off (--controllers=) so this process, which watches the
// whole cluster, writes nothing that tests running beside it could trip over.

const root = join(import.meta.dirname, "../..");
const node = join(root, "node_modules/.bin/node");
const client = testClient();
let namespace: string;
let child: ChildProcess | undefined;

beforeAll(async () => {
  await installCrds(); // registerControllers' informers watch the operator's own resources
  namespace = await freshNamespace(client, "op-main");
});
afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await deleteNamespace(client, namespace);
});

interface Running {
  process: ChildProcess;
  logs: Record<string, unknown>[];
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startOperator(args: string[], env: Record<string, string> = {}): Running {
  const proc = spawn(node, ["src/operator/main.ts", ...args], {
    cwd: root,
    env: { ...process.env, KUBECONFIG: process.env.KUBECONFIG ?? kubeconfigPath, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child = proc;
  const logs: Record<string, unknown>[] = [];
  createInterface({ input: proc.stdout! }).on("line", (line) => {
    try {
      logs.push(JSON.parse(line));
    } catch {
      logs.push({ msg: line });
    }
  });
  const stderr: string[] = [];
  createInterface({ input: proc.stderr! }).on("line", (line) => stderr.push(line));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return { process: proc, logs, stderr, exited };
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

describe("the operator process", () => {
  it("serves health, readiness and metrics, leads, and on SIGTERM releases its lease and exits 0", async () => {
    const identity = "main-test-replica";
    const op = startOperator([
      "--namespace",
      namespace,
      "--leader-elect",
      "--leader-election-identity",
      identity,
      "--lease-duration",
      "15s",
      "--renew-deadline",
      "10s",
      "--retry-period",
      "500ms",
      "--metrics-bind-address",
      "127.0.0.1:0",
      "--controllers=",
    ]);
    const listening = await eventually("the server to listen", () =>
      op.logs.find((l) => l.msg === "health and metrics server listening"),
    );
    const port = listening.port as number;

    expect(await get(port, "/healthz")).toEqual({ status: 200, body: "ok\n" });
    await eventually("ready", async () => (await get(port, "/readyz")).status === 200, 60_000);
    const metrics = await get(port, "/metrics");
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain("process_cpu_user_seconds_total");
    expect(metrics.body).toContain("# TYPE understudy_reconcile_duration_seconds histogram");

    const lease = await eventually("the lease to name this replica", async () => {
      const l = await client.coordination.readNamespacedLease({ name: "understudy-operator", namespace });
      return l.spec?.holderIdentity === identity && l;
    });
    expect(lease.spec?.leaseDurationSeconds).toBe(15);

    op.process.kill("SIGTERM");
    const exit = await op.exited;
    expect(exit, op.stderr.join("\n")).toEqual({ code: 0, signal: null });
    const released = await client.coordination.readNamespacedLease({
      name: "understudy-operator",
      namespace,
    });
    expect(released.spec?.holderIdentity).toBe("");
    expect(released.spec?.leaseDurationSeconds).toBe(1);
    expect(op.logs.map((l) => l.msg)).toEqual(
      expect.arrayContaining(["started leading", "shutting down", "released the lease", "shut down"]),
    );
  });

  it("refuses bad settings with exit code 2 and says which", async () => {
    const op = startOperator(["--lease-duration", "soon"]);
    expect((await op.exited).code).toBe(2);
    expect(op.stderr.join("\n")).toMatch(/--lease-duration \/ UNDERSTUDY_LEASE_DURATION/);
  });
});
