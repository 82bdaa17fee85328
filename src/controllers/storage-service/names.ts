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

/** The service's CA (certificate and key): read by the operator alone, never mounted. */
export const caSecretName = (service: string) => `${service}-ca`;
/** The serving certificate heads and servers mount, with the CA certificate clients trust. */
export const tlsSecretName = (service: string) => `${service}-tls`;
/** One client's bearer token. */
export const clientSecretName = (service: string, client: string) => `${service}-client-${client}`;
/** The digests of the allowed clients' tokens, mounted into the head. */
export const clientDigestsSecretName = (service: string) => `${service}-clients`;

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
  /** Keys of the TLS Secrets (the kubernetes.io/tls layout, plus the CA). */
  caCert: "ca.crt",
  caKey: "ca.key",
  tlsCert: "tls.crt",
  tlsKey: "tls.key",
  /** The client digests Secret's one key: JSON {client: sha256 hex}. */
  clientDigests: "clients.json",
} as const;

/**
 * The DNS names the serving certificate carries: the head Service's, and each server pod's stable
 * name (`<pod>.<set>.<ns>.svc`, with and without the cluster domain).
 */
export function servingDnsNames(service: StorageService): string[] {
  const name = service.metadata.name!;
  const ns = service.metadata.namespace!;
  const head = headServiceName(name);
  const servers = service.spec.zones.flatMap((zone) => {
    const set = serverSetName(name, zone);
    return Array.from({ length: service.spec.servers.replicasPerZone }, (_, i) => [
      `${set}-${i}.${set}.${ns}.svc`,
      `${set}-${i}.${set}.${ns}.svc.cluster.local`,
    ]).flat();
  });
  return [head, `${head}.${ns}`, `${head}.${ns}.svc`, `${head}.${ns}.svc.cluster.local`, ...servers];
}

/** The name a client checks the head's certificate for when it reaches the head by its pod IP. */
export const headTlsServerName = (service: string, namespace: string) =>
  `${headServiceName(service)}.${namespace}.svc`;

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
