import type * as k8s from "@kubernetes/client-node";
import { execFile } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { binaries, kubeconfigPath, versions } from "../cluster/config.ts";
import { installCrds } from "../support/crds.ts";
import { buildImage, Container, imageVersion, unpackImage, type Bundle } from "../support/container.ts";
import { deleteNamespace, eventually, freshNamespace, testClient } from "../support/kube.ts";
import { freePort, metricValue } from "../support/operator.ts";

// The image that `npm run image` builds, run under runc as the chart runs it (non-root, read-only
// root filesystem, no capabilities): the CLI answers, and the operator, started with the chart's
// arguments and settings and given the test cluster's kubeconfig, joins the cluster and serves
// /healthz, /readyz and /metrics.

const client = testClient("understudy-image-test");
const work = mkdtempSync(join(tmpdir(), "understudy-image-"));
let bundle: Bundle;
let namespace: string;

/** The operator's pod spec as the chart renders it with its default values. */
async function chartPodSpec(): Promise<k8s.V1PodSpec> {
  const chart = join(import.meta.dirname, "../../deploy/helm/understudy");
  const { stdout } = await promisify(execFile)(binaries.helm, [
    "template",
    "understudy",
    chart,
    "--namespace",
    "understudy-system",
    "--kube-version",
    versions.kubernetes,
    "--show-only",
    "templates/deployment.yaml",
  ]);
  const deployment = parseAllDocuments(stdout)[0]!.toJS() as k8s.V1Deployment;
  return deployment.spec!.template.spec!;
}

beforeAll(async () => {
  await Promise.all([buildImage(), installCrds()]);
  bundle = await unpackImage(join(work, "bundle"));
  namespace = await freshNamespace(client, "image");
}, 900_000);

afterAll(async () => {
  if (namespace) await deleteNamespace(client, namespace);
  rmSync(work, { recursive: true, force: true });
});

describe("the image", () => {
  it("runs node as the chart's user, with the operator as its default command", async () => {
    const { process: proc } = bundle.imageConfig;
    const pod = await chartPodSpec();
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532 });
    expect(proc.user).toMatchObject({ uid: 65532, gid: 65532 });
    expect(proc.args).toEqual(["node", "dist/src/operator/main.js"]);
    expect(proc.cwd).toBe("/app");
    expect(proc.env).toContain("NODE_ENV=production");
  });

  it("prints its version with `understudy version`", async () => {
    const container = new Container(bundle, "version", { args: ["dist/src/cli/main.js", "version"] });
    try {
      expect(await container.output()).toMatch(
        new RegExp(
          `^understudy ${imageVersion.replaceAll(".", "\\.")} \\(node v24\\.\\d+\\.\\d+, linux/\\w+\\)\\n$`,
        ),
      );
    } finally {
      await container.remove();
    }
  });

  it("holds the compiled code and production dependencies only, which its user cannot change", async () => {
    const probe = `
      const fs = require("node:fs");
      const exists = (p) => fs.existsSync(p);
      let writeError = "none";
      try { fs.writeFileSync("/app/dist/probe", "x"); } catch (e) { writeError = e.code; }
      fs.writeFileSync("/tmp/probe", "x");
      console.log(JSON.stringify({
        uid: process.getuid(), gid: process.getgid(),
        appOwner: fs.statSync("/app/dist/src/operator/main.js").uid,
        writeError,
        dist: ["operator/main.js", "dataplane/main.js", "cli/main.js"].every((f) => exists("/app/dist/src/" + f)),
        sources: exists("/app/src"),
        runtimeDependency: exists("/app/node_modules/@kubernetes/client-node"),
        devDependencies: ["typescript", "vitest", "eslint", "node"].filter((d) => exists("/app/node_modules/" + d)),
      }));`;
    const container = new Container(bundle, "layout", { args: ["-e", probe] });
    try {
      expect(JSON.parse(await container.output())).toEqual({
        uid: 65532,
        gid: 65532,
        appOwner: 0,
        writeError: "EROFS",
        dist: true,
        sources: false,
        runtimeDependency: true,
        devDependencies: [],
      });
    } finally {
      await container.remove();
    }
  });

  it("starts the data plane from its bundle and Node's compile cache made in the image for its user, read-only", async () => {
    // The data plane's entry and a head's chunk of the bundle loaded as a head loads them; Node
    // reports (NODE_DEBUG_NATIVE) whether V8 accepted each module's cached code, and any cache it
    // could not read or would have written (a module missing from the cache).
    const probe = `
      const { spawnSync } = require("node:child_process");
      const fs = require("node:fs");
      const dir = require("node:module").getCompileCacheDir();
      let writeError = "none";
      try { fs.writeFileSync(dir + "/probe", "x"); } catch (e) { writeError = e.code; }
      const head = fs.readdirSync("/app/dist/dataplane").find((f) => f.startsWith("head-"));
      const debug = { env: { ...process.env, NODE_DEBUG_NATIVE: "COMPILE_CACHE" }, encoding: "utf8" };
      const runs = [
        spawnSync(process.execPath, ["dist/src/dataplane/main.js", "--help"], debug),
        spawnSync(process.execPath, ["--input-type=module", "-e",
          'await import("/app/dist/dataplane/' + head + '")'], debug),
      ];
      const lines = runs.flatMap((r) => r.stderr.split("\\n"));
      const accepted = lines.flatMap((l) => l.match(/(\\/app\\/\\S+\\.js) was accepted/)?.[1] ?? []);
      console.log(JSON.stringify({
        dir, writeError, status: runs.map((r) => r.status),
        bundle: ["/app/dist/dataplane/program.js", "/app/dist/dataplane/" + head].every((f) => accepted.includes(f)),
        // Nothing but the entry outside the bundle: no module of the project's or a dependency's own.
        outside: [...new Set(accepted)].filter((f) =>
          !f.startsWith("/app/dist/dataplane/") && f !== "/app/dist/src/dataplane/main.js"),
        // The -e script itself is never in the cache.
        problems: lines.filter((l) => /rejected|denied|failed/i.test(l) && !l.includes("[eval")).slice(0, 3),
      }));`;
    const container = new Container(bundle, "compile-cache", { args: ["-e", probe] });
    try {
      const found = JSON.parse(await container.output()) as { dir: string };
      expect(found.dir).toMatch(/^\/app\/\.node-compile-cache\/v24\.\d+\.\d+-\w+-[0-9a-f]+-65532$/);
      expect(found).toMatchObject({
        writeError: "EROFS",
        status: [0, 0],
        bundle: true,
        outside: [],
        problems: [],
      });
    } finally {
      await container.remove();
    }
  });

  it("runs the operator as the chart does: /healthz, /readyz and /metrics answer, and it leads", async () => {
    const operator = (await chartPodSpec()).containers.find((c) => c.name === "operator")!;
    // What Container sets up for every container is what the chart asks for.
    expect(operator.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
    expect(operator.volumeMounts?.map((m) => m.mountPath)).toEqual(["/tmp"]);
    const chartEnv = Object.fromEntries(
      (operator.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]),
    );
    // A kubeconfig the container's user can read, mounted read-only.
    const kubeconfig = join(work, "kubeconfig");
    copyFileSync(process.env.KUBECONFIG ?? kubeconfigPath, kubeconfig);
    chmodSync(kubeconfig, 0o644);
    const port = await freePort();
    const identity = `image-test-${process.pid}`;
    const container = new Container(bundle, "operator", {
      args: operator.args!,
      files: { "/etc/understudy/kubeconfig": kubeconfig },
      env: {
        ...chartEnv,
        KUBECONFIG: "/etc/understudy/kubeconfig",
        // What the chart takes from the pod (fieldRef), and a port of the test's own on loopback.
        UNDERSTUDY_NAMESPACE: namespace,
        UNDERSTUDY_LEADER_ELECTION_IDENTITY: identity,
        UNDERSTUDY_METRICS_BIND_ADDRESS: `127.0.0.1:${port}`,
        // No pool carries this label: the operator watches the cluster and leaves other tests' pools alone.
        UNDERSTUDY_POOL_SELECTOR: `understudy.dev/image-test=${identity}`,
      },
    });
    let output = "";
    const child = container.start((chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      const url = (path: string) => `http://127.0.0.1:${port}${path}`;
      await eventually(
        "the operator's /healthz in the container",
        async () => (await fetch(url("/healthz"))).ok,
        60_000,
      );
      await eventually(
        "the operator's /readyz in the container",
        async () => (await fetch(url("/readyz"))).ok,
        60_000,
      );
      const lease = await eventually("the operator's leader-election Lease", async () => {
        const name = chartEnv.UNDERSTUDY_LEADER_ELECTION_ID!;
        const found = await client.coordination.readNamespacedLease({ name, namespace });
        return found.spec?.holderIdentity === identity && found;
      });
      expect(lease.spec?.holderIdentity).toBe(identity);
      const metrics = await (await fetch(url("/metrics"))).text();
      expect(metricValue(metrics, "process_cpu_user_seconds_total")).toBeGreaterThan(0);
      // Every controller reports its queue: the operator in the container registered its controllers.
      expect(metrics).toMatch(/^understudy_workqueue_depth\{controller="[a-z-]+"\} \d+$/m);

      // A graceful stop: SIGTERM to the container's process, which exits 0.
      await container.kill("TERM");
      expect(await exited).toBe(0);
    } catch (err) {
      throw new Error(`${String(err)}\ncontainer output:\n${output.slice(-4000)}`, { cause: err });
    } finally {
      await container.remove();
      child.kill();
    }
  });
});
