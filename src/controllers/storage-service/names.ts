// Names of the objects a StorageService owns. One place, so the manifests, the reconciler and the
// tests spell them alike.
import type { StorageService } from "../../api/index.ts";
import { formatHolderIdentity } from "../../decisions/names.ts";
import type { ServiceRef } from "../../decisions/types.ts";

/** The head Service clients use: it selects the head pod of the current epoch only. */
export const headServiceName = (service: string) => `${service}-head`;
/** The StatefulSet of one zone's server nodes, and its headless Service (same name). */
export const serverSetName = (service: string, zone: string) => `${service}-server-${zone}`;
/** What the head and servers read: the server list, partitions, replication factor. */
export const configMapName = (service: string) => `${service}-config`;
/** The shared head-to-server token, generated once. */
export const tokenSecretName = (service: string) => `${service}-token`;

/** The NetworkPolicy of the head pods (clients, the operator's probe, metrics scrapers). */
export const headPolicyName = (service: string) => `${service}-head`;
/** The NetworkPolicy of the server pods (the service's heads and servers, metrics scrapers). */
export const serverPolicyName = (service: string) => `${service}-servers`;

/** Keys of the ConfigMap and the Secret. */
export const configKeys = {
  /** `zone=host:port,...` with the servers' stable DNS names. */
  servers: "servers",
  /** `zone=ip:port,...` of the server pods that have an IP (for clusters without DNS, such as the test cluster). */
  serverIps: "server-ips",
  partitions: "partitions",
  replicationFactor: "replication-factor",
  token: "token",
} as const;

/** Partitions keys are hashed into: fixed for the service's life (the data plane's default). */
export const PARTITIONS = 64;

export const serviceRef = (service: { metadata: { namespace?: string; name?: string } }): ServiceRef => ({
  namespace: service.metadata.namespace!,
  name: service.metadata.name!,
});

/** `service:<ns>/<name>`: the holder identity of slot Leases the service takes. */
export const serviceIdentity = (ref: ServiceRef) => formatHolderIdentity({ kind: "service", ...ref });

/** The zone the head runs in when healthy: spec.primaryZone, else the first of spec.zones. */
export const primaryZoneOf = (service: StorageService) => service.spec.primaryZone ?? service.spec.zones[0]!;
