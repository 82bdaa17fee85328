import type * as k8s from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { nodeAsRead, podAsRead, withoutManagedFields } from "../../../src/controllers/cache-transforms.ts";
import { podRequests, toNodeView } from "../../../src/controllers/views.ts";

const managedFields: k8s.V1ManagedFieldsEntry[] = [
  { manager: "kubectl", operation: "Update", fieldsType: "FieldsV1", fieldsV1: { "f:spec": {} } },
];

const pod = (labels: Record<string, string>): k8s.V1Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: {
    name: "p",
    namespace: "ns",
    uid: "u1",
    resourceVersion: "42",
    generation: 1,
    labels,
    annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{...}".repeat(100) },
    ownerReferences: [{ apiVersion: "understudy.dev/v1alpha1", kind: "PoolClaim", name: "c", uid: "u0" }],
    deletionTimestamp: new Date("2026-12-01T00:00:00Z"),
    managedFields,
  },
  spec: {
    nodeName: "n1",
    serviceAccountName: "default",
    volumes: [{ name: "v", emptyDir: {} }],
    resources: { requests: { cpu: "1" } },
    containers: [
      {
        name: "c",
        image: "pause",
        env: [{ name: "X", value: "y" }],
        resources: { requests: { cpu: "250m", memory: "64Mi" }, limits: { cpu: "1" } },
      },
      { name: "d", image: "pause" },
    ],
    initContainers: [{ name: "i", image: "init", resources: { requests: { cpu: "2" } } }],
  },
  status: {
    phase: "Running",
    podIP: "10.0.0.1",
    hostIP: "192.168.0.1",
    reason: "Evicted",
    message: "gone",
    conditions: [{ type: "Ready", status: "True" }],
    containerStatuses: [
      { name: "c", ready: true, restartCount: 0, image: "pause", imageID: "x", started: true },
    ],
  },
});

describe("withoutManagedFields", () => {
  it("drops managedFields and keeps everything else", () => {
    const lease: k8s.V1Lease = {
      metadata: { name: "l", resourceVersion: "7", labels: { a: "b" }, managedFields },
      spec: { holderIdentity: "claim:t/a" },
    };
    expect(withoutManagedFields(lease)).toEqual({
      metadata: { name: "l", resourceVersion: "7", labels: { a: "b" } },
      spec: { holderIdentity: "claim:t/a" },
    });
    expect(lease.metadata!.managedFields).toBe(managedFields);
  });

  it("returns an object without managedFields as it is", () => {
    const o = { metadata: { name: "x" } };
    expect(withoutManagedFields(o)).toBe(o);
  });
});

describe("podAsRead", () => {
  it("keeps what the controllers read of the operator's pods, annotations included", () => {
    const given = pod({ "understudy.dev/pool": "p" });
    const read = podAsRead(given);
    const { managedFields: _, ...metadata } = given.metadata!;
    expect(read).toEqual({
      apiVersion: "v1",
      kind: "Pod",
      metadata,
      spec: {
        nodeName: "n1",
        resources: { requests: { cpu: "1" } },
        containers: [
          { name: "c", image: "pause", resources: { requests: { cpu: "250m", memory: "64Mi" } } },
          { name: "d", image: "pause" },
        ],
        initContainers: [{ name: "i", image: "init", resources: { requests: { cpu: "2" } } }],
      },
      status: {
        phase: "Running",
        podIP: "10.0.0.1",
        reason: "Evicted",
        message: "gone",
        conditions: [{ type: "Ready", status: "True" }],
      },
    });
  });

  it("drops the annotations of pods the operator does not run", () => {
    for (const labels of [{}, { app: "web" }] as Record<string, string>[])
      expect(podAsRead(pod(labels)).metadata!.annotations).toBeUndefined();
    for (const label of ["understudy.dev/service", "understudy.dev/role"])
      expect(podAsRead(pod({ [label]: "x" })).metadata!.annotations).toBeDefined();
  });

  it("requests what the pod requested, as the scheduler counts it", () => {
    expect(podRequests(podAsRead(pod({})))).toEqual(podRequests(pod({})));
  });

  it("keeps a tenant's pod whole but for managedFields: admission reads every field", () => {
    const given = pod({ "understudy.dev/claim": "c" });
    given.spec!.schedulingGates = [{ name: "understudy.dev/slot" }];
    given.spec!.containers[0]!.securityContext = { privileged: true };
    const { managedFields: _, ...metadata } = given.metadata!;
    expect(podAsRead(given)).toEqual({ ...given, metadata });
  });

  it("keeps a pod without spec or status without them", () => {
    expect(podAsRead({ metadata: { name: "p" } })).toEqual({ metadata: { name: "p" } });
  });
});

describe("nodeAsRead", () => {
  const node: k8s.V1Node = {
    metadata: {
      name: "n1",
      resourceVersion: "9",
      labels: { "topology.kubernetes.io/zone": "zone-a" },
      managedFields,
    },
    spec: { unschedulable: true, taints: [{ key: "k", effect: "NoSchedule" }], podCIDR: "10.0.0.0/24" },
    status: {
      conditions: [{ type: "Ready", status: "True", lastTransitionTime: new Date(0) }],
      allocatable: { cpu: "8", memory: "32Gi", pods: "110" },
      capacity: { cpu: "8", memory: "32Gi", pods: "110" },
      images: [{ names: ["a"], sizeBytes: 1 }],
      addresses: [{ type: "InternalIP", address: "10.0.0.1" }],
      nodeInfo: {} as k8s.V1NodeSystemInfo,
    },
  };

  it("keeps labels, schedulability, taints, conditions and allocatable, nothing else", () => {
    expect(nodeAsRead(node)).toEqual({
      metadata: { name: "n1", resourceVersion: "9", labels: { "topology.kubernetes.io/zone": "zone-a" } },
      spec: { unschedulable: true, taints: [{ key: "k", effect: "NoSchedule" }] },
      status: {
        conditions: [{ type: "Ready", status: "True", lastTransitionTime: new Date(0) }],
        allocatable: { cpu: "8", memory: "32Gi", pods: "110" },
      },
    });
  });

  it("is the same node to the decisions", () => {
    expect(toNodeView(nodeAsRead(node), undefined)).toEqual(toNodeView(node, undefined));
  });
});
