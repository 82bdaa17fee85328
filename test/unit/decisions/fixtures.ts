// Small builders for the decision views, so each test states only what it is about.
import { slotLeaseName } from "../../../src/decisions/names.ts";
import { DEFAULT_TENANT_POD_POLICY } from "../../../src/decisions/tenant-pod-fields.ts";
import type { ClaimView, NodeView, PoolView, SlotHolder, SlotView } from "../../../src/decisions/types.ts";

export const GiB = 1024 ** 3;

export function node(name: string, zone: string | undefined, overrides: Partial<NodeView> = {}): NodeView {
  return {
    name,
    zone,
    ready: true,
    unschedulable: false,
    allocatable: { cpuMillis: 8000, memoryBytes: 32 * GiB, pods: 110 },
    requested: { cpuMillis: 0, memoryBytes: 0, pods: 0 },
    labels: zone === undefined ? {} : { "topology.kubernetes.io/zone": zone },
    taints: [],
    ...overrides,
  };
}

export function pool(overrides: Partial<PoolView> = {}): PoolView {
  return {
    name: "p",
    zones: [
      { name: "a", slots: 1 },
      { name: "b", slots: 1 },
      { name: "c", slots: 1 },
    ],
    slotSize: { cpuMillis: 1000, memoryBytes: 2 * GiB },
    allowedNamespaces: ["*"],
    hotSpares: 0,
    nodeSelector: {},
    tolerations: [],
    revocation: { plannedGraceSeconds: 30, emergencyGraceSeconds: 2 },
    tenantPods: DEFAULT_TENANT_POD_POLICY,
    ...overrides,
  };
}

export const FREE: SlotHolder = { kind: "free" };

export function claimHolder(name: string, namespace = "t"): SlotHolder {
  return { kind: "claim", namespace, name };
}

export function serviceHolder(name: string, namespace = "s"): SlotHolder {
  return { kind: "service", namespace, name };
}

export function slot(
  zone: string,
  index: number,
  nodeName: string,
  holder: SlotHolder = FREE,
  overrides: Partial<SlotView> = {},
): SlotView {
  return {
    leaseName: slotLeaseName("p", zone, index),
    pool: "p",
    zone,
    index,
    node: nodeName,
    holder,
    resourceVersion: "1",
    ...overrides,
  };
}

export function claim(name: string, overrides: Partial<ClaimView> = {}): ClaimView {
  return {
    namespace: "t",
    name,
    pool: "p",
    bid: 10,
    createdAt: 1000,
    phase: "Pending",
    requeueOnRevoke: false,
    ...overrides,
  };
}
