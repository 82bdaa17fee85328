// Building and watching storage services, pools and claims for the failover tests and benchmark.
// Every object carries the test run's label, so only the operator started for the run sees it.
import type * as k8s from "@kubernetes/client-node";
import {
  GROUP,
  STORAGE_SERVICE_PLURAL,
  storageServiceResource,
  VERSION,
  type StorageServiceStatus,
} from "../../src/api/index.ts";
import { labels } from "../../src/controllers/labels.ts";
import { headServiceName } from "../../src/controllers/storage-service/index.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { isNotFound } from "../../src/kube/errors.ts";
import { deleteCustom, eventually, isPodReady } from "./kube.ts";
import {
  claimManifest,
  createClaim,
  createPool,
  poolManifest,
  testRunLabel,
  type PoolShape,
} from "./pools.ts";

type ServiceStatus = StorageServiceStatus;
export interface ServiceObject {
  metadata: k8s.V1ObjectMeta;
  spec: Record<string, unknown>;
  status?: ServiceStatus;
}

/** Pools, claims and storage services of a scope are seen only by the operator selecting that scope. */
const scoped = <T extends { metadata: Record<string, unknown> }>(manifest: T, scope: string): T => ({
  ...manifest,
  metadata: {
    ...manifest.metadata,
    labels: { ...((manifest.metadata.labels as Record<string, string>) ?? {}), [testRunLabel]: scope },
  },
});

export async function createScopedPool(client: KubeClient, name: string, scope: string, shape: PoolShape) {
  await createPool(client, scoped(poolManifest(name, shape), scope));
}

export async function createScopedClaim(
  client: KubeClient,
  scope: string,
  ...args: Parameters<typeof claimManifest>
) {
  await createClaim(client, scoped(claimManifest(...args), scope));
}

export interface ServiceShape {
  primaryZone?: string;
  failback?: { policy: "Manual" | "Automatic"; stableSeconds?: number };
  failureDetection?: Record<string, number>;
  failover?: { headStartDeadlineSeconds?: number; switchoverCooldownSeconds?: number };
  annotations?: Record<string, string>;
  /** Any other spec fields (for instance clients, metricsScrapers). */
  spec?: Record<string, unknown>;
}

/** The image test heads run; KWOK makes their pods Ready (see test/cluster/stages.ts for one it never does). */
export const TEST_IMAGE = "registry.example/understudy:test";

export function storageServiceManifest(
  namespace: string,
  name: string,
  pool: string,
  shape: ServiceShape = {},
) {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: "StorageService",
    metadata: { name, namespace, ...(shape.annotations ? { annotations: shape.annotations } : {}) },
    spec: {
      pool,
      zones: ["zone-a", "zone-b", "zone-c"],
      primaryZone: shape.primaryZone ?? "zone-a",
      replicationFactor: 3,
      head: {
        image: TEST_IMAGE,
        port: 7000,
        resources: { requests: { cpu: "250m", memory: "256Mi" } },
      },
      servers: {
        image: TEST_IMAGE,
        port: 7001,
        replicasPerZone: 1,
        storage: { size: "1Gi" },
      },
      ...(shape.failureDetection ? { failureDetection: shape.failureDetection } : {}),
      ...(shape.failback ? { failback: shape.failback } : {}),
      ...(shape.failover ? { failover: shape.failover } : {}),
      ...shape.spec,
    },
  };
}

export async function createService(
  client: KubeClient,
  scope: string,
  ...args: Parameters<typeof storageServiceManifest>
) {
  await client.custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: STORAGE_SERVICE_PLURAL,
    namespace: args[0],
    body: scoped(storageServiceManifest(...args), scope),
  });
}

export async function getService(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<ServiceObject> {
  return (await client.custom.getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: STORAGE_SERVICE_PLURAL,
    namespace,
    name,
  })) as ServiceObject;
}

export async function annotateService(
  client: KubeClient,
  namespace: string,
  name: string,
  annotations: Record<string, string>,
) {
  await client.mergePatch(
    { apiVersion: `${GROUP}/${VERSION}`, kind: "StorageService", metadata: { name, namespace } },
    { metadata: { annotations } },
  );
}

/** The image heads started from now on run (the running head keeps its own). */
export async function setHeadImage(client: KubeClient, namespace: string, name: string, image: string) {
  await client.mergePatch(
    { apiVersion: `${GROUP}/${VERSION}`, kind: "StorageService", metadata: { name, namespace } },
    { spec: { head: { image } } },
  );
}

export const deleteService = (client: KubeClient, namespace: string, name: string): Promise<void> =>
  deleteCustom(client, storageServiceResource, name, namespace);

export const condition = (service: ServiceObject, type: string) =>
  service.status?.conditions?.find((c) => c.type === type);

export async function routedEpoch(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<string | undefined> {
  try {
    const svc = await client.core.readNamespacedService({ name: headServiceName(name), namespace });
    return svc.spec?.selector?.[labels.epoch];
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Waits until the service's head of `epoch` is Ready, recorded, and routed to. */
export async function waitForServing(
  client: KubeClient,
  namespace: string,
  name: string,
  epoch: number,
  timeoutMs = 30_000,
): Promise<{ service: ServiceObject; pod: k8s.V1Pod }> {
  return eventually(
    `${namespace}/${name} serving at epoch ${epoch}`,
    async () => {
      const service = await getService(client, namespace, name);
      const head = service.status?.head;
      if (service.status?.epoch !== epoch || !head?.pod || service.status.failover) return undefined;
      const pod = await client.core.readNamespacedPod({ name: head.pod, namespace });
      if (!isPodReady(pod) || (await routedEpoch(client, namespace, name)) !== String(epoch))
        return undefined;
      if (condition(service, "HeadAvailable")?.status !== "True") return undefined;
      return { service, pod };
    },
    timeoutMs,
    50,
  );
}

export async function waitForFailover(
  client: KubeClient,
  namespace: string,
  name: string,
  count: number,
  timeoutMs = 60_000,
): Promise<ServiceObject> {
  return eventually(
    `${namespace}/${name} to finish failover ${count}`,
    async () => {
      const service = await getService(client, namespace, name);
      return (service.status?.failoverCount ?? 0) >= count && !service.status?.failover ? service : undefined;
    },
    timeoutMs,
    50,
  );
}

export async function eventsOf(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<k8s.CoreV1Event[]> {
  const list = await client.core.listNamespacedEvent({
    namespace,
    fieldSelector: `involvedObject.name=${name}`,
  });
  return list.items;
}
