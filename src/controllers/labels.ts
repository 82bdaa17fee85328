// Labels and annotations the operator writes. One place, so every controller spells them alike.
import { CLAIM_LABEL } from "../api/claim.ts";

export const prefix = "understudy.dev";

export const labels = {
  pool: `${prefix}/pool`,
  zone: `${prefix}/zone`,
  slot: `${prefix}/slot`,
  /** On a tenant pod: its claim. The operator sets it on inline pods; a tenant's own pods carry it. */
  claim: CLAIM_LABEL,
  /** What a pod is to the operator: placeholder, tenant, head or server. */
  role: `${prefix}/role`,
  service: `${prefix}/service`,
  epoch: `${prefix}/epoch`,
  managedBy: "app.kubernetes.io/managed-by",
  /** Kubernetes' well-known label of a node's zone. */
  nodeZone: "topology.kubernetes.io/zone",
} as const;

export const annotations = {
  /** On a slot Lease: the node its capacity sits on. */
  node: `${prefix}/node`,
  /** On a tenant pod and a slot Lease: why and until when the slot is being taken back. */
  revocationReason: `${prefix}/revocation-reason`,
  revocationDeadline: `${prefix}/revocation-deadline`,
  /** On a slot Lease: the claim that last lost it, so a restarted operator can finish telling it. */
  revokedClaim: `${prefix}/revoked-claim`,
  /** On a tenant's own gated pod: why admission refused it (told once, by an Event). */
  refusal: `${prefix}/refusal`,
} as const;

/**
 * What a placeholder pod tells cluster autoscalers: the free slot's capacity is the point, so
 * neither Cluster Autoscaler's scale-down nor Karpenter's consolidation or drift may take its node
 * away (docs/OPERATIONS.md, "Cluster Autoscaler and Karpenter").
 */
export const placeholderAnnotations = {
  "cluster-autoscaler.kubernetes.io/safe-to-evict": "false",
  "karpenter.sh/do-not-disrupt": "true",
} as const;

export const roles = {
  placeholder: "placeholder",
  tenant: "tenant",
  head: "head",
  server: "server",
} as const;

export const managedBy = "understudy";

/**
 * Labels every operator pod carries whatever the release is called (deploy/helm's
 * "understudy.labels"; the plain manifests are rendered from it): NetworkPolicies let the
 * operator's probe in by them, in the operator's namespace.
 */
export const operatorPodLabels = {
  "app.kubernetes.io/component": "operator",
  "app.kubernetes.io/part-of": "understudy",
} as const;
export const finalizer = `${prefix}/slot-release`;
export const placeholderPriorityClass = "understudy-placeholder";
