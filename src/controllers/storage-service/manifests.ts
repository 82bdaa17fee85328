// The objects a StorageService owns, as pure functions of the service (and, for the head, where it
// runs). Container settings follow the data plane's own flags (src/dataplane/main.ts): the role is
// the first argument, everything else comes as UNDERSTUDY_* variables.
import type * as k8s from "@kubernetes/client-node";
import type { ResourceRequirements, StorageService, Toleration } from "../../api/index.ts";
import { headPodName } from "../../decisions/names.ts";
import { labels, managedBy, roles } from "../labels.ts";
import {
  PARTITIONS,
  clientDigestsSecretName,
  configKeys,
  configMapName,
  headServiceName,
  serverSetName,
  tlsSecretName,
  tokenSecretName,
} from "./names.ts";

/** The image's entrypoint is `node` (see Dockerfile): the data plane's script, then its role. */
export const DATAPLANE_MAIN = "dist/src/dataplane/main.js";
/** The image's user (see Dockerfile). */
const IMAGE_USER = 65532;
const DATA_DIR = "/data";
/** Port of /metrics on heads and servers, apart from the data ports so a NetworkPolicy can tell them apart. */
export const METRICS_PORT = 9400;
/** The head pod's container: its image is the one a rollout compares with spec.head.image. */
export const HEAD_CONTAINER = "head";
/**
 * Node sizes its heap from the machine's memory, not the container's, and collects lazily below
 * that: capped, the garbage of bad clients' bodies is collected long before the pod's memory
 * limit (docs/DATAPLANE.md measures a head with this setting; pods need 512 MiB or more).
 */
export const DATAPLANE_NODE_OPTIONS = "--max-old-space-size=256";
/** A head is a stateless router: a short grace lets it finish requests in flight, no more. */
const HEAD_TERMINATION_GRACE_SECONDS = 3;

/** Where a head pod runs: scheduled into a zone (normal placement), or pinned to a slot's node. */
export type HeadPlacement =
  | { kind: "zone"; zone: string }
  | {
      kind: "slot";
      zone: string;
      node: string;
      leaseName: string;
      pool: string;
      /** The pool's slot size: the head's requests when its spec asks for none. */
      slotSize: { cpu: string; memory: string };
      /** The pool's tolerations. */
      tolerations?: readonly Toleration[];
    };

function ownerReference(service: StorageService): k8s.V1OwnerReference {
  return {
    apiVersion: service.apiVersion,
    kind: service.kind,
    name: service.metadata.name!,
    uid: service.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** Metadata of an object the service owns: its labels and the owner reference that deletes it with the service. */
export function meta(service: StorageService, name: string, extraLabels: Record<string, string> = {}) {
  return {
    name,
    namespace: service.metadata.namespace!,
    labels: { [labels.service]: service.metadata.name!, [labels.managedBy]: managedBy, ...extraLabels },
    ownerReferences: [ownerReference(service)],
  };
}

/** Labels the head Service selects on: the service's head pod of one epoch. */
export function headSelector(service: string, epoch: number): Record<string, string> {
  return { [labels.service]: service, [labels.role]: roles.head, [labels.epoch]: String(epoch) };
}

/** The epoch a head Service routes to, from its selector; undefined when it selects no epoch. */
export function routedEpochOf(svc: k8s.V1Service | undefined): number | undefined {
  const value = svc?.spec?.selector?.[labels.epoch];
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

const restrictedContainer: k8s.V1SecurityContext = {
  allowPrivilegeEscalation: false,
  capabilities: { drop: ["ALL"] },
  readOnlyRootFilesystem: true,
};

const podSecurity: k8s.V1PodSecurityContext = {
  runAsNonRoot: true,
  runAsUser: IMAGE_USER,
  runAsGroup: IMAGE_USER,
  fsGroup: IMAGE_USER,
  seccompProfile: { type: "RuntimeDefault" },
};

/** Node writes only to /tmp: a scratch volume, so the root filesystem stays read-only. */
const tmpVolume: k8s.V1Volume = { name: "tmp", emptyDir: {} };
const tmpMount: k8s.V1VolumeMount = { name: "tmp", mountPath: "/tmp" };

/** Where the serving certificate's Secret is mounted, and the head's client digests. */
const TLS_DIR = "/etc/understudy/tls";
const CLIENTS_DIR = "/etc/understudy/clients";
/** Secret files readable by the image's user (fsGroup) alone. */
const SECRET_FILE_MODE = 0o440;

/** The data plane's --tls-mode for the spec's mode. */
const tlsModeFlag = (service: StorageService) => service.spec.tls.mode.toLowerCase();
const tlsOn = (service: StorageService) => service.spec.tls.mode !== "Disabled";

/** A Secret a data-plane container reads files of: its volume, its mount and the variables naming the files. */
interface MountedSecret {
  volumes: k8s.V1Volume[];
  mounts: k8s.V1VolumeMount[];
  env: k8s.V1EnvVar[];
}

/** The TLS Secret (none when TLS is off). */
function tlsPieces(service: StorageService): MountedSecret {
  if (!tlsOn(service)) return { volumes: [], mounts: [], env: [] };
  return {
    volumes: [
      {
        name: "tls",
        secret: { secretName: tlsSecretName(service.metadata.name!), defaultMode: SECRET_FILE_MODE },
      },
    ],
    mounts: [{ name: "tls", mountPath: TLS_DIR, readOnly: true }],
    env: [
      { name: "UNDERSTUDY_TLS_MODE", value: tlsModeFlag(service) },
      { name: "UNDERSTUDY_TLS_CERT_FILE", value: `${TLS_DIR}/${configKeys.tlsCert}` },
      { name: "UNDERSTUDY_TLS_KEY_FILE", value: `${TLS_DIR}/${configKeys.tlsKey}` },
      { name: "UNDERSTUDY_TLS_CA_FILE", value: `${TLS_DIR}/${configKeys.caCert}` },
    ],
  };
}

/** The head's client digests Secret, when the service requires authentication. */
function clientPieces(service: StorageService): MountedSecret {
  if (service.spec.authentication.mode === "Disabled") return { volumes: [], mounts: [], env: [] };
  return {
    volumes: [
      {
        name: "clients",
        secret: {
          secretName: clientDigestsSecretName(service.metadata.name!),
          defaultMode: SECRET_FILE_MODE,
        },
      },
    ],
    mounts: [{ name: "clients", mountPath: CLIENTS_DIR, readOnly: true }],
    env: [{ name: "UNDERSTUDY_CLIENT_TOKENS_FILE", value: `${CLIENTS_DIR}/${configKeys.clientDigests}` }],
  };
}

/** A readiness probe of the data port, over HTTPS when the port speaks TLS (the kubelet does not verify it). */
function readinessProbe(service: StorageService, port: number, timing: Partial<k8s.V1Probe>): k8s.V1Probe {
  return {
    httpGet: { path: "/readyz", port, ...(tlsOn(service) ? { scheme: "HTTPS" } : {}) },
    ...timing,
  };
}

function fromConfig(service: StorageService, key: string): k8s.V1EnvVarSource {
  return { configMapKeyRef: { name: configMapName(service.metadata.name!), key } };
}

/**
 * Settings the head and the servers share. The service's UID and the pod's name are who the process
 * says it is on every reply: the operator's probe and the clients refuse another process found at
 * the pod's IP (a reused address, a partitioned old head).
 */
function sharedEnv(service: StorageService, role: string, port: number): k8s.V1EnvVar[] {
  return [
    { name: "UNDERSTUDY_ROLE", value: role },
    { name: "NODE_OPTIONS", value: DATAPLANE_NODE_OPTIONS },
    { name: "UNDERSTUDY_SERVICE_UID", value: service.metadata.uid! },
    { name: "UNDERSTUDY_POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
    { name: "UNDERSTUDY_LISTEN", value: `0.0.0.0:${port}` },
    { name: "UNDERSTUDY_METRICS_LISTEN", value: `0.0.0.0:${METRICS_PORT}` },
    {
      name: "UNDERSTUDY_TOKEN",
      valueFrom: { secretKeyRef: { name: tokenSecretName(service.metadata.name!), key: configKeys.token } },
    },
    { name: "UNDERSTUDY_SERVERS", valueFrom: fromConfig(service, configKeys.servers) },
    { name: "UNDERSTUDY_PARTITIONS", valueFrom: fromConfig(service, configKeys.partitions) },
    { name: "UNDERSTUDY_REPLICATION_FACTOR", valueFrom: fromConfig(service, configKeys.replicationFactor) },
  ];
}

function zoneAffinity(zone: string): k8s.V1Affinity {
  return {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: labels.nodeZone, operator: "In", values: [zone] }] }],
      },
    },
  };
}

type Role = StorageService["spec"]["head"] | StorageService["spec"]["servers"];

/** A role's nodeSelector, tolerations and priority class, and the service's pull secrets, as pod spec fields. */
function scheduling(
  service: StorageService,
  role: Role,
  tolerations = role.tolerations,
): Partial<k8s.V1PodSpec> {
  const out: Partial<k8s.V1PodSpec> = {};
  if (role.nodeSelector && Object.keys(role.nodeSelector).length) out.nodeSelector = { ...role.nodeSelector };
  if (tolerations?.length) out.tolerations = tolerations.map((t) => ({ ...t }));
  if (role.priorityClassName) out.priorityClassName = role.priorityClassName;
  if (service.spec.imagePullSecrets?.length)
    out.imagePullSecrets = service.spec.imagePullSecrets.map(({ name }) => ({ name }));
  return out;
}

/**
 * The tolerations of a head on a slot: its own and the pool's (the slot's node was chosen for the
 * pool's). The failover's slot choice judges nodes by these same tolerations.
 */
export function slotHeadTolerations(
  service: StorageService,
  poolTolerations: readonly Toleration[] | undefined,
): Toleration[] {
  return [...(service.spec.head.tolerations ?? []), ...(poolTolerations ?? [])];
}

function resources(requirements: ResourceRequirements | undefined): k8s.V1ResourceRequirements | undefined {
  if (!requirements) return undefined;
  const text = (m: Record<string, string | number> | undefined) =>
    m && Object.fromEntries(Object.entries(m).map(([k, v]) => [k, String(v)]));
  return { requests: text(requirements.requests), limits: text(requirements.limits) };
}

/**
 * The head pod of one epoch. Its name is fixed by the epoch, so creating it twice creates it once.
 * On a slot it is pinned to the slot's node (no scheduler: the slot's capacity is already held for
 * it) and sized to the slot unless the spec sizes it; otherwise the scheduler places it in the zone.
 */
export function headPod(service: StorageService, epoch: number, placement: HeadPlacement): k8s.V1Pod {
  const name = service.metadata.name!;
  const port = service.spec.head.port;
  const podLabels: Record<string, string> = {
    ...headSelector(name, epoch),
    [labels.managedBy]: managedBy,
    [labels.zone]: placement.zone,
  };
  let requirements = resources(service.spec.head.resources);
  const head = service.spec.head;
  const spec: k8s.V1PodSpec = {
    terminationGracePeriodSeconds: HEAD_TERMINATION_GRACE_SECONDS,
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    securityContext: podSecurity,
    volumes: [tmpVolume, ...tlsPieces(service).volumes, ...clientPieces(service).volumes],
    containers: [],
    ...scheduling(
      service,
      head,
      placement.kind === "slot" ? slotHeadTolerations(service, placement.tolerations) : head.tolerations,
    ),
  };
  if (placement.kind === "slot") {
    podLabels[labels.pool] = placement.pool;
    podLabels[labels.slot] = placement.leaseName;
    spec.nodeName = placement.node;
    if (!requirements?.requests) {
      const size = { ...placement.slotSize };
      requirements = { ...requirements, requests: size, limits: requirements?.limits ?? size };
    }
  } else {
    spec.affinity = zoneAffinity(placement.zone);
  }
  spec.containers.push({
    name: HEAD_CONTAINER,
    image: service.spec.head.image,
    args: [DATAPLANE_MAIN, "head"],
    ports: [
      { name: "client", containerPort: port, protocol: "TCP" },
      { name: "metrics", containerPort: METRICS_PORT, protocol: "TCP" },
    ],
    env: [
      ...sharedEnv(service, "head", port),
      { name: "UNDERSTUDY_EPOCH", value: String(epoch) },
      ...tlsPieces(service).env,
      ...clientPieces(service).env,
    ],
    readinessProbe: readinessProbe(service, port, {
      periodSeconds: 1,
      failureThreshold: 2,
      timeoutSeconds: 1,
    }),
    volumeMounts: [tmpMount, ...tlsPieces(service).mounts, ...clientPieces(service).mounts],
    ...(requirements ? { resources: requirements } : {}),
    securityContext: restrictedContainer,
  });
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { ...meta(service, headPodName(name, epoch)), labels: podLabels },
    spec,
  };
}

/** The head Service: a stable ClusterIP that selects only the head of `epoch`. */
export function headService(service: StorageService, epoch: number): k8s.V1Service {
  const name = service.metadata.name!;
  const port = service.spec.head.port;
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(service, headServiceName(name), { [labels.role]: roles.head }),
    spec: {
      type: "ClusterIP",
      selector: headSelector(name, epoch),
      ports: [{ name: "client", port, targetPort: port, protocol: "TCP" }],
    },
  };
}

function serverLabels(service: StorageService, zone: string): Record<string, string> {
  return { [labels.service]: service.metadata.name!, [labels.role]: roles.server, [labels.zone]: zone };
}

/** The headless Service that gives each server pod of a zone a stable DNS name. */
export function serverHeadlessService(service: StorageService, zone: string): k8s.V1Service {
  const name = serverSetName(service.metadata.name!, zone);
  const port = service.spec.servers.port;
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(service, name, { [labels.role]: roles.server, [labels.zone]: zone }),
    spec: {
      clusterIP: "None",
      // Servers find each other (anti-entropy) before they report Ready.
      publishNotReadyAddresses: true,
      selector: serverLabels(service, zone),
      ports: [{ name: "server", port, targetPort: port, protocol: "TCP" }],
    },
  };
}

/** One zone's server nodes: a StatefulSet pinned to the zone, each pod with its own volume. */
export function serverStatefulSet(service: StorageService, zone: string): k8s.V1StatefulSet {
  const name = serverSetName(service.metadata.name!, zone);
  const { servers } = service.spec;
  const podLabels = { ...serverLabels(service, zone), [labels.managedBy]: managedBy };
  const storage = servers.storage;
  const env: k8s.V1EnvVar[] = [
    ...sharedEnv(service, "server", servers.port),
    { name: "UNDERSTUDY_DATA_DIR", value: DATA_DIR },
    { name: "UNDERSTUDY_ZONE", value: zone },
    {
      name: "UNDERSTUDY_ADVERTISE",
      value: `$(UNDERSTUDY_POD_NAME).${name}.${service.metadata.namespace}.svc:${servers.port}`,
    },
    ...tlsPieces(service).env,
  ];
  const requirements = resources(servers.resources);
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: meta(service, name, { [labels.role]: roles.server, [labels.zone]: zone }),
    spec: {
      serviceName: name,
      replicas: servers.replicasPerZone,
      podManagementPolicy: "Parallel",
      selector: { matchLabels: serverLabels(service, zone) },
      template: {
        metadata: { labels: podLabels },
        spec: {
          affinity: zoneAffinity(zone),
          ...scheduling(service, servers),
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: podSecurity,
          volumes: [tmpVolume, ...tlsPieces(service).volumes],
          containers: [
            {
              name: "server",
              image: servers.image,
              args: [DATAPLANE_MAIN, "server"],
              ports: [
                { name: "server", containerPort: servers.port, protocol: "TCP" },
                { name: "metrics", containerPort: METRICS_PORT, protocol: "TCP" },
              ],
              env,
              volumeMounts: [{ name: "data", mountPath: DATA_DIR }, tmpMount, ...tlsPieces(service).mounts],
              readinessProbe: readinessProbe(service, servers.port, {
                periodSeconds: 2,
                failureThreshold: 3,
              }),
              ...(requirements ? { resources: requirements } : {}),
              securityContext: restrictedContainer,
            },
          ],
        },
      },
      volumeClaimTemplates: [
        {
          apiVersion: "v1",
          kind: "PersistentVolumeClaim",
          metadata: { name: "data", labels: serverLabels(service, zone) },
          spec: {
            accessModes: ["ReadWriteOnce"],
            resources: { requests: { storage: String(storage.size) } },
            ...(storage.storageClassName ? { storageClassName: storage.storageClassName } : {}),
          },
        },
      ],
    },
  };
}

/** The stable DNS names of every server pod: `zone=<pod>.<set>.<ns>.svc:port,...`. */
export function serverDnsList(service: StorageService): string {
  const ns = service.metadata.namespace!;
  const { port, replicasPerZone } = service.spec.servers;
  return service.spec.zones
    .flatMap((zone) => {
      const set = serverSetName(service.metadata.name!, zone);
      return Array.from(
        { length: replicasPerZone },
        (_, i) => `${zone}=${set}-${i}.${set}.${ns}.svc:${port}`,
      );
    })
    .join(",");
}

/** `zone=ip:port,...` of the server pods that have an IP, in zone then pod-name order. */
export function serverIpList(service: StorageService, serverPods: readonly k8s.V1Pod[]): string {
  const port = service.spec.servers.port;
  return serverPods
    .filter(
      (pod) => pod.status?.podIP && pod.metadata?.labels?.[labels.zone] && !pod.metadata.deletionTimestamp,
    )
    .map((pod) => ({
      zone: pod.metadata!.labels![labels.zone]!,
      name: pod.metadata!.name!,
      ip: pod.status!.podIP!,
    }))
    .sort((a, b) => (a.zone === b.zone ? (a.name < b.name ? -1 : 1) : a.zone < b.zone ? -1 : 1))
    .map(({ zone, ip }) => `${zone}=${ip.includes(":") ? `[${ip}]` : ip}:${port}`)
    .join(",");
}

export function serverConfigMap(service: StorageService, serverPods: readonly k8s.V1Pod[]): k8s.V1ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: meta(service, configMapName(service.metadata.name!)),
    data: {
      [configKeys.servers]: serverDnsList(service),
      [configKeys.serverIps]: serverIpList(service, serverPods),
      [configKeys.partitions]: String(PARTITIONS),
      [configKeys.replicationFactor]: String(service.spec.replicationFactor),
    },
  };
}

/** The shared token; created once and never rewritten, so running heads and servers keep agreeing. */
export function tokenSecret(service: StorageService, token: string): k8s.V1Secret {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: meta(service, tokenSecretName(service.metadata.name!)),
    type: "Opaque",
    stringData: { [configKeys.token]: token },
  };
}
