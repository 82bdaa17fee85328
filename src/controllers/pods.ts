// The pods the pool and claim controllers run on slots.
import { DEFAULT_PLACEHOLDER_IMAGE } from "../operator/settings.ts";
import type * as k8s from "@kubernetes/client-node";
import { CLAIM_KIND, type ContingencyPool, type PoolClaim } from "../api/index.ts";
import type { SlotView } from "../decisions/types.ts";
import { tenantPodFieldRule } from "../decisions/tenant-pod-fields.ts";
import { labels, managedBy, placeholderAnnotations, placeholderPriorityClass, roles } from "./labels.ts";

export const placeholderName = (leaseName: string) => `placeholder-${leaseName}`;
const TENANT_POD_SUFFIX = "-tenant";
export const tenantPodName = (claimName: string) => `${claimName}${TENANT_POD_SUFFIX}`;
/** The claim a pod's name is reserved for, whoever made the pod. */
export const claimNamedBy = (podName: string | undefined) =>
  podName?.endsWith(TENANT_POD_SUFFIX) ? podName.slice(0, -TENANT_POD_SUFFIX.length) : undefined;

/**
 * The claim a tenant pod belongs to ("namespace/name"): the PoolClaim that controls it. Anyone who
 * may create pods can give one our labels and name; only the claim's controller reference (with
 * the claim's uid, when it is known) makes it the claim's.
 */
export function tenantPodClaim(pod: k8s.V1Pod, claimUid?: string): string | undefined {
  const owner = pod.metadata?.ownerReferences?.find((ref) => ref.controller && ref.kind === CLAIM_KIND);
  if (!owner || (claimUid !== undefined && owner.uid !== claimUid)) return undefined;
  return `${pod.metadata?.namespace}/${owner.name}`;
}

/** Kubernetes' default terminationGracePeriodSeconds. */
const DEFAULT_TERMINATION_GRACE_SECONDS = 30;

/** The lowest priority there is: a placeholder only keeps capacity warm and yields to anything. */
export const placeholderPriorityClassObject: k8s.V1PriorityClass = {
  apiVersion: "scheduling.k8s.io/v1",
  kind: "PriorityClass",
  metadata: { name: placeholderPriorityClass, labels: { [labels.managedBy]: managedBy } },
  value: -10,
  preemptionPolicy: "Never",
  globalDefault: false,
  description: "Placeholder pods that hold Understudy contingency slots while they are free.",
};

function slotLabels(slot: SlotView, role: string): Record<string, string> {
  return {
    [labels.pool]: slot.pool,
    [labels.zone]: slot.zone,
    [labels.slot]: slot.leaseName,
    [labels.role]: role,
    [labels.managedBy]: managedBy,
  };
}

const restrictedContainerSecurity: k8s.V1SecurityContext = {
  allowPrivilegeEscalation: false,
  runAsNonRoot: true,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
};

/**
 * Holds a free slot's capacity on its node: requests exactly the slot size, runs the pause image
 * (the pool's spec.placeholderImage, else the operator's default).
 */
export function placeholderPod(
  pool: ContingencyPool,
  slot: SlotView,
  namespace: string,
  defaultImage: string = DEFAULT_PLACEHOLDER_IMAGE,
): k8s.V1Pod {
  const size = { cpu: String(pool.spec.slotSize.cpu), memory: String(pool.spec.slotSize.memory) };
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: placeholderName(slot.leaseName),
      namespace,
      labels: slotLabels(slot, roles.placeholder),
      annotations: { ...placeholderAnnotations },
    },
    spec: {
      nodeName: slot.node,
      priorityClassName: placeholderPriorityClass,
      terminationGracePeriodSeconds: 0,
      automountServiceAccountToken: false,
      tolerations: pool.spec.tolerations as k8s.V1Toleration[] | undefined,
      containers: [
        {
          name: "hold",
          image: pool.spec.placeholderImage ?? defaultImage,
          resources: { requests: size, limits: size },
          securityContext: { ...restrictedContainerSecurity, runAsUser: 65535 },
        },
      ],
    },
  };
}

/**
 * The tenant's pod on its slot, from a template that passed admission: the fields the tenant or the
 * pool may decide (see tenant-pod-fields.ts) copied, then the operator's own: pinned to the slot's
 * node, the pool's tolerations added, the slot's size as the pod's requests and limits, no service
 * account token unless the pool allows one, a termination grace of at most the pool's planned
 * grace, owned by the claim (deleting the claim deletes the pod).
 * Operator labels win over the tenant's.
 */
export function tenantPod(claim: PoolClaim, pool: ContingencyPool, slot: SlotView): k8s.V1Pod {
  const template = claim.spec.template;
  if (!template)
    throw new Error(`claim ${claim.metadata.name} runs its tenant's own pods: it has no pod to build`);
  const written = template.spec as Record<string, unknown>;
  const spec = Object.fromEntries(
    Object.entries(written).filter(([field]) => tenantPodFieldRule(field)?.kind !== "operator"),
  ) as unknown as k8s.V1PodSpec;
  const size = { cpu: String(pool.spec.slotSize.cpu), memory: String(pool.spec.slotSize.memory) };
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: tenantPodName(claim.metadata.name!),
      namespace: claim.metadata.namespace!,
      labels: {
        ...(template.metadata?.labels ?? {}),
        ...slotLabels(slot, roles.tenant),
        [labels.claim]: claim.metadata.name!,
      },
      annotations: template.metadata?.annotations,
      ownerReferences: [
        {
          apiVersion: claim.apiVersion,
          kind: claim.kind,
          name: claim.metadata.name!,
          uid: claim.metadata.uid!,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      ...spec,
      nodeName: slot.node,
      tolerations: [...(spec.tolerations ?? []), ...((pool.spec.tolerations ?? []) as k8s.V1Toleration[])],
      automountServiceAccountToken: pool.spec.tenantPods.automountServiceAccountToken
        ? spec.automountServiceAccountToken
        : false,
      resources: { requests: size, limits: size },
      // A tenant may not outstay a revocation or a release by asking for a long goodbye.
      terminationGracePeriodSeconds: Math.min(
        spec.terminationGracePeriodSeconds ?? DEFAULT_TERMINATION_GRACE_SECONDS,
        pool.spec.revocation.plannedGraceSeconds,
      ),
    },
  };
}
