// ContingencyPool: cluster-scoped, like a StorageClass. How many slots of what size to keep in
// which zones, and who may lease them.
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
  TolerationSchema,
  uniqueItems,
} from "./common.ts";
import { API_VERSION, POOL_KIND } from "./names.ts";
import { parseWith, type ParseResult } from "./parse.ts";
import { withRules } from "./rules.ts";

export const MAX_ZONES = 16;
export const MAX_SLOTS_PER_ZONE = 1000;
const MAX_PLANNED_GRACE_SECONDS = 86_400;
const MAX_EMERGENCY_GRACE_SECONDS = 300;

/** The value of `allowedNamespaces` that admits claims from every namespace. */
const ANY_NAMESPACE = "*";

const PoolZoneSchema = z
  .object({
    name: dnsLabel(
      "Zone name: a value of the node label topology.kubernetes.io/zone. It is also part of slot Lease names, so it must be a DNS label.",
    ),
    slots: z
      .int()
      .min(0)
      .max(MAX_SLOTS_PER_ZONE)
      .describe("Number of slots to keep in this zone. 0 keeps none (for example while a zone is drained)."),
  })
  .describe("Slots to keep in one zone.");

const zonesSchema = withRules(z.array(PoolZoneSchema).min(1).max(MAX_ZONES), [
  {
    cel: "self.all(a, self.exists_one(b, b.name == a.name))",
    message: "zone names must be unique",
    holds: (zones) => new Set(zones.map((zone) => zone.name)).size === zones.length,
  },
]).meta({
  "x-kubernetes-list-type": "map",
  "x-kubernetes-list-map-keys": ["name"],
  description: `Zones the pool keeps slots in, with the number of slots in each (1 to ${MAX_ZONES} zones, names unique).`,
});

const SlotSizeSchema = z
  .object({
    cpu: positiveQuantity("CPU of one slot, as a Kubernetes quantity (for example 500m or 2)."),
    memory: positiveQuantity("Memory of one slot, as a Kubernetes quantity (for example 512Mi or 4Gi)."),
  })
  .describe(
    "Capacity of one slot. A claim's pod and a storage service's head must fit in it; placeholder pods request exactly this much.",
  );

const RevocationSchema = withRules(
  z.object({
    plannedGraceSeconds: z
      .int()
      .min(0)
      .max(MAX_PLANNED_GRACE_SECONDS)
      .default(30)
      .describe(
        `Grace period, in seconds, of a tenant pod revoked without urgency (a claim expiring, a pool shrinking, replenishing hot spares). 0 to ${MAX_PLANNED_GRACE_SECONDS}.`,
      ),
    emergencyGraceSeconds: z
      .int()
      .min(0)
      .max(MAX_EMERGENCY_GRACE_SECONDS)
      .default(5)
      .describe(
        `Grace period, in seconds, of a tenant pod revoked to start a failed storage service's head. 0 to ${MAX_EMERGENCY_GRACE_SECONDS}, and no more than plannedGraceSeconds.`,
      ),
  }),
  [
    {
      cel: "self.emergencyGraceSeconds <= self.plannedGraceSeconds",
      message: "emergencyGraceSeconds must not exceed plannedGraceSeconds",
      fieldPath: ".emergencyGraceSeconds",
      holds: (r) => r.emergencyGraceSeconds <= r.plannedGraceSeconds,
    },
  ],
)
  .describe("Notice given to tenants whose slot is taken back.")
  .prefault({});

const namespaceOrAny = withRules(z.string().min(1).max(63), [
  {
    cel: `self == '${ANY_NAMESPACE}' || self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')`,
    message: `must be a namespace name or "${ANY_NAMESPACE}"`,
    holds: (ns: string) => ns === ANY_NAMESPACE || isDnsLabel(ns),
  },
]).describe(`A namespace name, or "${ANY_NAMESPACE}".`);

/** An annotation key ([prefix/]name), or a prefix of one ending in "*". */
const ANNOTATION_KEY_PATTERN =
  "^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?[*]?$";

const names = (what: string) =>
  z
    .array(dnsSubdomain(`Name of ${what}.`))
    .max(64)
    .superRefine(uniqueItems((name) => name, what))
    .default([])
    .meta({ "x-kubernetes-list-type": "set" });

const TenantPodsSchema = z
  .object({
    serviceAccountNames: names("a service account").describe(
      'Service accounts, besides "default", that tenant pods may run as. Tenant pods run as their namespace\'s "default" service account otherwise.',
    ),
    automountServiceAccountToken: z
      .boolean()
      .default(false)
      .describe(
        "Whether tenant pods may mount their service account's token. When false (the default) the operator sets automountServiceAccountToken=false on every tenant pod and refuses templates that ask for a token.",
      ),
    priorityClassNames: names("a priority class").describe(
      "PriorityClasses tenant pods may name. Empty (the default): tenant pods may not set priorityClassName.",
    ),
    runtimeClassNames: names("a runtime class").describe(
      "RuntimeClasses tenant pods may name. Empty (the default): tenant pods may not set runtimeClassName.",
    ),
    tolerations: z
      .array(TolerationSchema)
      .max(32)
      .default([])
      .describe(
        "Tolerations tenant pods may carry, matched field by field. The pool's own tolerations are always added; any other toleration in a template is refused.",
      ),
    annotations: z
      .array(
        withRules(z.string().min(1).max(317), [
          {
            cel: `self.matches('${ANNOTATION_KEY_PATTERN}')`,
            message: 'must be an annotation key, or a prefix ending in "*" (for example example.com/*)',
            holds: (key: string) => new RegExp(ANNOTATION_KEY_PATTERN).test(key),
          },
        ]).describe('An annotation key, or a prefix ending in "*".'),
      )
      .max(64)
      .superRefine(uniqueItems((key) => key, "annotation key"))
      .default([])
      .meta({
        "x-kubernetes-list-type": "set",
        description:
          'Annotation keys tenant pods may carry: exact keys, or prefixes ending in "*" (example.com/* allows every key of example.com). Empty (the default): tenant templates may carry no annotations but AppArmor\'s.',
      }),
    hostAliases: z
      .boolean()
      .default(false)
      .describe("Whether tenant pods may set hostAliases (entries in their /etc/hosts)."),
  })
  .describe(
    "What tenant pods may set beyond their own containers, volumes and security context. The operator creates tenant pods with its own rights, so every field that could lend a tenant more (a service account, a priority, a runtime, tolerations, annotations) must be allowed here; node selection is always the operator's. docs/OPERATIONS.md (Tenant isolation) lists every field.",
  )
  .prefault({});

const ContingencyPoolSpecSchema = withRules(
  z.object({
    zones: zonesSchema,
    slotSize: SlotSizeSchema,
    nodeSelector: nodeSelector(
      "Labels a node must have to hold slots of this pool (in addition to its zone label).",
    ).optional(),
    tolerations: z
      .array(TolerationSchema)
      .max(32)
      .optional()
      .describe(
        "Tolerations given to placeholder and tenant pods, so slots can sit on tainted, dedicated nodes.",
      ),
    allowedNamespaces: z
      .array(namespaceOrAny)
      .max(256)
      .superRefine(uniqueItems((ns) => ns, "namespace"))
      .default([])
      .meta({
        "x-kubernetes-list-type": "set",
        description: `Namespaces whose PoolClaims may lease slots of this pool; "${ANY_NAMESPACE}" admits every namespace. Empty (the default): no tenant may lease, and the pool serves storage services only.`,
      }),
    allowedServiceNamespaces: z
      .array(namespaceOrAny)
      .max(256)
      .superRefine(uniqueItems((ns) => ns, "namespace"))
      .default([ANY_NAMESPACE])
      .meta({
        "x-kubernetes-list-type": "set",
        description: `Namespaces whose StorageServices may draw heads from this pool (each failover may revoke a tenant); "${ANY_NAMESPACE}" (the default, as before this field existed) admits every namespace. Set it to the storage teams' namespaces.`,
      }),
    tenantPods: TenantPodsSchema,
    hotSpares: z
      .int()
      .min(0)
      .max(MAX_ZONES * MAX_SLOTS_PER_ZONE)
      .default(0)
      .describe(
        "Slots kept free, never leased to tenants, so a failover finds capacity without revoking anyone. At most the total number of slots.",
      ),
    revocation: RevocationSchema,
    placeholderImage: z
      .string()
      .min(1)
      .max(1024)
      .optional()
      .describe(
        "Image of the placeholder pods that hold free slots' capacity (they only sleep). Unset: the operator's --placeholder-image (default registry.k8s.io/pause:3.10); set it to a mirror in air-gapped clusters.",
      ),
    failoverPaused: z
      .boolean()
      .default(false)
      .describe(
        "Pauses automatic failover and automatic failback of every storage service of this pool, for planned maintenance (as each service's spec.failover.paused does): a failed head is reported, not replaced, until this is false again. Tenants keep their slots.",
      ),
  }),
  [
    {
      cel: "self.hotSpares <= self.zones.map(z, z.slots).sum()",
      message: "hotSpares must not exceed the total number of slots in zones",
      fieldPath: ".hotSpares",
      holds: (spec) => spec.hotSpares <= spec.zones.reduce((sum, zone) => sum + zone.slots, 0),
    },
  ],
).describe("Desired state of the pool.");

const PoolZoneStatusSchema = z
  .object({
    name: z.string().describe("Zone name."),
    slots: z.int().min(0).optional().describe("Slots the pool has in this zone (its slot Leases)."),
    free: z
      .int()
      .min(0)
      .optional()
      .describe("Slots held by a placeholder pod and by nobody else: ready to lease."),
    leased: z.int().min(0).optional().describe("Slots leased to tenant claims."),
    reserved: z
      .int()
      .min(0)
      .optional()
      .describe("Slots held by storage services (a head node runs on them)."),
    pending: z
      .int()
      .min(0)
      .optional()
      .describe(
        "Slots whose capacity is not placed yet (no node fits, or the placeholder pod is not running).",
      ),
  })
  .describe("Slot counts of one zone.");

const FailoverCapacitySchema = z
  .object({
    services: z.int().min(0).describe("Storage services drawing on the pool."),
    singleFailure: z
      .number()
      .min(0)
      .max(1)
      .describe(
        "Share of those services whose head, failing alone now, would find a slot at once (a free slot or a tenant to revoke, on a Ready node). 1 with no service.",
      ),
    zoneOutage: z
      .number()
      .min(0)
      .max(1)
      .describe(
        "If the zone with the fewest covered heads failed now: the share of its heads that would find a slot at once, one after another. 1 with no service.",
      ),
    worstZone: z.string().optional().describe("The zone zoneOutage is for."),
  })
  .describe(
    "How ready the pool is for failovers now, from the operator's own slot choice over the current slots, nodes and heads; recomputed whenever they change. `understudy plan` sizes the pool for a target over simulated days.",
  );

const ContingencyPoolStatusSchema = z
  .object({
    observedGeneration: observedGeneration(),
    slots: z.int().min(0).optional().describe("Slots the pool has in all zones."),
    free: z.int().min(0).optional().describe("Free slots in all zones."),
    leased: z.int().min(0).optional().describe("Slots leased to tenant claims in all zones."),
    reserved: z.int().min(0).optional().describe("Slots held by storage services in all zones."),
    pending: z.int().min(0).optional().describe("Slots whose capacity is not placed yet, in all zones."),
    zoneSummary: z
      .string()
      .optional()
      .describe(
        "Free and total slots by zone, for kubectl get: zone-a:1/2,zone-b:2/2 (written from zones; see poolZoneSummary).",
      ),
    zones: z
      .array(PoolZoneStatusSchema)
      .max(MAX_ZONES)
      .optional()
      .meta({
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        description: "Slot counts by zone.",
      }),
    failoverCapacity: FailoverCapacitySchema.optional(),
    conditions: conditionList(
      "Ready: every slot has a Lease and its capacity is held. Valid: the spec passed the operator's checks.",
    ),
  })
  .describe("Observed state of the pool, written by the operator.");

export const ContingencyPoolSchema = withRules(
  z.object({
    apiVersion: z.literal(API_VERSION).describe("API version of the object."),
    kind: z.literal(POOL_KIND).describe("Kind of the object."),
    metadata: ObjectMetaSchema,
    spec: ContingencyPoolSpecSchema,
    status: ContingencyPoolStatusSchema.optional(),
  }),
  [
    {
      // The pool's name goes into label values and Lease names.
      cel: "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && self.metadata.name.size() <= 63",
      message: `metadata.name ${DNS_LABEL_MESSAGE}`,
      fieldPath: ".metadata.name",
      celOmitsFieldPath: true,
      holds: (pool) => pool.metadata.name === undefined || isDnsLabel(pool.metadata.name),
    },
  ],
).describe(
  "ContingencyPool keeps slots of spare capacity in several zones, leases them to tenant PoolClaims like spot instances, and gives them to a StorageService's head node when it fails.",
);

export type ContingencyPool = z.output<typeof ContingencyPoolSchema>;
export type ContingencyPoolSpec = z.output<typeof ContingencyPoolSpecSchema>;
export type ContingencyPoolStatus = z.output<typeof ContingencyPoolStatusSchema>;
export type PoolZoneStatus = z.output<typeof PoolZoneStatusSchema>;
/** How many slots there are, and how many in each state, all counted (a zone's or a whole pool's). */
export type SlotCounts = Required<Omit<PoolZoneStatus, "name">>;
export type FailoverCapacityStatus = z.output<typeof FailoverCapacitySchema>;

export function parsePool(obj: unknown): ParseResult<ContingencyPool> {
  return parseWith(ContingencyPoolSchema, obj);
}

/** Whether a pool admits claims from a namespace. */
export function poolAdmitsNamespace(
  spec: Pick<ContingencyPoolSpec, "allowedNamespaces">,
  namespace: string,
): boolean {
  return spec.allowedNamespaces.includes(ANY_NAMESPACE) || spec.allowedNamespaces.includes(namespace);
}

/** Whether a pool lets storage services of a namespace draw heads from it. */
export function poolServesNamespace(
  spec: Pick<ContingencyPoolSpec, "allowedServiceNamespaces">,
  namespace: string,
): boolean {
  return (
    spec.allowedServiceNamespaces.includes(ANY_NAMESPACE) || spec.allowedServiceNamespaces.includes(namespace)
  );
}

/** Total number of slots over all zones. */
export function totalSlots(spec: Pick<ContingencyPoolSpec, "zones">): number {
  return spec.zones.reduce((sum, zone) => sum + zone.slots, 0);
}

/** status.zoneSummary from the zone counts: "zone-a:1/2,zone-b:2/2" (free/slots). */
export function poolZoneSummary(zones: readonly Pick<PoolZoneStatus, "name" | "slots" | "free">[]): string {
  return zones.map((zone) => `${zone.name}:${zone.free ?? 0}/${zone.slots ?? 0}`).join(",");
}
