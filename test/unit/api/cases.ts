// Valid objects (the examples) and malformed variants of them, shared by the zod unit tests
// and the integration test against the API server: both must refuse every malformed case,
// naming the same field.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { CLAIM_KIND, POOL_KIND, STORAGE_SERVICE_KIND } from "../../../src/api/index.ts";

const EXAMPLES_DIR = join(import.meta.dirname, "../../../examples");

// Loose access into a manifest for the edits below.
type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
  spec?: Any;
  [key: string]: unknown;
};

/** Every document of every file in examples/, in file order. */
export function loadExamples(): Manifest[] {
  return readdirSync(EXAMPLES_DIR)
    .filter((file) => file.endsWith(".yaml"))
    .sort()
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(EXAMPLES_DIR, file), "utf8")).map((doc) => doc.toJS() as Manifest),
    );
}

function example(kind: string, name: string): Manifest {
  const found = loadExamples().find((m) => m.kind === kind && m.metadata.name === name);
  if (!found) throw new Error(`no example ${kind} ${name}`);
  return structuredClone(found);
}

export type Kind = typeof POOL_KIND | typeof CLAIM_KIND | typeof STORAGE_SERVICE_KIND;

export const validPool = (): Manifest => example(POOL_KIND, "contingency");
/** batch-low: no zone. */
export const validClaim = (): Manifest => example(CLAIM_KIND, "batch-low");
/** batch-high: with a zone. */
const validZonedClaim = (): Manifest => example(CLAIM_KIND, "batch-high");
export const validStorageService = (): Manifest => example(STORAGE_SERVICE_KIND, "kv");

function edit(base: () => Manifest, change: (m: Any) => void): Manifest {
  const manifest = base();
  change(manifest);
  return manifest;
}

export interface MalformedCase {
  name: string;
  kind: Kind;
  manifest: Manifest;
  /** Field path both the API server's and the operator's messages name ("spec.zones[0].slots"). */
  field: string;
  /** Refused by the API server only, and why the operator needs no check of its own. */
  serverOnly?: string;
}

const UNKNOWN_FIELDS_PRUNED =
  "unknown fields are refused (Strict) or pruned by the API server, so the operator never reads them";

export const MALFORMED: MalformedCase[] = [
  // ContingencyPool
  {
    name: "pool without zones",
    kind: POOL_KIND,
    field: "spec.zones",
    manifest: edit(validPool, (m) => delete m.spec.zones),
  },
  {
    name: "pool with an empty zone list",
    kind: POOL_KIND,
    field: "spec.zones",
    manifest: edit(validPool, (m) => (m.spec.zones = [])),
  },
  {
    name: "pool slots as a word",
    kind: POOL_KIND,
    field: "spec.zones[0].slots",
    manifest: edit(validPool, (m) => (m.spec.zones[0].slots = "two")),
  },
  {
    name: "pool with negative slots",
    kind: POOL_KIND,
    field: "spec.zones[1].slots",
    manifest: edit(validPool, (m) => (m.spec.zones[1].slots = -1)),
  },
  {
    name: "pool with too many slots in a zone",
    kind: POOL_KIND,
    field: "spec.zones[2].slots",
    manifest: edit(validPool, (m) => (m.spec.zones[2].slots = 1001)),
  },
  {
    name: "pool zone name not a DNS label",
    kind: POOL_KIND,
    field: "spec.zones[0].name",
    manifest: edit(validPool, (m) => (m.spec.zones[0].name = "Zone_A")),
  },
  {
    name: "pool zone name too long",
    kind: POOL_KIND,
    field: "spec.zones[0].name",
    manifest: edit(validPool, (m) => (m.spec.zones[0].name = "z".repeat(64))),
  },
  {
    name: "pool zone without slots",
    kind: POOL_KIND,
    field: "spec.zones[1].slots",
    manifest: edit(validPool, (m) => delete m.spec.zones[1].slots),
  },
  {
    name: "pool with a zone twice",
    kind: POOL_KIND,
    field: "spec.zones",
    manifest: edit(validPool, (m) => (m.spec.zones[1].name = "zone-a")),
  },
  {
    name: "pool slot of zero cpu",
    kind: POOL_KIND,
    field: "spec.slotSize.cpu",
    manifest: edit(validPool, (m) => (m.spec.slotSize.cpu = "0")),
  },
  {
    name: "pool slot memory not a quantity",
    kind: POOL_KIND,
    field: "spec.slotSize.memory",
    manifest: edit(validPool, (m) => (m.spec.slotSize.memory = "lots")),
  },
  {
    name: "pool slot memory negative",
    kind: POOL_KIND,
    field: "spec.slotSize.memory",
    manifest: edit(validPool, (m) => (m.spec.slotSize.memory = "-512Mi")),
  },
  {
    name: "pool slot without memory",
    kind: POOL_KIND,
    field: "spec.slotSize.memory",
    manifest: edit(validPool, (m) => delete m.spec.slotSize.memory),
  },
  {
    name: "pool without slotSize",
    kind: POOL_KIND,
    field: "spec.slotSize",
    manifest: edit(validPool, (m) => delete m.spec.slotSize),
  },
  {
    name: "pool with more hot spares than slots",
    kind: POOL_KIND,
    field: "spec.hotSpares",
    manifest: edit(validPool, (m) => (m.spec.hotSpares = 7)),
  },
  {
    name: "pool with negative hot spares",
    kind: POOL_KIND,
    field: "spec.hotSpares",
    manifest: edit(validPool, (m) => (m.spec.hotSpares = -1)),
  },
  {
    name: "pool planned grace over a day",
    kind: POOL_KIND,
    field: "spec.revocation.plannedGraceSeconds",
    manifest: edit(validPool, (m) => (m.spec.revocation.plannedGraceSeconds = 86401)),
  },
  {
    name: "pool emergency grace over five minutes",
    kind: POOL_KIND,
    field: "spec.revocation.emergencyGraceSeconds",
    manifest: edit(validPool, (m) => {
      m.spec.revocation.plannedGraceSeconds = 600;
      m.spec.revocation.emergencyGraceSeconds = 301;
    }),
  },
  {
    name: "pool emergency grace longer than planned",
    kind: POOL_KIND,
    field: "spec.revocation.emergencyGraceSeconds",
    manifest: edit(validPool, (m) => (m.spec.revocation.emergencyGraceSeconds = 60)),
  },
  {
    name: "pool emergency grace longer than the default planned grace",
    kind: POOL_KIND,
    field: "spec.revocation.emergencyGraceSeconds",
    manifest: edit(validPool, (m) => (m.spec.revocation = { emergencyGraceSeconds: 31 })),
  },
  {
    name: "pool grace as a fraction",
    kind: POOL_KIND,
    field: "spec.revocation.plannedGraceSeconds",
    manifest: edit(validPool, (m) => (m.spec.revocation.plannedGraceSeconds = 1.5)),
  },
  {
    name: "pool allowed namespace not a name",
    kind: POOL_KIND,
    field: "spec.allowedNamespaces[0]",
    manifest: edit(validPool, (m) => (m.spec.allowedNamespaces = ["Tenants!"])),
  },
  {
    name: "pool allowed namespace twice",
    kind: POOL_KIND,
    field: "spec.allowedNamespaces[1]",
    manifest: edit(validPool, (m) => (m.spec.allowedNamespaces = ["tenants", "tenants"])),
  },
  {
    name: "pool toleration with an unknown effect",
    kind: POOL_KIND,
    field: "spec.tolerations[0].effect",
    manifest: edit(
      validPool,
      (m) => (m.spec.tolerations = [{ key: "dedicated", operator: "Exists", effect: "Sometimes" }]),
    ),
  },
  {
    name: "pool node selector value not a string",
    kind: POOL_KIND,
    field: "spec.nodeSelector.spare",
    manifest: edit(validPool, (m) => (m.spec.nodeSelector = { spare: true })),
  },
  {
    name: "pool named with dots",
    kind: POOL_KIND,
    field: "metadata.name",
    manifest: edit(validPool, (m) => (m.metadata.name = "pool.with.dots")),
  },
  {
    name: "pool with an unknown spec field",
    kind: POOL_KIND,
    field: "spec.slotsPerZone",
    serverOnly: UNKNOWN_FIELDS_PRUNED,
    manifest: edit(validPool, (m) => (m.spec.slotsPerZone = 2)),
  },

  // PoolClaim
  {
    name: "claim without pool",
    kind: CLAIM_KIND,
    field: "spec.pool",
    manifest: edit(validClaim, (m) => delete m.spec.pool),
  },
  {
    name: "claim pool name not a DNS label",
    kind: CLAIM_KIND,
    field: "spec.pool",
    manifest: edit(validClaim, (m) => (m.spec.pool = "Contingency")),
  },
  {
    name: "claim zone not a DNS label",
    kind: CLAIM_KIND,
    field: "spec.zone",
    manifest: edit(validClaim, (m) => (m.spec.zone = "zone a")),
  },
  {
    name: "claim with a negative bid",
    kind: CLAIM_KIND,
    field: "spec.bid",
    manifest: edit(validClaim, (m) => (m.spec.bid = -5)),
  },
  {
    name: "claim bid as a word",
    kind: CLAIM_KIND,
    field: "spec.bid",
    manifest: edit(validClaim, (m) => (m.spec.bid = "high")),
  },
  {
    name: "claim bid too high",
    kind: CLAIM_KIND,
    field: "spec.bid",
    manifest: edit(validClaim, (m) => (m.spec.bid = 1_000_000_001)),
  },
  {
    name: "claim with zero maximum duration",
    kind: CLAIM_KIND,
    field: "spec.maxDurationSeconds",
    manifest: edit(validClaim, (m) => (m.spec.maxDurationSeconds = 0)),
  },
  {
    name: "claim requeueOnRevoke as a word",
    kind: CLAIM_KIND,
    field: "spec.requeueOnRevoke",
    manifest: edit(validClaim, (m) => (m.spec.requeueOnRevoke = "yes")),
  },
  {
    name: "inline claim (with a template) asking for more than one slot",
    kind: CLAIM_KIND,
    field: "spec.slots",
    manifest: edit(validClaim, (m) => (m.spec.slots = 2)),
  },
  {
    name: "claim with zero slots",
    kind: CLAIM_KIND,
    field: "spec.slots",
    manifest: edit(validClaim, (m) => (m.spec.slots = 0)),
  },
  {
    name: "claim template without pod spec",
    kind: CLAIM_KIND,
    field: "spec.template.spec",
    manifest: edit(validClaim, (m) => delete m.spec.template.spec),
  },
  {
    name: "claim pod without containers",
    kind: CLAIM_KIND,
    field: "spec.template.spec.containers",
    manifest: edit(validClaim, (m) => (m.spec.template.spec.containers = [])),
  },
  {
    name: "claim container without image",
    kind: CLAIM_KIND,
    field: "spec.template.spec.containers[0].image",
    manifest: edit(validClaim, (m) => delete m.spec.template.spec.containers[0].image),
  },
  {
    name: "claim container without name",
    kind: CLAIM_KIND,
    field: "spec.template.spec.containers[0].name",
    manifest: edit(validClaim, (m) => delete m.spec.template.spec.containers[0].name),
  },
  {
    name: "claim with two containers of one name",
    kind: CLAIM_KIND,
    field: "spec.template.spec.containers[1]",
    manifest: edit(validClaim, (m) =>
      m.spec.template.spec.containers.push({ name: "worker", image: "registry.example/other:1" }),
    ),
  },
  {
    name: "claim pod label value not a string",
    kind: CLAIM_KIND,
    field: "spec.template.metadata.labels.tier",
    manifest: edit(validClaim, (m) => (m.spec.template.metadata.labels.tier = 3)),
  },
  {
    name: "claim name too long for a label value",
    kind: CLAIM_KIND,
    field: "metadata.name",
    manifest: edit(validClaim, (m) => (m.metadata.name = "c".repeat(64))),
  },
  {
    name: "claim with an unknown spec field",
    kind: CLAIM_KIND,
    field: "spec.priority",
    serverOnly: UNKNOWN_FIELDS_PRUNED,
    manifest: edit(validClaim, (m) => (m.spec.priority = 5)),
  },

  // StorageService
  {
    name: "service spec not an object",
    kind: STORAGE_SERVICE_KIND,
    field: "spec",
    manifest: edit(validStorageService, (m) => (m.spec = "kv")),
  },
  {
    name: "service without pool",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.pool",
    manifest: edit(validStorageService, (m) => delete m.spec.pool),
  },
  {
    name: "service with an empty zone list",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.zones",
    manifest: edit(validStorageService, (m) => (m.spec.zones = [])),
  },
  {
    name: "service with a zone twice",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.zones[1]",
    manifest: edit(validStorageService, (m) => (m.spec.zones = ["zone-a", "zone-a", "zone-b"])),
  },
  {
    name: "service zone not a DNS label",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.zones[2]",
    manifest: edit(validStorageService, (m) => (m.spec.zones[2] = "Zone-C")),
  },
  {
    name: "service replicating over more zones than it has",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.replicationFactor",
    manifest: edit(validStorageService, (m) => (m.spec.replicationFactor = 4)),
  },
  {
    name: "service with the default replication factor over two zones",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.replicationFactor",
    manifest: edit(validStorageService, (m) => {
      m.spec.zones = ["zone-a", "zone-b"];
      delete m.spec.replicationFactor;
    }),
  },
  {
    name: "service with zero replication",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.replicationFactor",
    manifest: edit(validStorageService, (m) => (m.spec.replicationFactor = 0)),
  },
  {
    name: "service primary zone outside its zones",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.primaryZone",
    manifest: edit(validStorageService, (m) => (m.spec.primaryZone = "zone-d")),
  },
  {
    name: "service head without image",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.head.image",
    manifest: edit(validStorageService, (m) => delete m.spec.head.image),
  },
  {
    name: "service head port out of range",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.head.port",
    manifest: edit(validStorageService, (m) => (m.spec.head.port = 70000)),
  },
  {
    name: "service head cpu request not a quantity",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.head.resources.requests.cpu",
    manifest: edit(validStorageService, (m) => (m.spec.head.resources.requests.cpu = "a lot")),
  },
  {
    name: "service without servers",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.servers",
    manifest: edit(validStorageService, (m) => delete m.spec.servers),
  },
  {
    name: "service with no server per zone",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.servers.replicasPerZone",
    manifest: edit(validStorageService, (m) => (m.spec.servers.replicasPerZone = 0)),
  },
  {
    name: "service server storage of zero bytes",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.servers.storage.size",
    manifest: edit(validStorageService, (m) => (m.spec.servers.storage.size = "0")),
  },
  {
    name: "service server storage negative",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.servers.storage.size",
    manifest: edit(validStorageService, (m) => (m.spec.servers.storage.size = "-1Gi")),
  },
  {
    name: "service server storage without size",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.servers.storage.size",
    manifest: edit(validStorageService, (m) => delete m.spec.servers.storage.size),
  },
  {
    name: "service probe timeout longer than its period",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.failureDetection.probeTimeoutMilliseconds",
    manifest: edit(validStorageService, (m) => (m.spec.failureDetection.probeTimeoutMilliseconds = 1000)),
  },
  {
    name: "service probing too often",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.failureDetection.probePeriodMilliseconds",
    manifest: edit(validStorageService, (m) => (m.spec.failureDetection.probePeriodMilliseconds = 10)),
  },
  {
    name: "service failure threshold of zero",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.failureDetection.failureThreshold",
    manifest: edit(validStorageService, (m) => (m.spec.failureDetection.failureThreshold = 0)),
  },
  {
    name: "service whose new head has no time at all to become Ready",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.failover.headStartDeadlineSeconds",
    manifest: edit(validStorageService, (m) => (m.spec.failover.headStartDeadlineSeconds = 0)),
  },
  {
    name: "service whose new head may take more than an hour to become Ready",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.failover.headStartDeadlineSeconds",
    manifest: edit(validStorageService, (m) => (m.spec.failover.headStartDeadlineSeconds = 3601)),
  },
  {
    name: "service with a negative switchover cooldown",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.failover.switchoverCooldownSeconds",
    manifest: edit(validStorageService, (m) => (m.spec.failover.switchoverCooldownSeconds = -1)),
  },
  {
    name: "service with a switchover cooldown over a day",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.failover.switchoverCooldownSeconds",
    manifest: edit(validStorageService, (m) => (m.spec.failover.switchoverCooldownSeconds = 86_401)),
  },
  {
    name: "service with an unknown failback policy",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.failback.policy",
    manifest: edit(validStorageService, (m) => (m.spec.failback.policy = "Sometimes")),
  },
  {
    name: "service head toleration with an empty key and operator Equal",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.head.tolerations[0].operator",
    manifest: edit(
      validStorageService,
      (m) => (m.spec.head.tolerations = [{ operator: "Equal", value: "x" }]),
    ),
  },
  {
    name: "service server toleration with Exists and a value",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.servers.tolerations[1].value",
    manifest: edit(
      validStorageService,
      (m) =>
        (m.spec.servers.tolerations = [
          { key: "a", operator: "Exists" },
          { key: "b", operator: "Exists", value: "x" },
        ]),
    ),
  },
  {
    name: "service head toleration with tolerationSeconds for NoSchedule",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.head.tolerations[0].effect",
    manifest: edit(
      validStorageService,
      (m) => (m.spec.head.tolerations = [{ key: "a", effect: "NoSchedule", tolerationSeconds: 30 }]),
    ),
  },
  {
    name: "service head toleration key not a label key",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.head.tolerations[0].key",
    manifest: edit(
      validStorageService,
      (m) => (m.spec.head.tolerations = [{ key: "bad key!", operator: "Exists" }]),
    ),
  },
  {
    name: "service head toleration with an unknown operator",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.head.tolerations[0].operator",
    manifest: edit(
      validStorageService,
      (m) => (m.spec.head.tolerations = [{ key: "a", operator: "Matches" }]),
    ),
  },
  {
    name: "service head nodeSelector key not a label key",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.head.nodeSelector",
    manifest: edit(validStorageService, (m) => (m.spec.head.nodeSelector = { "disk type": "ssd" })),
  },
  {
    name: "service server nodeSelector value not a label value",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.servers.nodeSelector",
    manifest: edit(validStorageService, (m) => (m.spec.servers.nodeSelector = { disk: "fast ssd" })),
  },
  {
    name: "service server priorityClassName not a DNS subdomain",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.servers.priorityClassName",
    manifest: edit(validStorageService, (m) => (m.spec.servers.priorityClassName = "Critical")),
  },
  {
    name: "service image pull secret named twice",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.imagePullSecrets[1]",
    manifest: edit(
      validStorageService,
      (m) => (m.spec.imagePullSecrets = [{ name: "reg" }, { name: "reg" }]),
    ),
  },
  {
    name: "service image pull secret without a name",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.imagePullSecrets[0].name",
    manifest: edit(validStorageService, (m) => (m.spec.imagePullSecrets = [{}])),
  },
  {
    name: "service with an unknown head field",
    kind: STORAGE_SERVICE_KIND,
    field: "spec.head.replicas",
    serverOnly: UNKNOWN_FIELDS_PRUNED,
    manifest: edit(validStorageService, (m) => (m.spec.head.replicas = 2)),
  },
];

export interface UpdateCase {
  name: string;
  kind: Kind;
  base: () => Manifest;
  change: (spec: Any) => void;
  /** Field the refusal names; none when the update is allowed. */
  field?: string;
}

export const UPDATES: UpdateCase[] = [
  {
    name: "claim moved to another pool",
    kind: CLAIM_KIND,
    base: validZonedClaim,
    change: (s) => (s.pool = "elsewhere"),
    field: "spec.pool",
  },
  {
    name: "claim moved to another zone",
    kind: CLAIM_KIND,
    base: validZonedClaim,
    change: (s) => (s.zone = "zone-c"),
    field: "spec.zone",
  },
  {
    name: "claim given a zone after creation",
    kind: CLAIM_KIND,
    base: validClaim,
    change: (s) => (s.zone = "zone-a"),
    field: "spec.zone",
  },
  {
    name: "claim's zone removed",
    kind: CLAIM_KIND,
    base: validZonedClaim,
    change: (s) => delete s.zone,
    field: "spec.zone",
  },
  {
    name: "service moved to another pool",
    kind: STORAGE_SERVICE_KIND,
    base: validStorageService,
    change: (s) => (s.pool = "elsewhere"),
    field: "spec.pool",
  },
  {
    name: "service given another zone",
    kind: STORAGE_SERVICE_KIND,
    base: validStorageService,
    change: (s) => s.zones.push("zone-d"),
    field: "spec.zones",
  },
  {
    name: "service replication factor lowered",
    kind: STORAGE_SERVICE_KIND,
    base: validStorageService,
    change: (s) => (s.replicationFactor = 2),
    field: "spec.replicationFactor",
  },
  {
    name: "service volumes grown",
    kind: STORAGE_SERVICE_KIND,
    base: validStorageService,
    change: (s) => (s.servers.storage.size = "2Gi"),
    field: "spec.servers.storage.size",
  },
  {
    name: "service given a storage class",
    kind: STORAGE_SERVICE_KIND,
    base: validStorageService,
    change: (s) => (s.servers.storage.storageClassName = "fast"),
    field: "spec.servers.storage.storageClassName",
  },
  // Allowed updates: the rules must not be stricter than they say.
  { name: "claim bid raised", kind: CLAIM_KIND, base: validZonedClaim, change: (s) => (s.bid = 500) },
  {
    name: "service zones listed in another order",
    kind: STORAGE_SERVICE_KIND,
    base: validStorageService,
    change: (s) => s.zones.reverse(),
  },
  {
    name: "service probe period changed",
    kind: STORAGE_SERVICE_KIND,
    base: validStorageService,
    change: (s) => (s.failureDetection.probePeriodMilliseconds = 1000),
  },
];
