// The e2e harness itself: pods that KWOK marks Running get real data-plane processes at their pod
// IPs, configured from the pod spec as a kubelet would; deleting a pod stops its process, a server
// recreated under the same name finds its data again, and a killed process comes back on its own.
// Readiness is the process's (a process that cannot start leaves its pod not Ready), and no pod is
// given an address a live process holds.
import type * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../src/dataplane/client.ts";
import { readRecordsOnDisk } from "../../src/dataplane/server-store.ts";
import { readFileSync } from "node:fs";
import { mergePatchOptions } from "../../src/kube/client.ts";
import { podCidr } from "../cluster/config.ts";
import { canConnect, PodRunner } from "../support/pod-runner.ts";
import { deleteNamespace, eventually, freshNamespace, testClient, testKubeConfig } from "../support/kube.ts";

const client = testClient();
let namespace: string;
let runner: PodRunner;

const ZONES = ["zone-a", "zone-b", "zone-c"];
const serverName = (zone: string) => `dp-${zone}-0`;
const serverHost = (zone: string) => `${serverName(zone)}.dp.${namespace}.svc.cluster.local:7001`;
const serverList = () => ZONES.map((z) => `${z}=${serverHost(z)}`).join(",");

function serverPod(zone: string): k8s.V1Pod {
  return {
    metadata: { name: serverName(zone), labels: { "understudy.dev/role": "server", app: "dp" } },
    spec: {
      nodeName: `kwok-${zone}-1`,
      hostname: serverName(zone),
      subdomain: "dp",
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: "server",
          image: "understudy:dev",
          command: ["node", "/app/src/dataplane/main.ts"],
          args: ["server", "--listen", "0.0.0.0:7001"],
          ports: [{ name: "server", containerPort: 7001 }],
          envFrom: [{ configMapRef: { name: "dp-settings" } }],
          env: [
            { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
            { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
            { name: "UNDERSTUDY_ZONE", value: zone },
            { name: "UNDERSTUDY_TOKEN", valueFrom: { secretKeyRef: { name: "dp-token", key: "token" } } },
            { name: "UNDERSTUDY_SERVERS", value: serverList() },
            { name: "UNDERSTUDY_ADVERTISE", value: "$(POD_NAME).dp.$(POD_NAMESPACE).svc.cluster.local:7001" },
            { name: "UNDERSTUDY_DATA_DIR", value: "/var/lib/understudy" },
          ],
        },
      ],
    },
  };
}

function headPod(name = "dp-head"): k8s.V1Pod {
  return {
    metadata: { name, labels: { "understudy.dev/role": "head", app: "dp" } },
    spec: {
      nodeName: "kwok-zone-a-2",
      terminationGracePeriodSeconds: 1,
      volumes: [{ name: "token", secret: { secretName: "dp-token" } }],
      containers: [
        {
          name: "head",
          image: "understudy:dev",
          args: ["head"],
          ports: [{ name: "head", containerPort: 7000 }],
          readinessProbe: {
            httpGet: { path: "/readyz", port: "head" },
            periodSeconds: 1,
            failureThreshold: 2,
          },
          volumeMounts: [{ name: "token", mountPath: "/etc/understudy", readOnly: true }],
          env: [
            { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
            { name: "UNDERSTUDY_LISTEN", value: "$(POD_IP):7000" },
            {
              name: "UNDERSTUDY_EPOCH",
              valueFrom: { configMapKeyRef: { name: "dp-settings", key: "EPOCH" } },
            },
            { name: "UNDERSTUDY_TOKEN_FILE", value: "/etc/understudy/token" },
            { name: "UNDERSTUDY_SERVERS", value: serverList() },
          ],
        },
      ],
    },
  };
}

const podIP = async (name: string) =>
  (await client.core.readNamespacedPod({ name, namespace })).status?.podIP;

const readPod = (name: string) => client.core.readNamespacedPod({ name, namespace });
const isReady = (pod: k8s.V1Pod) =>
  pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");

beforeAll(async () => {
  namespace = await freshNamespace(client, "pod-runner");
  await client.core.createNamespacedSecret({
    namespace,
    body: { metadata: { name: "dp-token" }, stringData: { token: "pod-runner-test-token" } },
  });
  await client.core.createNamespacedConfigMap({
    namespace,
    body: {
      metadata: { name: "dp-settings" },
      data: { EPOCH: "1", UNDERSTUDY_ANTI_ENTROPY_INTERVAL_MS: "300", UNDERSTUDY_LOG_LEVEL: "info" },
    },
  });
  runner = await PodRunner.start({ kubeConfig: testKubeConfig(), namespaces: [namespace] });
});

afterAll(async () => {
  await runner?.stop();
  if (!process.env.UNDERSTUDY_E2E_KEEP) runner?.removeFiles();
  await deleteNamespace(client, namespace);
});

describe("PodRunner", () => {
  it("runs head and server pods as real processes at their pod IPs, configured from the pod spec", async () => {
    for (const zone of ZONES) await client.core.createNamespacedPod({ namespace, body: serverPod(zone) });
    await client.core.createNamespacedPod({ namespace, body: headPod() });

    for (const zone of ZONES) {
      const info = await runner.waitForListening(serverName(zone), namespace);
      const ip = await podIP(serverName(zone));
      // KWOK hands pod IPs from the cluster's loopback range.
      expect(ip?.startsWith(podCidr.split(".").slice(0, 2).join(".") + ".")).toBe(true);
      expect(info.address).toBe(`${ip}:7001`);
      expect(info.role).toBe("server");
      expect(info.argv.slice(0, 3)).toEqual(["server", "--listen", `${ip}:7001`]);
      expect(info.dataDir).toBe(`${runner.root}/data/${namespace}_${serverName(zone)}`);
    }
    const head = await runner.waitForListening("dp-head", namespace);
    expect(head.address).toBe(`${await podIP("dp-head")}:7000`);

    // The head found the servers by their StatefulSet-style DNS names and fenced them with the
    // token from the Secret volume; a client reaches it at the pod IP.
    const dp = createClient({ resolveHead: async () => `http://${head.address}`, maxAttempts: 40 });
    const versions: number[] = [];
    for (let i = 0; i < 20; i++) versions.push((await dp.put(`k${i}`, `v${i}`)).version);
    expect(new Set(versions).size).toBe(20);
    expect(await dp.get("k7")).toEqual({ found: true, value: "v7", version: versions[7] });

    // The runner claimed the pods and reports their readiness: the head is Ready once /readyz passes.
    const ready = await eventually("the head pod Ready", async () => {
      const pod = await readPod("dp-head");
      return isReady(pod) ? pod : undefined;
    });
    expect(ready.metadata!.annotations!["understudy.dev/kubelet"]).toBe("pod-runner");
    expect(ready.status!.containerStatuses![0]).toMatchObject({
      ready: true,
      restartCount: 0,
      started: true,
    });
  });

  it("a process that cannot start leaves its pod not Ready, in CrashLoopBackOff, its restarts counted", async () => {
    const broken = headPod("dp-broken");
    // No epoch: the head refuses to start (exit 2), again and again.
    broken.spec!.containers[0]!.env = broken.spec!.containers[0]!.env!.filter(
      (e) => e.name !== "UNDERSTUDY_EPOCH",
    );
    await client.core.createNamespacedPod({ namespace, body: broken });
    const pod = await eventually(
      "dp-broken in CrashLoopBackOff",
      async () => {
        const p = await readPod("dp-broken");
        const status = p.status?.containerStatuses?.[0];
        return status?.state?.waiting?.reason === "CrashLoopBackOff" && (status.restartCount ?? 0) >= 2
          ? p
          : undefined;
      },
      30_000,
      50,
    );
    expect(pod.status!.phase).toBe("Running");
    expect(isReady(pod)).toBe(false);
    const ended = pod.status!.containerStatuses![0]!.lastState?.terminated;
    expect(ended?.reason).toBe("Error");
    expect(ended?.exitCode).toBeGreaterThan(0);
    // It never was Ready on the way there either: no process of it ever answered.
    expect(runner.process("dp-broken", namespace)!.ready).toBe(false);
    await client.core.deleteNamespacedPod({ name: "dp-broken", namespace, gracePeriodSeconds: 0 });
  });

  it("stops a deleted server pod's process and gives the recreated pod the same data folder", async () => {
    const name = serverName("zone-b");
    const before = runner.process(name, namespace)!;
    const onDisk = readRecordsOnDisk(before.dataDir!);
    expect(onDisk.size).toBeGreaterThan(0);

    await client.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 1 });
    await eventually(
      "the deleted pod's process to stop",
      async () => !(await canConnect(before.address)),
      20_000,
    );
    await eventually("the pod to be gone", async () => {
      try {
        await client.core.readNamespacedPod({ name, namespace });
        return false;
      } catch {
        return true;
      }
    });

    await client.core.createNamespacedPod({ namespace, body: serverPod("zone-b") });
    const after = await runner.waitForListening(name, namespace);
    expect(after.uid).not.toBe(before.uid);
    expect(after.dataDir).toBe(before.dataDir);
    const kept = readRecordsOnDisk(after.dataDir!);
    for (const [key, record] of onDisk) expect(kept.get(key)?.value).toBe(record.value);

    // The head reaches the recreated server through its name, whatever its new pod IP.
    const head = runner.process("dp-head", namespace)!;
    const dp = createClient({ resolveHead: async () => `http://${head.address}`, maxAttempts: 40 });
    expect((await dp.put("after-recreate", "x")).version).toBeGreaterThan(0);
  });

  it("kill() ends a process without touching its pod; it restarts, or stays down until released", async () => {
    const name = serverName("zone-c");
    const pod = await client.core.readNamespacedPod({ name, namespace });
    const first = runner.process(name, namespace)!;
    expect(first.starts).toBe(1);

    await runner.kill(name, "SIGKILL", { namespace, restart: false });
    expect(runner.process(name, namespace)!.running).toBe(false);
    expect(await canConnect(first.address)).toBe(false);
    // A kubelet sees its container gone: the pod is not Ready, its container waits.
    const down = await eventually("the pod not Ready", async () => {
      const p = await readPod(name);
      return isReady(p) ? undefined : p;
    });
    expect(down.status!.containerStatuses![0]!.state?.waiting).toBeDefined();
    await runner.release(name, namespace);
    const second = await runner.waitForListening(name, namespace);
    expect(second.starts).toBe(2);
    const back = await eventually("the pod Ready again", async () => {
      const p = await readPod(name);
      return isReady(p) ? p : undefined;
    });
    expect(back.status!.containerStatuses![0]!.restartCount).toBe(1);

    await runner.kill(name, "SIGKILL", { namespace });
    const third = await eventually("the restarted process", () => {
      const p = runner.process(name, namespace);
      return p?.running && p.starts === 3 ? p : undefined;
    });
    expect(third.pid).not.toBe(second.pid);
    const same = await client.core.readNamespacedPod({ name, namespace });
    expect(same.metadata!.uid).toBe(pod.metadata!.uid);
    expect(same.status!.phase).toBe("Running");
  });

  it("stops every process of a lost node until the node is revived", async () => {
    const lost = await runner.killNode("kwok-zone-a-1");
    expect(lost.map((p) => p.pod)).toEqual([serverName("zone-a")]);
    expect(runner.process(serverName("zone-a"), namespace)).toBeUndefined();
    expect(await canConnect(lost[0]!.address)).toBe(false);
    await runner.reviveNode("kwok-zone-a-1");
    await runner.waitForListening(serverName("zone-a"), namespace);
  });

  it("binds a volume to a waiting PVC; a server's data dir on it is the claim's folder", async () => {
    await client.core.createNamespacedPersistentVolumeClaim({
      namespace,
      body: {
        metadata: { name: "data-solo-0" },
        spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
      },
    });
    await eventually("the claim to be bound", async () => {
      const pvc = await client.core.readNamespacedPersistentVolumeClaim({ name: "data-solo-0", namespace });
      return pvc.status?.phase === "Bound";
    });
    const solo = serverPod("zone-c");
    solo.metadata!.name = "solo-0";
    solo.spec!.hostname = "solo-0";
    solo.spec!.subdomain = "solo";
    solo.spec!.volumes = [{ name: "data", persistentVolumeClaim: { claimName: "data-solo-0" } }];
    const container = solo.spec!.containers[0]!;
    container.volumeMounts = [{ name: "data", mountPath: "/var/lib/understudy" }];
    container.env = container.env!.map((e) =>
      e.name === "UNDERSTUDY_SERVERS"
        ? { name: e.name, value: `zone-c=solo-0.solo.${namespace}.svc:7001` }
        : e,
    );
    container.env.push({ name: "UNDERSTUDY_REPLICATION_FACTOR", value: "1" });
    container.env = container.env.map((e) =>
      e.name === "UNDERSTUDY_ADVERTISE"
        ? { name: e.name, value: "$(POD_NAME).solo.$(POD_NAMESPACE).svc:7001" }
        : e,
    );
    await client.core.createNamespacedPod({ namespace, body: solo });
    const info = await runner.waitForListening("solo-0", namespace);
    expect(info.dataDir).toBe(`${runner.root}/volumes/pvc/${namespace}_data-solo-0`);
  });

  it("never starts a pod's process at an address a live process holds", async () => {
    // An old head on a partitioned node: its pod is deleted, its process runs on at its address.
    await client.core.createNamespacedPod({ namespace, body: headPod("dp-old") });
    const old = await runner.waitForListening("dp-old", namespace);
    runner.partition("dp-old", namespace);
    await client.core.deleteNamespacedPod({ name: "dp-old", namespace, gracePeriodSeconds: 0 });
    // A new pod is handed the same IP (as KWOK does once the old pod is gone): here by hand, while its
    // process is down, so the runner meets the clash when it starts the process again.
    await client.core.createNamespacedPod({ namespace, body: headPod("dp-new") });
    const first = await runner.waitForListening("dp-new", namespace);
    await runner.kill("dp-new", "SIGKILL", { namespace, restart: false });
    const oldIP = old.address.split(":")[0]!;
    await client.core.patchNamespacedPodStatus(
      { name: "dp-new", namespace, body: { status: { podIP: oldIP, podIPs: [{ ip: oldIP }] } } },
      mergePatchOptions,
    );
    await eventually("the clash in the API", async () => (await podIP("dp-new")) === oldIP);
    await new Promise((resolve) => setTimeout(resolve, 500)); // and in the runner's informer
    await runner.release("dp-new", namespace);
    const moved = await eventually("dp-new on a fresh address", async () => {
      const ip = await podIP("dp-new");
      const p = runner.process("dp-new", namespace);
      return ip !== undefined && ip !== oldIP && p?.running && p.address === `${ip}:7000`
        ? { ip, p }
        : undefined;
    });
    expect(moved.ip).not.toBe(first.address.split(":")[0]);
    expect(moved.ip.startsWith(podCidr.split(".").slice(0, 2).join(".") + ".255.")).toBe(true);
    await runner.waitForListening("dp-new", namespace);
    // Both live: the old head at its address, the new one at its own; no process failed to bind.
    expect(await canConnect(old.address)).toBe(true);
    expect(readFileSync(moved.p.logFile, "utf8")).not.toContain("EADDRINUSE");
    await runner.kill("dp-old", "SIGKILL", { namespace });
    await client.core.deleteNamespacedPod({ name: "dp-new", namespace, gracePeriodSeconds: 0 });
  });

  it("puts back the IP of a pod whose process runs, as a kubelet never changes it (KWOK's patches race)", async () => {
    await client.core.createNamespacedPod({ namespace, body: headPod("dp-ip") });
    const started = await runner.waitForListening("dp-ip", namespace);
    const held = started.address.split(":")[0]!;
    const elsewhere = podCidr.split(".").slice(0, 2).join(".") + ".254.254";
    await client.core.patchNamespacedPodStatus(
      { name: "dp-ip", namespace, body: { status: { podIP: elsewhere, podIPs: [{ ip: elsewhere }] } } },
      mergePatchOptions,
    );
    await eventually("the pod's IP put back", async () => (await podIP("dp-ip")) === held);
    const after = runner.process("dp-ip", namespace)!;
    expect(after.address).toBe(started.address);
    expect(after.starts).toBe(1);
    expect(await canConnect(started.address)).toBe(true);
    await client.core.deleteNamespacedPod({ name: "dp-ip", namespace, gracePeriodSeconds: 0 });
  });

  it("stops the head's process when its pod is deleted", async () => {
    const head = runner.process("dp-head", namespace)!;
    expect(await canConnect(head.address)).toBe(true);
    await client.core.deleteNamespacedPod({ name: "dp-head", namespace, gracePeriodSeconds: 1 });
    await eventually("the head process to stop", async () => !(await canConnect(head.address)), 20_000);
    await eventually(
      "the runner to forget it",
      () => runner.process("dp-head", namespace) === undefined,
      20_000,
    );
  });
});
