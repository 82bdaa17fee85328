// StorageService: a head node (stateless router) and server nodes (one StatefulSet per zone),
// whose head fails over onto a slot of a ContingencyPool.
import { z } from "zod";
import { conditionList } from "./conditions.ts";
import {
  DNS_LABEL_MESSAGE,
  ObjectMetaSchema,
  dnsLabel,
  dnsSubdomain,
  isDnsLabel,
  nodeSelector,
  observedGeneration,
  positiveQuantity,
  quantity,
  stringMap,
  timestamp,
  TolerationSchema,
  uniqueItems,
} from "./common.ts";
import { API_VERSION, STORAGE_SERVICE_KIND } from "./names.ts";
import { parseWith, transitionResult, type ParseResult } from "./parse.ts";
import { MAX_ZONES } from "./pool.ts";
import {
  immutable,
  immutableOptional,
  sameSet,
  transitionErrors,
  withRules,
  type TransitionRule,
} from "./rules.ts";

export const STORAGE_SERVICE_PHASES = ["Pending", "Ready", "Degraded", "FailingOver", "Failed"] as const;
export type StorageServicePhase = (typeof STORAGE_SERVICE_PHASES)[number];

/** Steps of a failover, in order; each is written to status before its effects. */
export const FAILOVER_STEPS = [
  "Detected",
  "SlotChosen",
  "Revoked",
  "HeadStarted",
  "RoutingSwitched",
  "OldHeadFenced",
  "Replenished",
  "Done",
] as const;

const FAILBACK_POLICIES = ["Manual", "Automatic"] as const;
export type FailbackPolicy = (typeof FAILBACK_POLICIES)[number];

const MAX_REPLICATION_FACTOR = 9;

const ResourceRequirementsSchema = z
  .object({
    requests: z
      .record(z.string(), quantity("Amount of the resource."))
      .optional()
      .describe("Resources the container is guaranteed (for example cpu: 250m, memory: 256Mi)."),
    limits: z
      .record(z.string(), quantity("Amount of the resource."))
      .optional()
      .describe("Most resources the container may use."),
  })
  .describe("Compute resources of the container, as in a pod spec.");

function port(defaultPort: number, what: string) {
  return z.int().min(1).max(65535).default(defaultPort).describe(`TCP port ${what} listens on. 1 to 65535.`);
}

/**
 * Where a role's pods may run and how they rank, as in a pod spec: per role, because the head lands
 * on the pool's slot nodes while the servers live on nodes with their volumes.
 */
function schedulingFields(role: string, nodeSelectorNote: string, priorityNote: string) {
  return {
    nodeSelector: nodeSelector(`Labels a node must have to run ${role}. ${nodeSelectorNote}`).optional(),
    tolerations: z
      .array(TolerationSchema)
      .max(32)
      .optional()
      .describe(`Tolerations given to the pods of ${role}, so they may run on tainted nodes. At most 32.`),
    priorityClassName: dnsSubdomain(
      `PriorityClass of ${role}; it must exist when the pod is created. ${priorityNote}`,
    ).optional(),
  };
}

const HeadSchema = z
  .object({
    image: z.string().min(1).max(1024).describe("Container image of the head node."),
    port: port(7000, "the head node"),
    resources: ResourceRequirementsSchema.optional(),
    ...schedulingFields(
      "the head node",
      "A failover takes only slots on nodes that have them, and whose NoSchedule and NoExecute taints the head tolerates (with these tolerations and the pool's); when no slot fits, it waits (condition ContingencyAvailable=False, reason NoSlotFitsPlacement).",
      "A head on a slot is placed by the operator, not the scheduler, so its priority preempts nothing there; it ranks the head when a node runs short.",
    ),
  })
  .describe(
    "The head node: a stateless router of client writes. On failover it starts on a pool slot, so it must fit in the pool's slotSize.",
  );

const storageTransitions: TransitionRule<{ size: string | number; storageClassName?: string | undefined }>[] =
  [
    {
      cel: "string(self.size) == string(oldSelf.size)",
      message: "size is immutable",
      fieldPath: ".size",
      holds: (self, oldSelf) => String(self.size) === String(oldSelf.size),
    },
    immutableOptional("storageClassName"),
  ];

const ServerStorageSchema = withRules(
  z.object({
    size: positiveQuantity("Size of each server node's volume (for example 10Gi). Immutable."),
    storageClassName: z
      .string()
      .min(1)
      .max(253)
      .optional()
      .describe("StorageClass of the volumes; unset uses the cluster's default. Immutable."),
  }),
  [],
  storageTransitions,
).describe("Persistent volume of each server node (a volumeClaimTemplate of the zone's StatefulSet).");

const ServersSchema = z
  .object({
    image: z.string().min(1).max(1024).describe("Container image of the server nodes."),
    port: port(7001, "each server node"),
    replicasPerZone: z
      .int()
      .min(1)
      .max(64)
      .default(1)
      .describe("Server nodes in each zone (replicas of the zone's StatefulSet). 1 to 64."),
    storage: ServerStorageSchema,
    resources: ResourceRequirementsSchema.optional(),
    ...schedulingFields(
      "the server nodes",
      "Added to the zone's own node affinity.",
      "The scheduler may preempt lower-priority pods, tenants' included, to place a server.",
    ),
  })
  .describe("The server nodes, which store the data: one StatefulSet per zone.");

const FailureDetectionSchema = withRules(
  z.object({
    probePeriodMilliseconds: z
      .int()
      .min(100)
      .max(60_000)
      .default(500)
      .describe("How often the operator probes the head node, in milliseconds. 100 to 60000."),
    probeTimeoutMilliseconds: z
      .int()
      .min(50)
      .max(60_000)
      .default(300)
      .describe(
        "How long one probe may take, in milliseconds; no more than probePeriodMilliseconds. 50 to 60000.",
      ),
    failureThreshold: z
      .int()
      .min(1)
      .max(100)
      .default(3)
      .describe("Consecutive failed probes after which the head is declared failed. 1 to 100."),
  }),
  [
    {
      cel: "self.probeTimeoutMilliseconds <= self.probePeriodMilliseconds",
      message: "probeTimeoutMilliseconds must not exceed probePeriodMilliseconds",
      fieldPath: ".probeTimeoutMilliseconds",
      holds: (d) => d.probeTimeoutMilliseconds <= d.probePeriodMilliseconds,
    },
  ],
)
  .describe(
    "How the operator detects a failed head, besides watching its pod and node: an active probe. The head is declared failed after failureThreshold probes in a row fail.",
  )
  .prefault({});

const FailbackSchema = z
  .object({
    policy: z
      .enum(FAILBACK_POLICIES)
      .default("Manual")
      .describe(
        "Manual: after a failover the head stays on the slot until moved by hand (annotation understudy.dev/failback set to a new value). Automatic: the operator moves it back to its primary zone once that zone is healthy.",
      ),
    stableSeconds: z
      .int()
      .min(0)
      .max(86_400)
      .default(60)
      .describe(
        "Automatic failback waits until the last failover finished and a node of the primary zone has been Ready for at least this many seconds. 0 to 86400.",
      ),
  })
  .describe("What happens after a failover, once the failed zone is healthy again.")
  .prefault({});

/** How long a new head may take to become Ready: it fences every partition before it reports Ready. */
export const DEFAULT_HEAD_START_DEADLINE_SECONDS = 60;
const DEFAULT_SWITCHOVER_COOLDOWN_SECONDS = 300;

const FailoverSettingsSchema = z
  .object({
    headStartDeadlineSeconds: z
      .int()
      .min(1)
      .max(3600)
      .default(DEFAULT_HEAD_START_DEADLINE_SECONDS)
      .describe(
        "How long a new head may take to become Ready, in seconds. A head a failover started on a slot and not Ready in time is removed, its slot given back to the pool, and the failover goes on with another slot. A service's first head not Ready in time is failed over; a failback's new head not Ready in time ends the failback (Abandoned). 1 to 3600.",
      ),
    switchoverCooldownSeconds: z
      .int()
      .min(0)
      .max(86_400)
      .default(DEFAULT_SWITCHOVER_COOLDOWN_SECONDS)
      .describe(
        "Least time, in seconds, between the end of the last failover (or switchover) and the start of a requested switchover that would revoke a tenant's slot; such a switchover waits (condition SwitchoverPending) and starts once the time has passed. Failovers of a failed head never wait. 0 to 86400.",
      ),
    paused: z
      .boolean()
      .default(false)
      .describe(
        "Pauses automatic failover and automatic failback, for planned maintenance: a head that fails is reported (HeadAvailable=False, FailoverPaused=True) but not replaced until this is false again. A failover already in progress finishes; a switchover or failback asked for by hand still runs. The pool's spec.failoverPaused pauses every service of the pool.",
      ),
  })
  .describe("Limits on how a failover proceeds and how often a switchover may take a tenant's slot.")
  .prefault({});

/** Disabled: plain HTTP. Permissive: TLS and plain accepted, TLS dialed. Required: TLS only. */
export const TLS_MODES = ["Disabled", "Permissive", "Required"] as const;
export type TlsModeName = (typeof TLS_MODES)[number];

/** Serving certificates live 90 days and are renewed when a third of that is left. */
export const DEFAULT_CERTIFICATE_VALIDITY_HOURS = 2160;

export const TlsSchema = z
  .object({
    mode: z
      .enum(TLS_MODES)
      .default("Disabled")
      .describe(
        "Disabled (the default, so services made before TLS keep working): plain HTTP. Permissive: heads and servers accept TLS and plain HTTP on the same port and dial each other over TLS; the step between Disabled and Required while clients move to TLS. Required: TLS only, from clients to the head, from the head to servers and between servers. The operator keeps a CA per service (Secret <name>-ca) and issues the serving certificate (Secret <name>-tls, keys ca.crt, tls.crt, tls.key) that heads and servers mount; clients trust ca.crt.",
      ),
    certificateValidityHours: z
      .int()
      .min(1)
      .max(8760)
      .default(DEFAULT_CERTIFICATE_VALIDITY_HOURS)
      .describe(
        "Lifetime of the serving certificate, in hours; the operator issues a new one when a third of it is left, and the processes take it from their mounted Secret without a restart. 1 to 8760.",
      ),
  })
  .describe("TLS on every hop of the data plane, with certificates from the service's own CA.")
  .prefault({});

export const AUTHENTICATION_MODES = ["Disabled", "Required"] as const;

export const AuthenticationSchema = z
  .object({
    mode: z
      .enum(AUTHENTICATION_MODES)
      .default("Disabled")
      .describe(
        "Disabled (the default, so services made before authentication keep working): any client that reaches the head may operate. Required: only the clients listed, each with its own bearer token; others get 401 and change nothing.",
      ),
    clients: z
      .array(
        z
          .object({
            name: dnsLabel(
              "The client's name: its token is in Secret <service>-client-<name>, key token. Remove it from the list to revoke it alone.",
            ),
          })
          .describe("A client the operator issues a credential to."),
      )
      .max(256)
      .default([])
      .superRefine(uniqueItems((c: { name: string }) => c.name, "client name"))
      .meta({
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        description:
          "Clients that may operate when mode is Required. A client removed here has its Secret deleted and is refused by the head within seconds of its Secret volume updating, without a restart.",
      }),
  })
  .describe("Who may operate on the data: a bearer token per named client, issued by the operator.")
  .prefault({});

const LABEL_SELECTOR_OPERATORS = ["In", "NotIn", "Exists", "DoesNotExist"] as const;

const LabelSelectorRequirementSchema = withRules(
  z.object({
    key: z.string().min(1).max(317).describe("The label key the requirement applies to."),
    operator: z.enum(LABEL_SELECTOR_OPERATORS).describe("In, NotIn, Exists or DoesNotExist."),
    values: z
      .array(z.string().max(63).describe("A label value."))
      .max(64)
      .optional()
      .describe("Values for In and NotIn (at least one); none for Exists and DoesNotExist."),
  }),
  [
    {
      cel: "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)",
      message: "In and NotIn need values; Exists and DoesNotExist take none",
      fieldPath: ".values",
      holds: (r) =>
        r.operator === "In" || r.operator === "NotIn"
          ? (r.values?.length ?? 0) > 0
          : (r.values?.length ?? 0) === 0,
    },
  ],
).describe("A label selector requirement, as in a Kubernetes label selector.");

const LabelSelectorSchema = z
  .object({
    matchLabels: stringMap("Labels that must all be present with these values.").optional(),
    matchExpressions: z
      .array(LabelSelectorRequirementSchema)
      .max(32)
      .optional()
      .describe("Requirements that must all hold."),
  })
  .describe("A Kubernetes label selector; an empty one selects everything.");

const PeerSelectorSchema = z
  .object({
    namespaceSelector: LabelSelectorSchema.optional().describe(
      "Namespaces the pods may be in, by their labels (kubernetes.io/metadata.name names one). Unset: the storage service's own namespace.",
    ),
    podSelector: LabelSelectorSchema.optional().describe(
      "The pods, by their labels. Unset: every pod of those namespaces.",
    ),
  })
  .describe("Pods allowed in, as a NetworkPolicy peer: a namespace selector and a pod selector.");

type SpecShape = {
  pool: string;
  zones: string[];
  primaryZone?: string | undefined;
  replicationFactor: number;
};

const storageServiceSpecTransitions: TransitionRule<SpecShape>[] = [
  immutable("pool"),
  {
    ...immutable<SpecShape>("zones", sameSet),
    message:
      "zones is immutable: data placement is computed from the server list, and moving data between zones is not supported",
  },
  {
    ...immutable<SpecShape>("replicationFactor"),
    message: "replicationFactor is immutable: changing it would need moving data between server nodes",
  },
];

const StorageServiceSpecSchema = withRules(
  z.object({
    pool: dnsLabel("Name of the ContingencyPool whose slots the head node fails over to. Immutable."),
    zones: z
      .array(dnsLabel("A zone: a value of the node label topology.kubernetes.io/zone."))
      .min(1)
      .max(MAX_ZONES)
      .superRefine(uniqueItems((zone) => zone, "zone"))
      .meta({
        "x-kubernetes-list-type": "set",
        description:
          "Zones of the server nodes, one StatefulSet in each; names unique. Immutable in v1alpha1: data placement is computed from the server list.",
      }),
    primaryZone: dnsLabel(
      "Zone the head node runs in when healthy; one of zones. Unset: the operator picks one of zones.",
    ).optional(),
    replicationFactor: z
      .int()
      .min(1)
      .max(MAX_REPLICATION_FACTOR)
      .default(3)
      .describe(
        `Server nodes (in distinct zones) each partition is stored on; writes are acknowledged by a majority of them. No more than the number of zones. 1 to ${MAX_REPLICATION_FACTOR}. Immutable.`,
      ),
    head: HeadSchema,
    servers: ServersSchema,
    failureDetection: FailureDetectionSchema,
    failback: FailbackSchema,
    failover: FailoverSettingsSchema,
    clients: PeerSelectorSchema.optional().describe(
      "Pods that may reach the head's client port (the service's NetworkPolicy). Unset: pods of the service's own namespace. Tenant pods (label understudy.dev/role=tenant) are left out unless podSelector names the label understudy.dev/role itself. The operator's probe is always let in.",
    ),
    metricsScrapers: PeerSelectorSchema.optional().describe(
      "Pods that may reach the metrics port of the head and the servers (for example Prometheus). Unset: none.",
    ),
    tls: TlsSchema,
    authentication: AuthenticationSchema,
    imagePullSecrets: z
      .array(
        z
          .object({ name: dnsSubdomain("Name of a Secret of type kubernetes.io/dockerconfigjson.") })
          .describe("A Secret in the service's namespace, as in a pod spec."),
      )
      .max(16)
      .superRefine(uniqueItems((s: { name: string }) => s.name, "Secret"))
      .optional()
      .meta({
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        description:
          "Secrets to pull the head and server images with, given to every head and server pod (one list for both: their images usually come from one registry).",
      }),
  }),
  [
    {
      cel: "self.replicationFactor <= size(self.zones)",
      message:
        "replicationFactor must not exceed the number of zones (replicas of a partition sit in distinct zones)",
      fieldPath: ".replicationFactor",
      holds: (spec) => spec.replicationFactor <= spec.zones.length,
    },
    {
      cel: "!has(self.primaryZone) || self.primaryZone in self.zones",
      message: "primaryZone must be one of zones",
      fieldPath: ".primaryZone",
      holds: (spec) => spec.primaryZone === undefined || spec.zones.includes(spec.primaryZone),
    },
  ],
  storageServiceSpecTransitions,
).describe("Desired state of the storage service.");

const HeadStatusSchema = z
  .object({
    pod: z.string().optional().describe("Name of the current head pod."),
    node: z.string().optional().describe("Node the current head runs on."),
    zone: z.string().optional().describe("Zone the current head runs in."),
    epoch: z.int().min(0).optional().describe("Epoch the current head was started with."),
    leaseName: z
      .string()
      .optional()
      .describe("When the head runs on a pool slot: name of the slot Lease the service holds."),
    slot: z.string().optional().describe("When the head runs on a pool slot: the slot's identifier."),
    since: timestamp("When the current head became the head.").optional(),
  })
  .describe("Where the current head node runs.");

const ServerZoneStatusSchema = z
  .object({
    zone: z.string().describe("Zone of the StatefulSet."),
    replicas: z.int().min(0).optional().describe("Server pods in the zone."),
    ready: z.int().min(0).optional().describe("Ready server pods in the zone."),
  })
  .describe("Readiness of the server nodes of one zone.");

/** Why a failover gave up a slot it had taken, before routing switched to it. */
export const SLOT_ABANDON_REASONS = ["HeadNotReady", "NodeNotReady", "LeaseLost"] as const;
export type SlotAbandonReason = (typeof SLOT_ABANDON_REASONS)[number];

const FailoverTimelineEntrySchema = z
  .object({
    step: z.enum(FAILOVER_STEPS).describe("Step reached."),
    at: timestamp("When the step was reached."),
    abandonedSlot: z
      .string()
      .optional()
      .describe("When the run went back to Detected: the slot Lease it gave up, returned to the pool."),
    reason: z
      .enum(SLOT_ABANDON_REASONS)
      .optional()
      .describe(
        "Why abandonedSlot was given up: HeadNotReady (the new head was not Ready within spec.failover.headStartDeadlineSeconds), NodeNotReady (the slot's node failed), LeaseLost (the slot Lease was no longer the service's).",
      ),
  })
  .describe("One step of a failover and when it was reached.");

const failoverFields = {
  step: z.enum(FAILOVER_STEPS).describe(`Last step reached: ${FAILOVER_STEPS.join(", ")}.`),
  startedAt: timestamp("When the failure was detected."),
  reason: z
    .string()
    .optional()
    .describe("Why the head was declared failed (for example PodDeleted, NodeNotReady, ProbeFailed)."),
  fromPod: z.string().optional().describe("The failed head pod."),
  fromNode: z.string().optional().describe("Node of the failed head."),
  fromZone: z.string().optional().describe("Zone of the failed head."),
  fromSlot: z
    .string()
    .optional()
    .describe("When the failed head ran on a pool slot: its slot Lease, released once the head is gone."),
  fromEpoch: z.int().min(0).optional().describe("Epoch of the failed head."),
  epoch: z.int().min(0).optional().describe("Epoch of the new head (fromEpoch + 1)."),
  leaseName: z.string().optional().describe("Slot Lease chosen for the new head."),
  slot: z.string().optional().describe("Identifier of the slot chosen for the new head."),
  toNode: z.string().optional().describe("Node of the chosen slot."),
  toZone: z.string().optional().describe("Zone of the chosen slot."),
  revokedClaim: z
    .string()
    .optional()
    .describe("The claim whose slot was revoked, as <namespace>/<name>; unset when a free slot was used."),
  headPod: z.string().optional().describe("Name of the new head pod."),
  message: z.string().optional().describe("Human-readable details of why the head was declared failed."),
  abandonedSlots: z
    .array(z.string().describe("Name of a slot Lease."))
    .max(32)
    .optional()
    .describe(
      "Slot Leases given up during this failover (their node failed, the Lease was lost, or the new head was not Ready in time); not chosen again by this failover.",
    ),
  abandonedNodes: z
    .array(z.string().describe("Name of a node."))
    .max(32)
    .optional()
    .describe(
      "Nodes where a new head of this failover was not Ready in time; other nodes are preferred when choosing again.",
    ),
  replenishDeferred: z
    .boolean()
    .optional()
    .describe("The pool did not replace the slot in the time allowed; it keeps trying on its own."),
  timeline: z
    .array(FailoverTimelineEntrySchema)
    .max(FAILOVER_STEPS.length * 2)
    .optional()
    .describe("Steps reached, in order, with their times."),
};

export const FailoverStatusSchema = z
  .object(failoverFields)
  .describe(
    "The failover in progress: the step reached and the choices made, written before each step's effects so a restarted operator resumes it.",
  );

const LastFailoverSchema = z
  .object({
    ...failoverFields,
    finishedAt: timestamp("When the failover reached Done.").optional(),
    durationMilliseconds: z.int().min(0).optional().describe("From detection to Done, in milliseconds."),
  })
  .describe("The last completed failover.");

const FAILBACK_STEPS = ["Started", "RoutingSwitched"] as const;

const failbackFields = {
  step: z
    .enum(FAILBACK_STEPS)
    .describe(
      "Started: a head of the new epoch is starting in the primary zone. RoutingSwitched: it serves; the head on the slot is being removed and the slot returned.",
    ),
  startedAt: timestamp("When the failback started."),
  reason: z.enum(FAILBACK_POLICIES).describe("Automatic (spec.failback.policy) or Manual (annotation)."),
  fromPod: z.string().optional().describe("The head pod on the slot."),
  fromNode: z.string().optional().describe("Node of the head on the slot."),
  fromZone: z.string().optional().describe("Zone of the head on the slot."),
  fromSlot: z.string().optional().describe("Slot Lease the head ran on, returned to the pool at the end."),
  toZone: z.string().optional().describe("The primary zone the head returns to."),
  epoch: z.int().min(0).optional().describe("Epoch of the new head."),
  headPod: z.string().optional().describe("Name of the new head pod."),
};

const FailbackStatusSchema = z
  .object(failbackFields)
  .describe("The failback in progress: the head moving from its slot back to the primary zone.");

const LastFailbackSchema = z
  .object({
    ...failbackFields,
    finishedAt: timestamp("When the failback finished or was given up.").optional(),
    outcome: z
      .enum(["Succeeded", "Abandoned"])
      .optional()
      .describe("Succeeded, or Abandoned when the new head did not become Ready in time."),
  })
  .describe("The last failback.");

const StorageServiceStatusSchema = z
  .object({
    observedGeneration: observedGeneration(),
    phase: z
      .enum(STORAGE_SERVICE_PHASES)
      .optional()
      .describe(
        "Pending: being created. Ready: head and servers available. Degraded: serving, with servers missing or no contingency capacity. FailingOver: a failover is in progress. Failed: cannot serve and cannot fail over.",
      ),
    message: z.string().optional().describe("Human-readable details about the phase."),
    epoch: z
      .int()
      .min(0)
      .optional()
      .describe("Current epoch; raised at every failover, it fences out every older head."),
    head: HeadStatusSchema.optional(),
    servers: z
      .array(ServerZoneStatusSchema)
      .max(MAX_ZONES)
      .optional()
      .meta({
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["zone"],
        description: "Readiness of the server nodes by zone.",
      }),
    conditions: conditionList(
      "Ready, HeadAvailable, ContingencyAvailable (a slot is available to fail over to), FailingOver, SwitchoverPending (a requested switchover waits for spec.failover.switchoverCooldownSeconds; the message says until when), FailoverPaused (automatic failover is paused by spec.failover.paused or the pool's spec.failoverPaused), and Valid (the spec passed the operator's checks).",
    ),
    failover: FailoverStatusSchema.optional(),
    lastFailover: LastFailoverSchema.optional(),
    failoverCount: z.int().min(0).optional().describe("Number of failovers completed."),
    failback: FailbackStatusSchema.optional(),
    lastFailback: LastFailbackSchema.optional(),
    handledSwitchover: z
      .string()
      .optional()
      .describe("The last value of the annotation understudy.dev/switchover the operator acted on."),
    handledFailback: z
      .string()
      .optional()
      .describe("The last value of the annotation understudy.dev/failback the operator acted on."),
  })
  .describe("Observed state of the storage service, written by the operator.");

export const StorageServiceSchema = withRules(
  z.object({
    apiVersion: z.literal(API_VERSION).describe("API version of the object."),
    kind: z.literal(STORAGE_SERVICE_KIND).describe("Kind of the object."),
    metadata: ObjectMetaSchema,
    spec: StorageServiceSpecSchema,
    status: StorageServiceStatusSchema.optional(),
  }),
  [
    {
      // The name goes into StatefulSet, pod and Service names and label values.
      cel: "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && self.metadata.name.size() <= 63",
      message: `metadata.name ${DNS_LABEL_MESSAGE}`,
      fieldPath: ".metadata.name",
      celOmitsFieldPath: true,
      holds: (service) => service.metadata.name === undefined || isDnsLabel(service.metadata.name),
    },
  ],
).describe(
  "StorageService runs a replicated key-value store: a head node and server nodes in several zones. When the head fails, the operator starts a new one on a slot of the pool within seconds.",
);

export type StorageService = z.output<typeof StorageServiceSchema>;
export type StorageServiceSpec = z.output<typeof StorageServiceSpecSchema>;
export type StorageServiceStatus = z.output<typeof StorageServiceStatusSchema>;
export type HeadStatus = z.output<typeof HeadStatusSchema>;
export type ServerZoneStatus = z.output<typeof ServerZoneStatusSchema>;
export type FailoverStatus = z.output<typeof FailoverStatusSchema>;
export type LastFailover = z.output<typeof LastFailoverSchema>;
export type FailbackStatus = z.output<typeof FailbackStatusSchema>;
export type LastFailback = z.output<typeof LastFailbackSchema>;
export type ResourceRequirements = z.output<typeof ResourceRequirementsSchema>;

export function parseStorageService(obj: unknown): ParseResult<StorageService> {
  return parseWith(StorageServiceSchema, obj);
}

/** Parses `next` and checks the update from `previous` against the immutability rules the API server enforces. */
export function parseStorageServiceUpdate(
  previous: StorageService,
  next: unknown,
): ParseResult<StorageService> {
  const parsed = parseStorageService(next);
  if (!parsed.ok) return parsed;
  const spec = parsed.value.spec;
  return transitionResult(parsed.value, [
    ...transitionErrors(storageServiceSpecTransitions, spec, previous.spec, ["spec"]),
    ...transitionErrors(storageTransitions, spec.servers.storage, previous.spec.servers.storage, [
      "spec",
      "servers",
      "storage",
    ]),
  ]);
}
export type LabelSelector = z.output<typeof LabelSelectorSchema>;
export type PeerSelector = z.output<typeof PeerSelectorSchema>;
