import type * as k8s from "@kubernetes/client-node";
import {
  CLAIM_LABEL,
  CLAIM_PLURAL,
  claimResource,
  GROUP,
  POOL_PLURAL,
  poolResource,
  SLOT_SCHEDULING_GATE,
  VERSION,
} from "../../src/api/index.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { deleteCustom } from "./kube.ts";

// Building and reading pools and claims in tests.

export interface PoolShape {
  zones?: Record<string, number>;
  allowedNamespaces?: string[];
  hotSpares?: number;
  plannedGraceSeconds?: number;
  emergencyGraceSeconds?: number;
  allowedServiceNamespaces?: string[];
  tenantPods?: Record<string, unknown>;
}

/** The label a test puts on its pools; its operator manages only pools with its value (testPoolSelector). */
export const testRunLabel = "understudy.dev/test-run";
export const testPoolSelector = (run: string) => `${testRunLabel}=${run}`;

export function poolManifest(name: string, shape: PoolShape = {}, run?: string) {
  const zones = shape.zones ?? { "zone-a": 2, "zone-b": 2, "zone-c": 2 };
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: "ContingencyPool",
    metadata: { name, labels: (run ? { [testRunLabel]: run } : {}) as Record<string, string> },
    spec: {
      zones: Object.entries(zones).map(([zone, slots]) => ({ name: zone, slots })),
      slotSize: { cpu: "500m", memory: "512Mi" },
      allowedNamespaces: shape.allowedNamespaces ?? ["*"],
      hotSpares: shape.hotSpares ?? 0,
      ...(shape.allowedServiceNamespaces ? { allowedServiceNamespaces: shape.allowedServiceNamespaces } : {}),
      ...(shape.tenantPods ? { tenantPods: shape.tenantPods } : {}),
      revocation: {
        plannedGraceSeconds: shape.plannedGraceSeconds ?? 2,
        emergencyGraceSeconds: shape.emergencyGraceSeconds ?? 0,
      },
    },
  };
}

/** A tenant pod spec that passes the restricted profile; `extra` and `container` add to it. */
export function tenantPodSpec(extra: Record<string, unknown> = {}, container: Record<string, unknown> = {}) {
  return {
    terminationGracePeriodSeconds: 1,
    containers: [
      {
        name: "worker",
        image: "registry.example/batch-worker:1",
        securityContext: {
          allowPrivilegeEscalation: false,
          runAsNonRoot: true,
          runAsUser: 1000,
          capabilities: { drop: ["ALL"] },
          seccompProfile: { type: "RuntimeDefault" },
        },
        ...container,
      },
    ],
    ...extra,
  };
}

export function claimManifest(
  namespace: string,
  name: string,
  pool: string,
  bid: number,
  extra: {
    zone?: string;
    requeueOnRevoke?: boolean;
    maxDurationSeconds?: number;
    podSpec?: Record<string, unknown>;
  } = {},
) {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: "PoolClaim",
    metadata: { name, namespace },
    spec: {
      pool,
      bid,
      ...(extra.zone ? { zone: extra.zone } : {}),
      ...(extra.requeueOnRevoke ? { requeueOnRevoke: true } : {}),
      ...(extra.maxDurationSeconds ? { maxDurationSeconds: extra.maxDurationSeconds } : {}),
      template: {
        metadata: { labels: { app: "batch" } },
        spec: extra.podSpec ?? tenantPodSpec(),
      },
    },
  };
}

/** A workload claim: no template; the tenant's own pods, gated and labelled, take its slots. */
export function workloadClaimManifest(
  namespace: string,
  name: string,
  pool: string,
  bid: number,
  extra: { slots?: number; gang?: boolean; maxDurationSeconds?: number } = {},
) {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: "PoolClaim",
    metadata: { name, namespace },
    spec: { pool, bid, ...extra },
  };
}

/**
 * The pod template of a tenant's own workload on a claim: the operator's scheduling gate, the
 * claim's label, no service account token, the restricted profile, and requests within a slot.
 * `runFor` sets how long KWOK keeps a Job's pod Running before it completes (a Go duration).
 */
export function workloadPodTemplate(claim: string, runFor = "1h", extra: Record<string, unknown> = {}) {
  return {
    metadata: {
      labels: { [CLAIM_LABEL]: claim, app: claim },
      annotations: {
        "pod-complete.stage.kwok.x-k8s.io/delay": runFor,
        "pod-complete.stage.kwok.x-k8s.io/jitter-delay": runFor,
      },
    },
    spec: tenantPodSpec(
      { schedulingGates: [{ name: SLOT_SCHEDULING_GATE }], automountServiceAccountToken: false, ...extra },
      { resources: { requests: { cpu: "100m", memory: "64Mi" }, limits: { cpu: "100m", memory: "64Mi" } } },
    ),
  };
}

/** Lets tenants' own pods carry KWOK's completion-delay annotations (what workloadPodTemplate sets). */
export const kwokCompletionAnnotations = { annotations: ["pod-complete.stage.kwok.x-k8s.io/*"] };

export type Claim = {
  metadata: k8s.V1ObjectMeta;
  spec: { bid: number; pool: string };
  // Read back loosely: tests look into whatever the operator wrote.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  status?: Record<string, any>;
};
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Pool = { metadata: k8s.V1ObjectMeta; status?: Record<string, any> };

export async function createPool(client: KubeClient, manifest: ReturnType<typeof poolManifest>) {
  return client.custom.createClusterCustomObject({
    group: GROUP,
    version: VERSION,
    plural: POOL_PLURAL,
    body: manifest,
  });
}

export async function getPool(client: KubeClient, name: string): Promise<Pool> {
  return (await client.custom.getClusterCustomObject({
    group: GROUP,
    version: VERSION,
    plural: POOL_PLURAL,
    name,
  })) as Pool;
}

export const deletePool = (client: KubeClient, name: string): Promise<void> =>
  deleteCustom(client, poolResource, name);

export async function createClaim(
  client: KubeClient,
  manifest: ReturnType<typeof claimManifest> | ReturnType<typeof workloadClaimManifest>,
) {
  return client.custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: CLAIM_PLURAL,
    namespace: manifest.metadata.namespace,
    body: manifest,
  });
}

export async function listClaims(client: KubeClient, namespace: string): Promise<Claim[]> {
  const list = (await client.custom.listNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: CLAIM_PLURAL,
    namespace,
  })) as {
    items: Claim[];
  };
  return list.items;
}

export async function getClaim(client: KubeClient, namespace: string, name: string): Promise<Claim> {
  return (await client.custom.getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: CLAIM_PLURAL,
    namespace,
    name,
  })) as Claim;
}

export const deleteClaim = (client: KubeClient, namespace: string, name: string): Promise<void> =>
  deleteCustom(client, claimResource, name, namespace);

export async function slotLeases(
  client: KubeClient,
  namespace: string,
  pool: string,
): Promise<k8s.V1Lease[]> {
  return (
    await client.coordination.listNamespacedLease({ namespace, labelSelector: `understudy.dev/pool=${pool}` })
  ).items;
}

export const phaseOf = (c: Claim) => c.status?.phase as string | undefined;
