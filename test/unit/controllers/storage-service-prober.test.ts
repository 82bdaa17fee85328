import type * as k8s from "@kubernetes/client-node";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { Cache } from "../../../src/controllers/context.ts";
import type { CustomObject } from "../../../src/kube/client.ts";
import {
  HeadProber,
  healthzUrl,
  probeTargets,
  type ProbeTarget,
} from "../../../src/controllers/storage-service/prober.ts";
import { eventually } from "../../support/kube.ts";

// The head prober against real HTTP servers on loopback: a head that answers, one that stops, one
// that never did.

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

async function head(initial = 200) {
  let hits = 0;
  let status = initial;
  const server = createServer((req, res) => {
    hits++;
    res.statusCode = req.url === "/healthz" ? status : 404;
    res.end();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    hits: () => hits,
    answer: (next: number) => (status = next),
  };
}

const target = (port: number, overrides: Partial<ProbeTarget> = {}): ProbeTarget => ({
  key: "storage/kv",
  pod: "kv-head-1",
  ip: "127.0.0.1",
  port,
  periodMs: 20,
  timeoutMs: 200,
  failureThreshold: 3,
  ...overrides,
});

describe("HeadProber", () => {
  it("counts consecutive failures of a head that answered, and reports crossing the threshold once", async () => {
    const { server, port, hits } = await head();
    const changed: string[] = [];
    const prober = new HeadProber({ onChange: (key) => changed.push(key) });
    try {
      prober.update([target(port)]);
      await eventually("answers", () => hits() >= 2 && prober.record("storage", "kv")?.answered);
      expect(prober.record("storage", "kv")).toMatchObject({ pod: "kv-head-1", consecutiveFailures: 0 });

      await new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      const failed = await eventually("failures", () => {
        const r = prober.record("storage", "kv");
        return r && r.consecutiveFailures >= 5 ? r : undefined;
      });
      expect(failed.failureThreshold).toBe(3);
      expect(failed.firstFailureAt).toBeTypeOf("number");
      expect(changed).toEqual(["storage/kv"]);
    } finally {
      prober.stop();
    }
  });

  it("counts an error status as a failure, and a success resets the count", async () => {
    const { port, answer } = await head(200);
    const prober = new HeadProber();
    try {
      prober.update([target(port, { failureThreshold: 100 })]);
      await eventually("answered", () => prober.record("storage", "kv")?.answered);
      answer(503);
      await eventually("failures", () => (prober.record("storage", "kv")?.consecutiveFailures ?? 0) >= 3);
      answer(200);
      await eventually("reset", () => prober.record("storage", "kv")?.consecutiveFailures === 0);
      expect(prober.record("storage", "kv")!.firstFailureAt).toBeUndefined();
    } finally {
      prober.stop();
    }
  });

  it("starts over when the head pod changes", async () => {
    const first = await head(200);
    const second = await head(503);
    const prober = new HeadProber();
    try {
      prober.update([target(first.port)]);
      await eventually("answered", () => prober.record("storage", "kv")?.answered);
      prober.update([target(second.port, { pod: "kv-head-2" })]);
      await eventually("probed", () => second.hits() >= 3);
      expect(prober.record("storage", "kv")).toMatchObject({
        pod: "kv-head-2",
        answered: false,
        consecutiveFailures: 0,
      });
    } finally {
      prober.stop();
    }
  });

  it("does not count failures of a head that never answered", async () => {
    const { port, hits } = await head(500);
    const prober = new HeadProber();
    try {
      prober.update([target(port)]);
      await eventually("probed", () => hits() >= 4);
      expect(prober.record("storage", "kv")).toMatchObject({ answered: false, consecutiveFailures: 0 });
    } finally {
      prober.stop();
    }
  });

  it("stops probing a service no longer listed", async () => {
    const { port, hits } = await head();
    const prober = new HeadProber();
    try {
      prober.update([target(port)]);
      await eventually("probed", () => hits() >= 1);
      prober.update([]);
      expect(prober.record("storage", "kv")).toBeUndefined();
      const before = hits();
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(hits()).toBeLessThanOrEqual(before + 1);
    } finally {
      prober.stop();
    }
  });

  it("probes http://<pod IP>:<port>/healthz, bracketing IPv6", () => {
    expect(healthzUrl({ ip: "127.10.0.4", port: 7000 })).toBe("http://127.10.0.4:7000/healthz");
    expect(healthzUrl({ ip: "fd00::4", port: 7000 })).toBe("http://[fd00::4]:7000/healthz");
  });
});

function cache<T extends k8s.KubernetesObject>(items: T[]): Cache<T> {
  const key = (name: string, namespace?: string) => (namespace ? `${namespace}/${name}` : name);
  const map = new Map(items.map((o) => [key(o.metadata!.name!, o.metadata!.namespace), o]));
  return { list: () => [...map.values()], get: (name, namespace) => map.get(key(name, namespace)) };
}

describe("probeTargets", () => {
  it("probes the recorded head pod of each service once it has an IP, with the service's settings", () => {
    const service = (name: string, head?: string): CustomObject => ({
      apiVersion: "understudy.dev/v1alpha1",
      kind: "StorageService",
      metadata: { name, namespace: "storage" },
      spec: {
        pool: "p",
        zones: ["zone-a"],
        replicationFactor: 1,
        head: { image: "i", port: 7100 },
        servers: { image: "i", storage: { size: "1Gi" } },
        failureDetection: {
          probePeriodMilliseconds: 200,
          probeTimeoutMilliseconds: 100,
          failureThreshold: 4,
        },
      },
      ...(head ? { status: { head: { pod: head } } } : {}),
    });
    const pod = (name: string, ip?: string): k8s.V1Pod => ({
      metadata: { name, namespace: "storage" },
      status: ip ? { podIP: ip } : {},
    });
    const targets = probeTargets({
      services: cache([service("kv", "kv-head-2"), service("new"), service("starting", "starting-head-1")]),
      pods: cache([pod("kv-head-2", "127.10.0.8"), pod("starting-head-1")]),
    });
    expect(targets).toEqual([
      {
        key: "storage/kv",
        pod: "kv-head-2",
        ip: "127.10.0.8",
        port: 7100,
        periodMs: 200,
        timeoutMs: 100,
        failureThreshold: 4,
      },
    ]);
  });
});
