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
import { formatIdentity, IDENTITY_HEADER, type Identity } from "../../../src/dataplane/identity.ts";
import { eventually } from "../../support/kube.ts";

// The head prober against real HTTP servers on loopback: a head that answers, one that stops, one
// that never did, and another process answering at the head's address.

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

const KV_HEAD_1: Identity = { service: "uid-kv", role: "head", pod: "kv-head-1", epoch: 1 };

/** A process answering /healthz with `initial` as `identity` (null: names nobody). */
async function head(initial = 200, identity: Identity | null = KV_HEAD_1) {
  let hits = 0;
  let status = initial;
  const server = createServer((req, res) => {
    hits++;
    if (identity) res.setHeader(IDENTITY_HEADER, formatIdentity(identity));
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
  serviceUid: "uid-kv",
  pod: "kv-head-1",
  epoch: 1,
  tls: false,
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
    const prober = new HeadProber();
    prober.onThreshold((key) => changed.push(key));
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
    const second = await head(503, { ...KV_HEAD_1, pod: "kv-head-2" });
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

  it("counts every answer from another process at the head's address, even before the head ever answered", async () => {
    // Another service's head holds the address (a reused pod IP): it answers 200, as itself.
    const { port } = await head(200, { service: "uid-other", role: "head", pod: "other-head-3", epoch: 3 });
    const changed: string[] = [];
    const prober = new HeadProber();
    prober.onThreshold((key) => changed.push(key));
    try {
      prober.update([target(port)]);
      const failed = await eventually("impostor failures", () => {
        const r = prober.record("storage", "kv");
        return r && r.consecutiveFailures >= 3 ? r : undefined;
      });
      expect(failed).toMatchObject({ answered: false, failureThreshold: 3 });
      expect(failed.impostor).toContain("service uid-other, not uid-kv");
      expect(failed.impostor).toContain("pod other-head-3, not kv-head-1");
      expect(changed).toEqual(["storage/kv"]);
    } finally {
      prober.stop();
    }
  });

  it("fails an older head of the same service, and an answer that names nobody", async () => {
    const older = await head(200, { ...KV_HEAD_1, epoch: 0 });
    const anonymous = await head(200, null);
    const prober = new HeadProber();
    try {
      prober.update([target(older.port), target(anonymous.port, { key: "storage/other" })]);
      await eventually(
        "both failing",
        () =>
          (prober.record("storage", "kv")?.consecutiveFailures ?? 0) >= 2 &&
          (prober.record("storage", "other")?.consecutiveFailures ?? 0) >= 2,
      );
      expect(prober.record("storage", "kv")!.impostor).toContain("epoch 0, not 1");
      expect(prober.record("storage", "other")!.impostor).toContain("names no understudy identity");
    } finally {
      prober.stop();
    }
  });

  it("takes the identity from the body when the header is missing, and keeps one connection", async () => {
    const sockets = new Set<unknown>();
    const server = createServer((_req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ status: "ok", ...KV_HEAD_1 }));
    });
    server.on("connection", (socket) => sockets.add(socket));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const prober = new HeadProber();
    try {
      prober.update([target((server.address() as AddressInfo).port)]);
      await eventually("answered as itself", () => prober.record("storage", "kv")?.answered);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(prober.record("storage", "kv")?.consecutiveFailures).toBe(0);
      expect(sockets.size).toBe(1);
    } finally {
      prober.stop();
    }
  });

  it("reads no more than 4 KiB of an endless answer, and a head slower than the timeout fails", async () => {
    let slow = false;
    const server = createServer((_req, res) => {
      res.setHeader(IDENTITY_HEADER, formatIdentity(KV_HEAD_1));
      if (slow) return; // answers nothing until the probe gives up
      res.write("x".repeat(64 * 1024));
      const more = setInterval(() => res.write("x".repeat(64 * 1024)), 5);
      res.on("close", () => clearInterval(more));
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const prober = new HeadProber();
    try {
      prober.update([target((server.address() as AddressInfo).port, { failureThreshold: 100 })]);
      await eventually("judged by its header", () => prober.record("storage", "kv")?.answered);
      expect(prober.record("storage", "kv")?.consecutiveFailures).toBe(0);
      slow = true;
      await eventually("failures", () => (prober.record("storage", "kv")?.consecutiveFailures ?? 0) >= 2);
    } finally {
      prober.stop();
      server.closeAllConnections();
    }
  });

  it("judges nothing by a probe whose deadline passed while the operator was blocked", async () => {
    let hits = 0;
    const server = createServer((_req, res) => {
      hits++;
      res.setHeader(IDENTITY_HEADER, formatIdentity(KV_HEAD_1));
      if (hits === 1) res.end(); // answers once, then hangs
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const prober = new HeadProber();
    try {
      prober.update([
        target((server.address() as AddressInfo).port, {
          periodMs: 400,
          timeoutMs: 100,
          failureThreshold: 100,
        }),
      ]);
      await eventually("answered as itself", () => prober.record("storage", "kv")?.answered, 5_000, 5);
      await eventually("the second probe in flight", () => hits >= 2, 5_000, 1);
      const blockedUntil = performance.now() + 500; // the event loop blocked past the 100 ms timeout
      while (performance.now() < blockedUntil);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(prober.record("storage", "kv")?.consecutiveFailures).toBe(0);
      // Not blocked, the same hang is a failure.
      await eventually("a failure", () => (prober.record("storage", "kv")?.consecutiveFailures ?? 0) >= 1);
    } finally {
      prober.stop();
      server.closeAllConnections();
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

  it("probes http(s)://<pod IP>:<port>/healthz, bracketing IPv6", () => {
    expect(healthzUrl({ ip: "127.10.0.4", port: 7000, tls: false })).toBe("http://127.10.0.4:7000/healthz");
    expect(healthzUrl({ ip: "fd00::4", port: 7000, tls: false })).toBe("http://[fd00::4]:7000/healthz");
    expect(healthzUrl({ ip: "127.10.0.4", port: 7000, tls: true })).toBe("https://127.10.0.4:7000/healthz");
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
      metadata: { name, namespace: "storage", uid: `uid-${name}` },
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
      metadata: { name, namespace: "storage", labels: { "understudy.dev/epoch": "2" } },
      status: ip ? { podIP: ip } : {},
    });
    const targets = probeTargets({
      services: cache([service("kv", "kv-head-2"), service("new"), service("starting", "starting-head-1")]),
      pods: cache([pod("kv-head-2", "127.10.0.8"), pod("starting-head-1")]),
    });
    expect(targets).toEqual([
      {
        key: "storage/kv",
        serviceUid: "uid-kv",
        pod: "kv-head-2",
        epoch: 2,
        ip: "127.10.0.8",
        port: 7100,
        tls: false,
        periodMs: 200,
        timeoutMs: 100,
        failureThreshold: 4,
      },
    ]);
  });
});
