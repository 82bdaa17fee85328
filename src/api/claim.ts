// PoolClaim: a tenant's request for slots of a pool and a bid: one slot for a pod the operator builds
// from an inline template, or up to `slots` slots for the tenant's own pods (workload mode).
import { z } from "zod";
import { conditionList } from "./conditions.ts";
import {
  DNS_LABEL_MESSAGE,
  ObjectMetaSchema,
  dnsLabel,
  isDnsLabel,
  observedGeneration,
  stringMap,
  timestamp,
  uniqueItems,
} from "./common.ts";
import { API_VERSION, CLAIM_KIND } from "./names.ts";
import { parseWith, transitionResult, type ParseResult } from "./parse.ts";
import { immutable, immutableOptional, transitionErrors, withRules, type TransitionRule } from "./rules.ts";

const CLAIM_PHASES = ["Pending", "Bound", "Revoking", "Revoked", "Expired", "Completed"] as const;

const MAX_BID = 1_000_000_000;
const MAX_DURATION_SECONDS = 31_536_000;

const MAX_CLAIM_SLOTS = 1000;

/**
 * The scheduling gate a tenant's own pod carries to wait for a slot of its claim (workload mode).
 * The operator pins the pod to a held slot's node, then lifts the gate.
 */
export const SLOT_SCHEDULING_GATE = "understudy.dev/slot";
/** The label a tenant's own pod carries to name its claim (in the pod's namespace). */
export const CLAIM_LABEL = "understudy.dev/claim";

export const ContainerSchema = z
  .looseObject({
    name: dnsLabel("Name of the container, unique within the pod."),
    image: z.string().min(1).max(1024).describe("Container image."),
  })
  .meta({
    "x-kubernetes-preserve-unknown-fields": true,
    description:
      "A container, as in a pod spec; fields other than name and image are passed to the pod unchanged.",
  });

const TenantPodSpecSchema = z
  .looseObject({
    containers: z
      .array(ContainerSchema)
      .min(1)
      .max(32)
      .superRefine(uniqueItems((container) => container.name, "container name"))
      .meta({
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        description: "Containers of the tenant pod (at least one, names unique).",
      }),
  })
  .meta({
    "x-kubernetes-preserve-unknown-fields": true,
    description:
      "Spec of the tenant pod, as a core/v1 PodSpec. The operator sets nodeName (the slot's node), tolerations of the pool and the Understudy labels; the API server validates the rest when it creates the pod.",
  });

const TenantPodTemplateSchema = z
  .object({
    metadata: z
      .object({
        labels: stringMap(
          "Labels of the tenant pod (the operator adds its own understudy.dev/ labels).",
        ).optional(),
        annotations: stringMap("Annotations of the tenant pod.").optional(),
      })
      .optional()
      .describe("Labels and annotations of the tenant pod."),
    spec: TenantPodSpecSchema,
  })
  .describe(
    "Template of the pod the claim runs on its slot, named <claim>-tenant and pinned to the slot's node.",
  );

const claimSpecTransitions: TransitionRule<{ pool: string; zone?: string | undefined }>[] = [
  immutable("pool"),
  immutableOptional("zone"),
];

const PoolClaimSpecSchema = withRules(
  z.object({
    pool: dnsLabel("Name of the ContingencyPool to lease a slot from. Immutable."),
    zone: dnsLabel(
      "Zone the slot must be in; unset lets the operator choose. Must be one of the pool's zones. Immutable: set at creation or never.",
    ).optional(),
    bid: z
      .int()
      .min(0)
      .max(MAX_BID)
      .default(0)
      .describe(
        `Revocation order: when a storage service needs a leased slot, the claim with the lowest bid loses its slot first (ties: the youngest lease). Higher bids are also granted first. 0 to ${MAX_BID}.`,
      ),
    maxDurationSeconds: z
      .int()
      .min(1)
      .max(MAX_DURATION_SECONDS)
      .optional()
      .describe(
        "Longest time, in seconds, the claim may hold a slot; then it is revoked with the pool's planned grace and becomes Expired. Unset: no limit.",
      ),
    requeueOnRevoke: z
      .boolean()
      .default(false)
      .describe(
        "Whether a revoked claim goes back to Pending to wait for another slot, instead of staying Revoked.",
      ),
    template: TenantPodTemplateSchema.optional().describe(
      `Inline mode: the pod the operator runs on the claim's one slot, named <claim>-tenant. Unset: workload mode, where the tenant's own pods (of a Job, Deployment, StatefulSet, or bare) carry the scheduling gate ${SLOT_SCHEDULING_GATE} and the label ${CLAIM_LABEL}=<claim>, and the operator gives each a slot of the claim.`,
    ),
    slots: z
      .int()
      .min(1)
      .max(MAX_CLAIM_SLOTS)
      .default(1)
      .describe(
        `Most slots the claim holds at once (workload mode: one per gated pod, up to this many). Inline claims hold one. 1 to ${MAX_CLAIM_SLOTS}.`,
      ),
    gang: z
      .boolean()
      .default(false)
      .describe(
        "All or nothing (workload mode): slots are granted only when the pool can give the claim all `slots` of them at once, and only once that many of its pods wait or run.",
      ),
  }),
  [
    {
      cel: "!has(self.template) || (self.slots == 1 && !self.gang)",
      message: "an inline claim (with a template) holds one slot: slots must be 1 and gang false",
      fieldPath: ".slots",
      holds: (spec) => spec.template === undefined || (spec.slots === 1 && !spec.gang),
    },
  ],
  claimSpecTransitions,
).describe("Desired state of the claim.");

const PoolClaimStatusSchema = z
  .object({
    observedGeneration: observedGeneration(),
    phase: z
      .enum(CLAIM_PHASES)
      .optional()
      .describe(
        "Pending: waiting for a slot. Bound: holds a slot and runs its pod (workload mode: holds at least one slot). Revoking: its slot is being taken back. Revoked: lost its slot. Expired: reached maxDurationSeconds. Completed: its inline pod finished and the slot went back to the pool.",
      ),
    leaseName: z
      .string()
      .optional()
      .describe("Name of the slot Lease the claim holds (in the operator's namespace)."),
    slot: z
      .string()
      .optional()
      .describe("The slot's identifier: the understudy.dev/slot label of its Lease."),
    zone: z.string().optional().describe("Zone of the slot the claim holds or last held."),
    node: z.string().optional().describe("Node of the slot the claim holds or last held."),
    pod: z.string().optional().describe("Name of the tenant pod."),
    heldSlots: z
      .array(
        z
          .object({
            leaseName: z.string().describe("The slot Lease."),
            node: z.string().describe("The slot's node."),
            zone: z.string().describe("The slot's zone."),
            pod: z.string().optional().describe("The pod given the slot, once one is."),
            since: timestamp("When the claim acquired the slot (the Lease's acquireTime)."),
          })
          .describe("A slot the claim holds."),
      )
      .optional()
      .describe("Workload mode: the slots the claim holds and the pod on each."),
    podsWaiting: z
      .int()
      .min(0)
      .optional()
      .describe("Workload mode: the claim's gated pods that passed admission and wait for a slot."),
    podsRefused: z
      .int()
      .min(0)
      .optional()
      .describe("Workload mode: the claim's gated pods admission refuses (each gets a Warning Event)."),
    boundAt: timestamp("When the claim was granted its slot.").optional(),
    expiresAt: timestamp("When the claim's maxDurationSeconds runs out.").optional(),
    revokedAt: timestamp("When the revocation of the claim's slot began.").optional(),
    revokeDeadline: timestamp(
      "When the tenant pod is killed if it has not stopped (revokedAt plus the grace period).",
    ).optional(),
    revokedBy: z
      .string()
      .optional()
      .describe(
        "Who took the slot: service:<namespace>/<name> for a failover, or pool for the pool's own needs.",
      ),
    usage: z
      .object({
        slotSeconds: z
          .number()
          .min(0)
          .describe("Slot-seconds of the holds that ended (open holds are in held)."),
        waitingSeconds: z
          .number()
          .min(0)
          .describe(
            "Seconds the claim waited for a slot, in waits that ended (an open wait is in waitingSince).",
          ),
        revocations: z
          .record(z.string(), z.int().min(0))
          .describe("Slots taken from the claim, by reason (Failover, PoolShrunk, Expired, ...)."),
        held: z
          .array(
            z
              .object({
                leaseName: z.string().describe("The slot Lease."),
                since: timestamp("When the hold began (the Lease's acquireTime)."),
              })
              .describe("A hold still open."),
          )
          .describe("Holds still open."),
        waitingSince: timestamp(
          "When the wait now open began; unset when the claim does not wait.",
        ).optional(),
      })
      .optional()
      .describe(
        "Usage accounting, kept from the slot ledger: totals of what ended, and what is still open (understudy usage adds them up to now).",
      ),
    reason: z.string().optional().describe("Machine-readable reason for the current phase, in CamelCase."),
    message: z.string().optional().describe("Human-readable details about the current phase."),
    conditions: conditionList(
      "Ready: the tenant pod runs on the claim's slot. Valid: the spec passed the operator's checks.",
    ),
  })
  .describe("Observed state of the claim, written by the operator.");

export const PoolClaimSchema = withRules(
  z.object({
    apiVersion: z.literal(API_VERSION).describe("API version of the object."),
    kind: z.literal(CLAIM_KIND).describe("Kind of the object."),
    metadata: ObjectMetaSchema,
    spec: PoolClaimSpecSchema,
    status: PoolClaimStatusSchema.optional(),
  }),
  [
    {
      // The claim's name is the value of the understudy.dev/claim label of its pod.
      cel: "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && self.metadata.name.size() <= 63",
      message: `metadata.name ${DNS_LABEL_MESSAGE}`,
      fieldPath: ".metadata.name",
      celOmitsFieldPath: true,
      holds: (claim) => claim.metadata.name === undefined || isDnsLabel(claim.metadata.name),
    },
  ],
).describe(
  "PoolClaim asks for slots of a ContingencyPool to run tenant pods on, until a storage service needs the capacity back.",
);

export type PoolClaim = z.output<typeof PoolClaimSchema>;
export type PoolClaimSpec = z.output<typeof PoolClaimSpecSchema>;
export type PoolClaimStatus = z.output<typeof PoolClaimStatusSchema>;

export function parseClaim(obj: unknown): ParseResult<PoolClaim> {
  return parseWith(PoolClaimSchema, obj);
}

/** Parses `next` and checks the update from `previous` against the immutability rules the API server enforces. */
export function parseClaimUpdate(previous: PoolClaim, next: unknown): ParseResult<PoolClaim> {
  const parsed = parseClaim(next);
  if (!parsed.ok) return parsed;
  return transitionResult(
    parsed.value,
    transitionErrors(claimSpecTransitions, parsed.value.spec, previous.spec, ["spec"]),
  );
}
