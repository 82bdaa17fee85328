import * as k8s from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Manager } from "../../src/operator/manager.ts";
import { createLogger } from "../../src/operator/logger.ts";
import { parseSettings } from "../../src/operator/settings.ts";
import { deleteNamespace, eventually, freshNamespace, testClient, testKubeConfig } from "../support/kube.ts";

// Managers in this process, with leader election on one Lease: controllers run on the leader
// only, a graceful shutdown hands over to the standby at once, and a leader that loses its lease
// ends the process with a non-zero code.

const client = testClient();
let namespace: string;

beforeAll(async () => {
  namespace = await freshNamespace(client, "op-manager");
});
afterAll(async () => {
  await deleteNamespace(client, namespace);
});

const configMaps = { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true };

const managers: Manager[] = [];
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.shutdown("test finished")));
});

interface TestManager {
  manager: Manager;
  reconciled: string[];
  exits: number[];
}

function testManager(identity: string, lease: string, extraArgs: string[] = []): TestManager {
  const settings = parseSettings(
    [
      ...extraArgs,
      "--namespace",
      namespace,
      "--leader-election-id",
      lease,
      "--leader-election-identity",
      identity,
      "--lease-duration",
      "2s",
      "--renew-deadline",
      "1500ms",
      "--retry-period",
      "250ms",
      "--metrics-bind-address",
      "127.0.0.1:0",
      "--shutdown-timeout",
      "5s",
    ],
    {},
  );
  const exits: number[] = [];
  const manager = new Manager({
    settings,
    kubeConfig: testKubeConfig(),
    log: createLogger({ level: "warn" }),
    exit: (code) => exits.push(code),
  });
  managers.push(manager);
  const reconciled: string[] = [];
  const informer = manager.informer<k8s.V1ConfigMap>(configMaps, {
    namespace,
    labelSelector: `lease=${lease}`,
  });
  manager
    .controller({
      name: "echo",
      reconcile: async (key) => {
        reconciled.push(key);
      },
    })
    .watch(informer);
  return { manager, reconciled, exits };
}

async function get(manager: Manager, path: string): Promise<{ status: number; body: string }> {
  const { port } = manager.address()!;
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

describe("Manager", () => {
  it("shares one informer per resource, namespace and selector", () => {
    const { manager } = testManager("solo", "shared");
    const a = manager.informer(configMaps, { namespace, labelSelector: "x=1" });
    expect(manager.informer(configMaps, { namespace, labelSelector: "x=1" })).toBe(a);
    expect(manager.informer(configMaps, { namespace, labelSelector: "x=2" })).not.toBe(a);
    expect(manager.informer(configMaps)).not.toBe(a);
  });

  it("runs controllers only on the leader, and hands over to the standby on shutdown", async () => {
    const lease = "handover";
    await client.core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: "watched", labels: { lease } } },
    });
    const one = testManager("one", lease);
    const two = testManager("two", lease);
    await Promise.all([one.manager.start(), two.manager.start()]);

    const leader = await eventually("a leader", () => [one, two].find((m) => m.manager.isLeader()));
    const standby = leader === one ? two : one;
    await eventually("the leader to reconcile", () => leader.reconciled.includes(`${namespace}/watched`));
    await eventually("both ready", async () => {
      const [a, b] = await Promise.all([get(one.manager, "/readyz"), get(two.manager, "/readyz")]);
      return a.status === 200 && b.status === 200;
    });
    expect(standby.reconciled).toEqual([]);
    expect(standby.manager.isLeader()).toBe(false);

    const metrics = await get(leader.manager, "/metrics");
    expect(metrics.body).toContain('understudy_reconcile_total{controller="echo",result="success"}');
    expect(metrics.body).toContain("process_cpu_user_seconds_total");
    expect((await get(leader.manager, "/healthz")).status).toBe(200);

    expect(await leader.manager.shutdown("test")).toBe(0);
    const released = await client.coordination.readNamespacedLease({ name: lease, namespace });
    expect(["", standby.manager.settings.leaderElection.identity]).toContain(released.spec?.holderIdentity);
    // The standby takes over and reconciles what is there, without any new event.
    await eventually("the standby to lead and reconcile", () =>
      standby.reconciled.includes(`${namespace}/watched`),
    );
    expect(standby.manager.isLeader()).toBe(true);
    expect(leader.exits).toEqual([]);
    expect(standby.exits).toEqual([]);
  });

  it("exits non-zero when it loses leadership", async () => {
    const lease = "lost";
    const m = testManager("loser", lease);
    await m.manager.start();
    await eventually("leading", () => m.manager.isLeader());
    const current = await client.coordination.readNamespacedLease({ name: lease, namespace });
    await client.coordination.replaceNamespacedLease({
      name: lease,
      namespace,
      body: {
        ...current,
        spec: {
          ...current.spec,
          holderIdentity: "usurper",
          leaseDurationSeconds: 3600,
          renewTime: new k8s.V1MicroTime(Date.now()),
        },
      },
    });
    await eventually("the manager to exit", () => m.exits.length > 0, 20_000);
    expect(m.exits).toEqual([1]);
  });

  it("keeps renewing its lease while the controllers' requests queue for the rate limit", async () => {
    const lease = "busy";
    // 2 requests a second: ten queued requests take about 4 s, beyond the 1.5 s renew deadline.
    const m = testManager("busy", lease, ["--kube-api-qps", "2", "--kube-api-burst", "2"]);
    await m.manager.start();
    await eventually("leading", () => m.manager.isLeader());
    const renewTime = async () =>
      new Date(
        (await client.coordination.readNamespacedLease({ name: lease, namespace })).spec!.renewTime!,
      ).getTime();
    const before = await renewTime();
    const queued = Array.from({ length: 10 }, () =>
      m.manager.client.core.listNamespacedConfigMap({ namespace }),
    );
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(m.manager.isLeader()).toBe(true);
    expect(m.exits).toEqual([]);
    expect(await renewTime()).toBeGreaterThan(before + 2000);
    await Promise.all(queued);
  });

  it("reports its checks in /readyz and closes the server on shutdown", async () => {
    const m = testManager("readiness", "readiness");
    await m.manager.start();
    await eventually("ready", async () => (await get(m.manager, "/readyz")).status === 200);
    const ready = await get(m.manager, "/readyz");
    expect(ready.body).toContain("[+]informers ok");
    expect(ready.body).toContain("[+]leader-election ok");
    await m.manager.shutdown("test");
    expect(m.manager.address()).toBeUndefined();
  });
});
