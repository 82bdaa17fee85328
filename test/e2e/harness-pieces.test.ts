// The e2e harness's pure pieces: how the pod runner reads a container's command and env the way the
// kubelet does, what it reports on a pod, which addresses it hands out, and how write
// unavailability is measured from acknowledged writes.
import type * as k8s from "@kubernetes/client-node";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  addressesFromTop,
  dataplaneArgs,
  expandVars,
  fieldValue,
  kubeletStatusPatch,
  podHostnames,
  readinessOf,
  type ContainerView,
} from "../support/pod-runner.ts";
import { entryScript } from "../support/entry.ts";
import { canCreateMemoryCgroups, createMemoryCgroup, inCgroup } from "../support/memory-cgroup.ts";
import { writeUnavailability, type WriteAck } from "./support/traffic.ts";

describe("dataplaneArgs", () => {
  it("takes what follows the script, whatever runs it", () => {
    expect(dataplaneArgs(["node", "src/dataplane/main.ts", "head"], "head")).toEqual(["head"]);
    expect(
      dataplaneArgs(["node", "/app/dist/src/dataplane/main.js", "server", "--zone", "a"], "server"),
    ).toEqual(["server", "--zone", "a"]);
    expect(dataplaneArgs(["understudy-dataplane", "server"], "server")).toEqual(["server"]);
  });

  it("starts at the role word when there is no script, and adds the role when there is none", () => {
    expect(dataplaneArgs(["/bin/understudy", "dataplane", "head", "--epoch", "3"], "head")).toEqual([
      "head",
      "--epoch",
      "3",
    ]);
    expect(dataplaneArgs([], "server")).toEqual(["server"]);
    expect(dataplaneArgs(["node", "src/dataplane/main.ts"], "head")).toEqual(["head"]);
    expect(dataplaneArgs(["--log-level", "debug"], "server")).toEqual(["server", "--log-level", "debug"]);
  });
});

describe("entryScript", () => {
  /** A checkout with two source files and, for those given, their built files, at the given times. */
  function checkout(built: Record<string, number>, sourceTime = 1000): string {
    const repo = mkdtempSync(join(tmpdir(), "understudy-entry-"));
    const put = (file: string, seconds: number) => {
      mkdirSync(dirname(join(repo, file)), { recursive: true });
      writeFileSync(join(repo, file), "");
      utimesSync(join(repo, file), seconds, seconds);
    };
    for (const file of ["src/dataplane/main.ts", "src/kube/client.ts"]) put(file, sourceTime);
    for (const [file, seconds] of Object.entries(built)) put(file, seconds);
    return repo;
  }
  const both = (seconds: number) => ({
    "dist/src/dataplane/main.js": seconds,
    "dist/src/kube/client.js": seconds,
  });

  it("runs the built JavaScript when every source file is built and no newer than its build", () => {
    const repo = checkout(both(1000));
    expect(entryScript("dataplane/main.ts", repo)).toBe(join(repo, "dist/src/dataplane/main.js"));
    rmSync(repo, { recursive: true });
  });

  it("runs the sources when any source changed after the build, or was never built", () => {
    const stale = checkout(both(999));
    expect(entryScript("dataplane/main.ts", stale)).toBe(join(stale, "src/dataplane/main.ts"));
    const partly = checkout({ "dist/src/dataplane/main.js": 2000 });
    expect(entryScript("dataplane/main.ts", partly)).toBe(join(partly, "src/dataplane/main.ts"));
    const none = checkout({});
    expect(entryScript("dataplane/main.ts", none)).toBe(join(none, "src/dataplane/main.ts"));
    for (const repo of [stale, partly, none]) rmSync(repo, { recursive: true });
  });

  it("runs the sources when the data plane's bundle is older than a source, as the built entry loads it", () => {
    const fresh = checkout({ ...both(1000), "dist/dataplane/program.js": 1000 });
    expect(entryScript("dataplane/main.ts", fresh)).toBe(join(fresh, "dist/src/dataplane/main.js"));
    const stale = checkout({ ...both(1000), "dist/dataplane/program.js": 999 });
    expect(entryScript("dataplane/main.ts", stale)).toBe(join(stale, "src/dataplane/main.ts"));
    // Dependencies installed after the bundle was made: the bundle holds the old ones.
    const reinstalled = checkout({
      ...both(1000),
      "dist/dataplane/program.js": 1000,
      "node_modules/.package-lock.json": 1001,
    });
    expect(entryScript("dataplane/main.ts", reinstalled)).toBe(join(reinstalled, "src/dataplane/main.ts"));
    for (const repo of [fresh, stale, reinstalled]) rmSync(repo, { recursive: true });
  });
});

describe("expandVars", () => {
  const vars = new Map([
    ["POD_NAME", "s-0"],
    ["NS", "db"],
  ]);
  it("replaces defined $(VAR)s, keeps unknown ones and unescapes $$", () => {
    expect(expandVars("$(POD_NAME).set.$(NS).svc:7001", vars)).toBe("s-0.set.db.svc:7001");
    expect(expandVars("$(MISSING)-$(NS)", vars)).toBe("$(MISSING)-db");
    expect(expandVars("$$(POD_NAME) costs $$5", vars)).toBe("$(POD_NAME) costs $5");
  });
});

describe("fieldValue and podHostnames", () => {
  const pod: k8s.V1Pod = {
    metadata: { name: "s-0", namespace: "db", uid: "u1", labels: { zone: "zone-a" } },
    spec: { nodeName: "n1", hostname: "s-0", subdomain: "set", containers: [] },
    status: { podIP: "127.10.0.9", hostIP: "127.0.0.1" },
  };
  it("reads the downward API's paths", () => {
    expect(fieldValue(pod, "status.podIP")).toBe("127.10.0.9");
    expect(fieldValue(pod, "metadata.namespace")).toBe("db");
    expect(fieldValue(pod, "spec.nodeName")).toBe("n1");
    expect(fieldValue(pod, "metadata.labels['zone']")).toBe("zone-a");
    expect(() => fieldValue(pod, "spec.bogus")).toThrow(/not supported/);
  });
  it("names a StatefulSet pod as cluster DNS would", () => {
    expect(podHostnames(pod)).toEqual(["s-0.set.db", "s-0.set.db.svc", "s-0.set.db.svc.cluster.local"]);
    expect(podHostnames({ ...pod, spec: { containers: [] } })).toEqual([]);
  });
});

describe("writeUnavailability", () => {
  const ack = (ret: number): WriteAck => ({ clientId: 0, label: "c", call: ret - 1, ret });
  it("is the longest gap between acknowledged writes that ends after the fault", () => {
    const acks = [100, 200, 300, 1900, 2000, 2100].map(ack);
    expect(writeUnavailability(acks, 350)).toEqual({ gapMs: 1600, from: 300, to: 1900 });
  });
  it("ignores gaps that ended before the fault", () => {
    const acks = [0, 5000, 5100, 5300].map(ack);
    expect(writeUnavailability(acks, 5050).gapMs).toBe(200);
  });
  it("counts from the fault when nothing was acknowledged before it", () => {
    expect(writeUnavailability([ack(900)], 100)).toEqual({ gapMs: 800, from: 100, to: 900 });
  });
});

describe("what the pod runner reports as the kubelet", () => {
  const NOW = "2026-12-01T10:00:00.000Z";
  const pod = (status: k8s.V1PodStatus, annotations?: Record<string, string>): k8s.V1Pod => ({
    metadata: { name: "kv-head-2", ...(annotations ? { annotations } : {}) },
    spec: { containers: [{ name: "head", image: "understudy:dev" }] },
    status,
  });
  const startingPod = pod({
    phase: "Running",
    conditions: [
      { type: "Initialized", status: "True" },
      { type: "Ready", status: "False", lastTransitionTime: "t0" as unknown as Date },
      { type: "ContainersReady", status: "False" },
    ],
    containerStatuses: [
      {
        name: "head",
        image: "understudy:dev",
        imageID: "",
        ready: false,
        restartCount: 0,
        state: { waiting: { reason: "ContainerCreating" } },
      },
    ],
  });
  const running: ContainerView = { running: true, ready: true, restartCount: 0, startedAt: NOW };

  it("Ready once the process is ready, keeping the other conditions", () => {
    const patch = kubeletStatusPatch(startingPod, running, NOW)!;
    expect(patch.status.conditions).toEqual([
      { type: "Initialized", status: "True" },
      { type: "Ready", status: "True", lastTransitionTime: NOW },
      { type: "ContainersReady", status: "True", lastTransitionTime: NOW },
    ]);
    expect(patch.status.containerStatuses![0]).toMatchObject({
      ready: true,
      started: true,
      restartCount: 0,
      state: { running: { startedAt: NOW } },
    });
    // Written once: the pod that shows it needs no patch (times are kept to the second there).
    const shown = pod(JSON.parse(JSON.stringify(patch.status)) as k8s.V1PodStatus);
    expect(kubeletStatusPatch(shown, { ...running, startedAt: "2026-12-01T10:00:00Z" }, NOW)).toBeUndefined();
  });

  it("a running process that is not ready yet keeps the pod not Ready, and changes nothing", () => {
    const patch = kubeletStatusPatch(startingPod, { ...running, ready: false }, NOW)!;
    expect(patch.status.conditions!.find((c) => c.type === "Ready")).toEqual({
      type: "Ready",
      status: "False",
      lastTransitionTime: "t0",
      reason: "ContainersNotReady",
      message: "containers with unready status: [head]",
    });
    expect(patch.status.containerStatuses![0]!.state).toEqual({ running: { startedAt: NOW } });
  });

  it("a process that keeps exiting: not Ready, restarts counted, CrashLoopBackOff, how it ended", () => {
    const lastExit = { exitCode: 1, reason: "Error", startedAt: NOW, finishedAt: NOW };
    const patch = kubeletStatusPatch(
      startingPod,
      { running: false, ready: false, restartCount: 3, waiting: "CrashLoopBackOff", lastExit },
      NOW,
    )!;
    expect(patch.status.containerStatuses![0]).toMatchObject({
      ready: false,
      started: false,
      restartCount: 3,
      state: { waiting: { reason: "CrashLoopBackOff" } },
      lastState: { terminated: lastExit },
    });
    expect(patch.status.conditions!.find((c) => c.type === "Ready")!.status).toBe("False");
  });

  it("the not-ready fault keeps a ready process's pod not Ready", () => {
    const faulted = pod(startingPod.status!, { "fault.understudy.dev/not-ready": "true" });
    const patch = kubeletStatusPatch(faulted, running, NOW)!;
    expect(patch.status.conditions!.find((c) => c.type === "Ready")!.status).toBe("False");
    expect(patch.status.containerStatuses![0]!.ready).toBe(false);
  });

  it("checks readiness with the container's httpGet probe, else by connecting", () => {
    const container: k8s.V1Container = {
      name: "head",
      ports: [{ name: "client", containerPort: 7000 }],
      readinessProbe: { httpGet: { path: "/readyz", port: "client" }, periodSeconds: 2, failureThreshold: 4 },
    };
    expect(readinessOf(container, "127.11.0.9:7000")).toEqual({
      url: "http://127.11.0.9:7000/readyz",
      periodMs: 2000,
      failureThreshold: 4,
      timeoutMs: 1000,
    });
    expect(readinessOf({ name: "head" }, "127.11.0.9:7000")).toEqual({
      url: undefined,
      periodMs: 10_000,
      failureThreshold: 3,
      timeoutMs: 1000,
    });
  });

  it("hands out addresses from the top of the pod CIDR, where KWOK's come last", () => {
    const addresses = addressesFromTop("127.11.0.0/16");
    expect([addresses.next().value, addresses.next().value]).toEqual(["127.11.255.254", "127.11.255.253"]);
    expect([...addressesFromTop("10.0.0.0/30")]).toEqual(["10.0.0.2", "10.0.0.1"]);
  });
});

// The scale benchmark runs the operator under its pod's memory limit this way. Making a cgroup
// needs root and a writable cgroup filesystem with a memory controller; elsewhere there is nothing
// to test.
describe.skipIf(!canCreateMemoryCgroups())("a memory cgroup for one process", () => {
  it("holds the process from its start under its own pid, so Node sizes its heap from the limit", async () => {
    const group = createMemoryCgroup(`understudy-harness-${process.pid}`, 512 * 2 ** 20);
    try {
      const script = `const v8 = require("node:v8");
        console.log(JSON.stringify({ pid: process.pid, limit: process.constrainedMemory(),
          heap: v8.getHeapStatistics().heap_size_limit,
          cgroup: require("node:fs").readFileSync("/proc/self/cgroup", "utf8") }))`;
      const [command, ...args] = inCgroup(group, [process.execPath, "-e", script]);
      // Node's flags of the test runner would size the heap themselves.
      const child = spawn(command!, args, { env: { ...process.env, NODE_OPTIONS: "" } });
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
      const [code] = (await once(child, "exit")) as [number | null];
      expect(code).toBe(0);
      const seen = JSON.parse(out) as { pid: number; limit: number; heap: number; cgroup: string };
      // The benchmark samples /proc/<pid> of the process it spawned: the shell must become Node.
      expect(seen.pid).toBe(child.pid);
      expect(seen.limit).toBe(512 * 2 ** 20);
      expect(seen.heap).toBeLessThan(300 * 2 ** 20);
      expect(seen.cgroup).toContain(`understudy-harness-${process.pid}`);
      expect(group.peakBytes()).toBeGreaterThan(0);
      expect(group.oomKills()).toBe(0);
    } finally {
      group.remove();
    }
  });
});
