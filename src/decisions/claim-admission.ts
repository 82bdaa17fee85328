// Whether a PoolClaim may hold a slot: decided from the current claim, pool and namespace before
// every tenant pod the operator creates and whenever any of them changes, so a refusal is reported
// to the tenant (reason code and message) and a Bound claim that stops passing loses its slot.
import { checkRestrictedPodSecurity, type PodSecurityViolation } from "./pod-security.ts";
import { checkTenantPodFields } from "./tenant-pod-fields.ts";
import { checkTenantPodSize } from "./tenant-pod-size.ts";
import type { PoolView } from "./types.ts";

export const ClaimRefusalReason = {
  PoolNotFound: "PoolNotFound",
  NamespaceNotAllowed: "NamespaceNotAllowed",
  ZoneNotInPool: "ZoneNotInPool",
  InvalidPodTemplate: "InvalidPodTemplate",
  PodSecurityViolation: "PodSecurityViolation",
  FieldNotAllowed: "FieldNotAllowed",
  PodExceedsSlot: "PodExceedsSlot",
} as const;
export type ClaimRefusalReason = (typeof ClaimRefusalReason)[keyof typeof ClaimRefusalReason];

export type AdmissionDecision =
  | { admitted: true }
  | {
      admitted: false;
      reason: ClaimRefusalReason;
      message: string;
      /** The restricted-profile violations, for PodSecurityViolation. */
      violations?: PodSecurityViolation[];
    };

export interface ClaimAdmissionInput {
  claim: { namespace: string; pool: string; zone?: string };
  /** The pool the claim names, or undefined when it does not exist. */
  pool: PoolView | undefined;
  /** The claim's raw `spec.template.spec`, as the tenant wrote it; undefined for a workload claim (no template). */
  podSpec?: unknown;
  /** The claim's raw `spec.template.metadata` (AppArmor annotations live there). */
  podMetadata?: unknown;
}

const MESSAGE_VIOLATIONS = 3;

/**
 * Admits a claim or refuses it with the first failing rule, in this order: the pool exists; the
 * claim's namespace is allowed (`"*"` allows any); its zone, if any, is one of the pool's; its pod
 * template has at least one container; the template passes the restricted Pod Security Standard
 * (see pod-security.ts), checked on containers, initContainers and ephemeralContainers; it sets no
 * field the pool does not let tenants set (see tenant-pod-fields.ts); it fits the pool's slot size
 * (see tenant-pod-size.ts).
 */
export function admitClaim(input: ClaimAdmissionInput): AdmissionDecision {
  const { claim, pool } = input;
  if (!pool) {
    return refuse(ClaimRefusalReason.PoolNotFound, `ContingencyPool "${claim.pool}" does not exist`);
  }
  if (!pool.allowedNamespaces.includes("*") && !pool.allowedNamespaces.includes(claim.namespace)) {
    return refuse(
      ClaimRefusalReason.NamespaceNotAllowed,
      `namespace "${claim.namespace}" may not claim slots of pool "${pool.name}"`,
    );
  }
  if (claim.zone !== undefined && !pool.zones.some((zone) => zone.name === claim.zone)) {
    const zones = pool.zones.map((zone) => zone.name).join(", ");
    return refuse(
      ClaimRefusalReason.ZoneNotInPool,
      `zone "${claim.zone}" is not in pool "${pool.name}" (zones: ${zones || "none"})`,
    );
  }
  return input.podSpec === undefined && input.podMetadata === undefined
    ? { admitted: true }
    : admitTenantPod(input.podSpec, input.podMetadata, pool);
}

/**
 * Admits one tenant pod's spec and metadata against the pool, whoever wrote it: an inline claim's
 * template, or a tenant's own gated pod (workload mode; see workload-pods.ts for the fields the API
 * server and controllers fill in, which are left out first). The same rules in the same order.
 */
export function admitTenantPod(spec: unknown, podMetadata: unknown, pool: PoolView): AdmissionDecision {
  const containers =
    typeof spec === "object" && spec !== null ? (spec as Record<string, unknown>).containers : undefined;
  if (!Array.isArray(containers) || containers.length === 0) {
    return refuse(ClaimRefusalReason.InvalidPodTemplate, "the pod template must have at least one container");
  }
  const fields = checkTenantPodFields(spec, podMetadata, pool.tenantPods);
  if (fields.length > 0)
    return refuse(
      ClaimRefusalReason.FieldNotAllowed,
      summarize("the pod template sets fields the pool does not allow", fields),
    );
  const violations = checkRestrictedPodSecurity(spec, podMetadata);
  if (violations.length > 0) {
    const message = summarize("the pod template violates the restricted Pod Security Standard", violations);
    return { admitted: false, reason: ClaimRefusalReason.PodSecurityViolation, message, violations };
  }
  const size = checkTenantPodSize(spec, pool.slotSize);
  if (size.length > 0)
    return refuse(
      ClaimRefusalReason.PodExceedsSlot,
      summarize(`the pod does not fit a slot of pool "${pool.name}"`, size),
    );
  return { admitted: true };
}

function summarize(what: string, problems: readonly { message: string }[]): string {
  const shown = problems.slice(0, MESSAGE_VIOLATIONS).map((p) => p.message);
  const more = problems.length - shown.length;
  return `${what}: ${shown.join("; ")}` + (more > 0 ? `; and ${more} more` : "");
}

function refuse(reason: ClaimRefusalReason, message: string): AdmissionDecision {
  return { admitted: false, reason, message };
}
