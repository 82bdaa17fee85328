import type * as k8s from "@kubernetes/client-node";
import { service } from "./fixtures.ts";
import { describe, expect, it } from "vitest";
import {
  DATAPLANE_MAIN,
  headPod,
  headService,
  routedEpochOf,
  serverConfigMap,
  serverDnsList,
  serverHeadlessService,
  serverIpList,
  serverStatefulSet,
  tokenSecret,
} from "../../../src/controllers/storage-service/manifests.ts";
import { loadServers } from "../../../src/dataplane/config.ts";

const env = (container: k8s.V1Container, name: string) => container.env?.find((e) => e.name === name);

/** A slot of the pool, whose tolerations the head on it gets. */
const poolToleration = {
  key: "dedicated",
  operator: "Equal" as const,
  value: "pool",
  effect: "NoSchedule" as const,
};
const slot = {
  kind: "slot" as const,
  zone: "zone-b",
  node: "node-b1",
  leaseName: "slot-contingency-zone-b-0",
  pool: "contingency",
  slotSize: { cpu: "500m", memory: "512Mi" },
  tolerations: [poolToleration],
};

describe("the head pod", () => {
  it("of a normal head is scheduled into the primary zone and carries its epoch", () => {
    const pod = headPod(service(), 3, { kind: "zone", zone: "zone-a" });
    expect(pod.metadata).toMatchObject({
      name: "kv-head-3",
      namespace: "storage",
      labels: {
        "understudy.dev/service": "kv",
        "understudy.dev/role": "head",
        "understudy.dev/epoch": "3",
        "understudy.dev/zone": "zone-a",
      },
    });
    expect(pod.metadata!.ownerReferences).toEqual([
      expect.objectContaining({ kind: "StorageService", name: "kv", uid: "uid-1", controller: true }),
    ]);
    expect(pod.spec!.nodeName).toBeUndefined();
    expect(pod.spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution).toEqual({
      nodeSelectorTerms: [
        { matchExpressions: [{ key: "topology.kubernetes.io/zone", operator: "In", values: ["zone-a"] }] },
      ],
    });
    const container = pod.spec!.containers[0]!;
    expect(container.args).toEqual([DATAPLANE_MAIN, "head"]);
    expect(env(container, "UNDERSTUDY_ROLE")?.value).toBe("head");
    expect(env(container, "UNDERSTUDY_EPOCH")?.value).toBe("3");
    expect(env(container, "UNDERSTUDY_LISTEN")?.value).toBe("0.0.0.0:7000");
    expect(env(container, "UNDERSTUDY_TOKEN")?.valueFrom?.secretKeyRef).toEqual({
      name: "kv-token",
      key: "token",
    });
    expect(env(container, "UNDERSTUDY_SERVERS")?.valueFrom?.configMapKeyRef).toEqual({
      name: "kv-config",
      key: "servers",
    });
    expect(container.readinessProbe?.httpGet).toMatchObject({ path: "/readyz", port: 7000 });
    expect(container.resources).toBeUndefined();
  });

  it("on a slot is pinned to the slot's node, labelled with the slot, and sized to the slot unless the spec sizes it", () => {
    const placement = slot;
    const pod = headPod(service(), 2, placement);
    expect(pod.spec!.nodeName).toBe("node-b1");
    expect(pod.spec!.affinity).toBeUndefined();
    expect(pod.spec!.tolerations).toEqual(placement.tolerations);
    expect(pod.metadata!.labels).toMatchObject({
      "understudy.dev/slot": "slot-contingency-zone-b-0",
      "understudy.dev/pool": "contingency",
      "understudy.dev/zone": "zone-b",
    });
    expect(pod.spec!.containers[0]!.resources).toEqual({
      requests: { cpu: "500m", memory: "512Mi" },
      limits: { cpu: "500m", memory: "512Mi" },
    });

    const sized = headPod(
      service((spec) => ((spec.head as Record<string, unknown>).resources = { requests: { cpu: "250m" } })),
      2,
      placement,
    );
    expect(sized.spec!.containers[0]!.resources).toEqual({ requests: { cpu: "250m" }, limits: undefined });
  });
});

describe("scheduling settings of heads and servers", () => {
  const withScheduling = () =>
    service((spec) => {
      spec.imagePullSecrets = [{ name: "regcred" }];
      Object.assign(spec.head as object, {
        nodeSelector: { "example.com/tier": "heads" },
        tolerations: [{ key: "example.com/heads", operator: "Exists", effect: "NoSchedule" }],
        priorityClassName: "storage-critical",
      });
      Object.assign(spec.servers as object, {
        nodeSelector: { "example.com/disk": "ssd" },
        tolerations: [{ key: "example.com/storage", operator: "Equal", value: "yes", effect: "NoExecute" }],
        priorityClassName: "storage-high",
      });
    });

  it("a head in its zone carries the head's nodeSelector, tolerations, priority and the pull secrets", () => {
    const pod = headPod(withScheduling(), 1, { kind: "zone", zone: "zone-a" });
    expect(pod.spec).toMatchObject({
      nodeSelector: { "example.com/tier": "heads" },
      tolerations: [{ key: "example.com/heads", operator: "Exists", effect: "NoSchedule" }],
      priorityClassName: "storage-critical",
      imagePullSecrets: [{ name: "regcred" }],
    });
    expect(pod.spec!.affinity).toBeDefined();
  });

  it("a head on a slot adds the pool's tolerations to its own, and keeps its nodeSelector for the kubelet's check", () => {
    const pod = headPod(withScheduling(), 2, slot);
    expect(pod.spec!.nodeName).toBe("node-b1");
    expect(pod.spec!.nodeSelector).toEqual({ "example.com/tier": "heads" });
    expect(pod.spec!.tolerations).toEqual([
      { key: "example.com/heads", operator: "Exists", effect: "NoSchedule" },
      poolToleration,
    ]);
    expect(pod.spec!.priorityClassName).toBe("storage-critical");
    expect(pod.spec!.imagePullSecrets).toEqual([{ name: "regcred" }]);
  });

  it("server pods carry the servers' own settings beside the zone affinity, and the pull secrets", () => {
    const template = serverStatefulSet(withScheduling(), "zone-c").spec!.template.spec!;
    expect(template).toMatchObject({
      nodeSelector: { "example.com/disk": "ssd" },
      tolerations: [{ key: "example.com/storage", operator: "Equal", value: "yes", effect: "NoExecute" }],
      priorityClassName: "storage-high",
      imagePullSecrets: [{ name: "regcred" }],
    });
    expect(template.affinity!.nodeAffinity).toBeDefined();
  });

  it("none of them is set when the spec sets none", () => {
    const zoned = headPod(service(), 1, { kind: "zone", zone: "zone-a" }).spec!;
    const server = serverStatefulSet(service(), "zone-a").spec!.template.spec!;
    for (const spec of [zoned, server])
      for (const field of ["nodeSelector", "tolerations", "priorityClassName", "imagePullSecrets"] as const)
        expect(spec[field]).toBeUndefined();
  });
});

describe("the head Service", () => {
  it("selects only the head of one epoch, and that epoch reads back from its selector", () => {
    const svc = headService(service(), 5);
    expect(svc.metadata!.name).toBe("kv-head");
    expect(svc.spec).toMatchObject({
      type: "ClusterIP",
      selector: {
        "understudy.dev/service": "kv",
        "understudy.dev/role": "head",
        "understudy.dev/epoch": "5",
      },
      ports: [{ port: 7000, targetPort: 7000 }],
    });
    expect(routedEpochOf(svc)).toBe(5);
    expect(routedEpochOf(undefined)).toBeUndefined();
    expect(routedEpochOf({ spec: { selector: { "understudy.dev/epoch": "x" } } })).toBeUndefined();
  });
});

describe("the servers", () => {
  it("run as one StatefulSet per zone, pinned to the zone, each pod with its own volume", () => {
    const set = serverStatefulSet(
      service(
        (spec) => ((spec.servers as { storage: Record<string, unknown> }).storage.storageClassName = "fast"),
      ),
      "zone-b",
    );
    expect(set.metadata!.name).toBe("kv-server-zone-b");
    expect(set.spec).toMatchObject({
      serviceName: "kv-server-zone-b",
      replicas: 2,
      podManagementPolicy: "Parallel",
    });
    const template = set.spec!.template;
    expect(template.metadata!.labels).toMatchObject(set.spec!.selector.matchLabels!);
    expect(
      template.spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!
        .nodeSelectorTerms[0]!.matchExpressions![0]!.values,
    ).toEqual(["zone-b"]);
    const container = template.spec!.containers[0]!;
    expect(container.args).toEqual([DATAPLANE_MAIN, "server"]);
    expect(env(container, "UNDERSTUDY_ZONE")?.value).toBe("zone-b");
    expect(env(container, "UNDERSTUDY_DATA_DIR")?.value).toBe("/data");
    expect(env(container, "UNDERSTUDY_ADVERTISE")?.value).toBe(
      "$(UNDERSTUDY_POD_NAME).kv-server-zone-b.storage.svc:7001",
    );
    expect(container.volumeMounts).toContainEqual({ name: "data", mountPath: "/data" });
    expect(set.spec!.volumeClaimTemplates![0]!.spec).toMatchObject({
      accessModes: ["ReadWriteOnce"],
      resources: { requests: { storage: "1Gi" } },
      storageClassName: "fast",
    });
    const headless = serverHeadlessService(service(), "zone-b");
    expect(headless.metadata!.name).toBe(set.spec!.serviceName);
    expect(headless.spec).toMatchObject({ clusterIP: "None", selector: set.spec!.selector.matchLabels });
  });

  it("are listed by stable DNS name in a form the data plane reads", () => {
    const list = serverDnsList(service());
    expect(list.split(",")).toEqual([
      "zone-a=kv-server-zone-a-0.kv-server-zone-a.storage.svc:7001",
      "zone-a=kv-server-zone-a-1.kv-server-zone-a.storage.svc:7001",
      "zone-b=kv-server-zone-b-0.kv-server-zone-b.storage.svc:7001",
      "zone-b=kv-server-zone-b-1.kv-server-zone-b.storage.svc:7001",
      "zone-c=kv-server-zone-c-0.kv-server-zone-c.storage.svc:7001",
      "zone-c=kv-server-zone-c-1.kv-server-zone-c.storage.svc:7001",
    ]);
    expect(loadServers(list).map((s) => s.zone)).toEqual([
      "zone-a",
      "zone-a",
      "zone-b",
      "zone-b",
      "zone-c",
      "zone-c",
    ]);
  });

  it("are also listed by pod IP once they have one, in zone then name order", () => {
    const pod = (name: string, zone: string, ip?: string, deleting = false): k8s.V1Pod => ({
      metadata: {
        name,
        labels: { "understudy.dev/zone": zone },
        ...(deleting ? { deletionTimestamp: new Date() } : {}),
      },
      status: ip ? { podIP: ip } : {},
    });
    const pods = [
      pod("kv-server-zone-b-0", "zone-b", "127.10.0.9"),
      pod("kv-server-zone-a-1", "zone-a", "127.10.0.3"),
      pod("kv-server-zone-a-0", "zone-a", "127.10.0.2"),
      pod("kv-server-zone-c-0", "zone-c"),
      pod("kv-server-zone-c-1", "zone-c", "127.10.0.7", true),
    ];
    const list = serverIpList(service(), pods);
    expect(list).toBe("zone-a=127.10.0.2:7001,zone-a=127.10.0.3:7001,zone-b=127.10.0.9:7001");
    expect(loadServers(list)).toHaveLength(3);
    const config = serverConfigMap(service(), pods);
    expect(config.data).toEqual({
      servers: serverDnsList(service()),
      "server-ips": list,
      partitions: "64",
      "replication-factor": "3",
    });
  });
});

describe("identity", () => {
  it("head and server processes learn the service's UID and their pod's name, which they name on every reply", () => {
    const head = headPod(service(), 3, { kind: "zone", zone: "zone-a" }).spec!.containers[0]!;
    const server = serverStatefulSet(service(), "zone-b").spec!.template.spec!.containers[0]!;
    for (const container of [head, server]) {
      expect(env(container, "UNDERSTUDY_SERVICE_UID")).toEqual({
        name: "UNDERSTUDY_SERVICE_UID",
        value: "uid-1",
      });
      expect(env(container, "UNDERSTUDY_POD_NAME")).toEqual({
        name: "UNDERSTUDY_POD_NAME",
        valueFrom: { fieldRef: { fieldPath: "metadata.name" } },
      });
    }
    // The advertised address expands the pod name, so it must be defined before it.
    const names = server.env!.map((e) => e.name);
    expect(names.indexOf("UNDERSTUDY_POD_NAME")).toBeLessThan(names.indexOf("UNDERSTUDY_ADVERTISE"));
  });
});

describe("the token Secret", () => {
  it("holds the token it was given, owned by the service", () => {
    const secret = tokenSecret(service(), "abc123");
    expect(secret.metadata!.name).toBe("kv-token");
    expect(secret.stringData).toEqual({ token: "abc123" });
    expect(secret.metadata!.ownerReferences![0]!.uid).toBe("uid-1");
  });
});

describe("TLS and client authentication in the pods", () => {
  const secure = () =>
    service((spec) => {
      spec.tls = { mode: "Required" };
      spec.authentication = { mode: "Required", clients: [{ name: "app" }] };
    });
  const secretVolumes = (spec: k8s.V1PodSpec) =>
    (spec.volumes ?? []).flatMap((v) => (v.secret ? [v.secret.secretName] : []));

  it("are off by default: no Secret volumes, plain HTTP probes, no TLS variables", () => {
    const pod = headPod(service(), 1, { kind: "zone", zone: "zone-a" });
    const set = serverStatefulSet(service(), "zone-a");
    expect(secretVolumes(pod.spec!)).toEqual([]);
    expect(secretVolumes(set.spec!.template.spec!)).toEqual([]);
    expect(pod.spec!.containers[0]!.readinessProbe!.httpGet!.scheme).toBeUndefined();
    expect(env(pod.spec!.containers[0]!, "UNDERSTUDY_TLS_MODE")).toBeUndefined();
    expect(env(pod.spec!.containers[0]!, "UNDERSTUDY_CLIENT_TOKENS_FILE")).toBeUndefined();
  });

  it("mount the serving certificate in heads and servers, and the client digests in heads only", () => {
    const pod = headPod(secure(), 1, { kind: "zone", zone: "zone-a" });
    const head = pod.spec!.containers[0]!;
    expect(secretVolumes(pod.spec!)).toEqual(["kv-tls", "kv-clients"]);
    expect(env(head, "UNDERSTUDY_TLS_MODE")?.value).toBe("required");
    expect(env(head, "UNDERSTUDY_TLS_CERT_FILE")?.value).toBe("/etc/understudy/tls/tls.crt");
    expect(env(head, "UNDERSTUDY_TLS_CA_FILE")?.value).toBe("/etc/understudy/tls/ca.crt");
    expect(env(head, "UNDERSTUDY_CLIENT_TOKENS_FILE")?.value).toBe("/etc/understudy/clients/clients.json");
    expect(head.readinessProbe!.httpGet!.scheme).toBe("HTTPS");
    expect(head.volumeMounts!.map((m) => m.mountPath)).toContain("/etc/understudy/tls");

    const set = serverStatefulSet(secure(), "zone-a");
    const server = set.spec!.template.spec!.containers[0]!;
    expect(secretVolumes(set.spec!.template.spec!)).toEqual(["kv-tls"]);
    expect(env(server, "UNDERSTUDY_TLS_KEY_FILE")?.value).toBe("/etc/understudy/tls/tls.key");
    expect(env(server, "UNDERSTUDY_CLIENT_TOKENS_FILE")).toBeUndefined();
    expect(server.readinessProbe!.httpGet!.scheme).toBe("HTTPS");
  });
});
