// Objects as the API server lists them, with the status the operator would have written.
import type { CliIO } from "../../../src/cli/program.ts";
import type { ClaimObject, PoolObject, ServiceObject } from "../../../src/cli/model.ts";

export const NOW = Date.parse("2026-03-01T12:00:00Z");
const ago = (ms: number) => new Date(NOW - ms).toISOString();

export const pool: PoolObject = {
  apiVersion: "understudy.dev/v1alpha1",
  kind: "ContingencyPool",
  metadata: { name: "contingency", creationTimestamp: ago(3 * 3_600_000) as unknown as Date },
  spec: {
    zones: [
      { name: "zone-a", slots: 2 },
      { name: "zone-b", slots: 2 },
      { name: "zone-c", slots: 1 },
    ],
    slotSize: { cpu: "500m", memory: "512Mi" },
    allowedNamespaces: ["tenants"],
    hotSpares: 1,
  },
  status: {
    slots: 5,
    free: 1,
    leased: 2,
    reserved: 1,
    pending: 1,
    zones: [
      { name: "zone-a", slots: 2, free: 0, leased: 1, reserved: 1, pending: 0 },
      { name: "zone-b", slots: 2, free: 1, leased: 1, reserved: 0, pending: 0 },
      { name: "zone-c", slots: 1, free: 0, leased: 0, reserved: 0, pending: 1 },
    ],
    conditions: [
      {
        type: "Ready",
        status: "False",
        reason: "PlaceholdersPending",
        message: "1 slots not yet holding capacity",
        lastTransitionTime: ago(60_000),
      },
    ],
  },
};

/** A pool the operator has not seen yet: no status at all. */
export const newPool: PoolObject = {
  apiVersion: "understudy.dev/v1alpha1",
  kind: "ContingencyPool",
  metadata: { name: "fresh" },
  spec: { zones: [{ name: "zone-a", slots: 3 }], slotSize: { cpu: "1", memory: "1Gi" } },
};

export const claims: ClaimObject[] = [
  {
    apiVersion: "understudy.dev/v1alpha1",
    kind: "PoolClaim",
    metadata: { name: "batch-low", namespace: "tenants", creationTimestamp: ago(600_000) as unknown as Date },
    spec: { pool: "contingency", bid: 10 },
    status: {
      phase: "Revoked",
      zone: "zone-a",
      node: "node-a-1",
      slot: "slot-contingency-zone-a-0",
      reason: "Failover",
      revokedBy: "service:storage/kv",
    },
  },
  {
    apiVersion: "understudy.dev/v1alpha1",
    kind: "PoolClaim",
    metadata: { name: "batch-high", namespace: "tenants", creationTimestamp: ago(45_000) as unknown as Date },
    spec: { pool: "contingency", zone: "zone-b", bid: 100 },
    status: { phase: "Bound", zone: "zone-b", node: "node-b-2", slot: "slot-contingency-zone-b-1" },
  },
  {
    apiVersion: "understudy.dev/v1alpha1",
    kind: "PoolClaim",
    metadata: { name: "waiting", namespace: "other" },
    spec: { pool: "contingency", zone: "zone-c" },
  },
];

const started = Date.parse("2026-03-01T11:50:00Z");
const at = (ms: number) => new Date(started + ms).toISOString();

export const service: ServiceObject = {
  apiVersion: "understudy.dev/v1alpha1",
  kind: "StorageService",
  metadata: { name: "kv", namespace: "storage", creationTimestamp: ago(86_400_000 * 2) as unknown as Date },
  spec: { pool: "contingency", zones: ["zone-a", "zone-b", "zone-c"] },
  status: {
    phase: "Ready",
    epoch: 4,
    head: {
      pod: "kv-head-4",
      node: "node-a-1",
      zone: "zone-a",
      epoch: 4,
      leaseName: "slot-contingency-zone-a-0",
    },
    servers: [
      { zone: "zone-a", ready: 1, replicas: 1 },
      { zone: "zone-b", ready: 1, replicas: 1 },
      { zone: "zone-c", ready: 0, replicas: 1 },
    ],
    failoverCount: 3,
    handledSwitchover: "2026-03-01T11:49:59.000Z",
    lastFailover: {
      step: "Done",
      startedAt: at(0),
      finishedAt: at(1240),
      durationMilliseconds: 1240,
      reason: "NodeNotReady",
      fromPod: "kv-head-3",
      fromZone: "zone-b",
      fromEpoch: 3,
      epoch: 4,
      toZone: "zone-a",
      slot: "slot-contingency-zone-a-0",
      revokedClaim: "tenants/batch-low",
      headPod: "kv-head-4",
      timeline: [
        { step: "Detected", at: at(0) },
        { step: "SlotChosen", at: at(12) },
        { step: "Revoked", at: at(40) },
        { step: "HeadStarted", at: at(850) },
        { step: "RoutingSwitched", at: at(1100) },
        { step: "Done", at: at(1240) },
      ],
    },
  },
};

export const failingOver: ServiceObject = {
  apiVersion: "understudy.dev/v1alpha1",
  kind: "StorageService",
  metadata: { name: "cache", namespace: "storage" },
  spec: { pool: "contingency", zones: ["zone-a", "zone-b"] },
  status: {
    phase: "FailingOver",
    epoch: 7,
    head: { pod: "cache-head-7", zone: "zone-b", node: "node-b-1" },
    failover: {
      step: "Revoked",
      startedAt: at(0),
      reason: "ProbeFailed",
      fromZone: "zone-b",
      toZone: "zone-a",
      timeline: [
        { step: "Detected", at: at(0) },
        { step: "SlotChosen", at: at(5) },
        { step: "Revoked", at: at(9) },
      ],
    },
  },
};

/** The command's output streams and clock, captured. */
export function io(): CliIO & { out: string; err: string } {
  const captured = {
    out: "",
    err: "",
    now: () => NOW,
    stdout: { write: (s: string) => (captured.out += s) },
    stderr: { write: (s: string) => (captured.err += s) },
  };
  return captured;
}
