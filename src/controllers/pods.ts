// The pods the pool and claim controllers run on slots.
import type * as k8s from "@kubernetes/client-node";
import type { ContingencyPool, PoolClaim } from "../api/index.ts";
import type { SlotView } from "../decisions/types.ts";
import { TENANT_POD_SPEC_FIELDS } from "../decisions/tenant-pod-fields.ts";
import { labels, managedBy, placeholderPriorityClass, roles } from "./labels.ts";

export const placeholderName = (leaseName: string) => `placeholder-${leaseName}`;
export const tenantPodName = (claimName: string) => `${claimName}-tenant`;

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

/** Holds a free slot's capacity on its node: requests exactly the slot size, runs the pause image. */
export function placeholderPod(pool: ContingencyPool, slot: SlotView, namespace: string): k8s.V1Pod {
  const size = { cpu: String(pool.spec.slotSize.cpu), memory: String(pool.spec.slotSize.memory) };
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: placeholderName(slot.leaseName),
      namespace,
      labels: slotLabels(slot, roles.placeholder),
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
          image: "registry.k8s.io/pause:3.10",
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
 * account token unless the pool allows one, owned by the claim (deleting the claim deletes the pod).
 * Operator labels win over the tenant's.
 */
export function tenantPod(claim: PoolClaim, pool: ContingencyPool, slot: SlotView): k8s.V1Pod {
  const template = claim.spec.template;
  const written = template.spec as Record<string, unknown>;
  const spec = Object.fromEntries(
    Object.entries(written).filter(([field]) => TENANT_POD_SPEC_FIELDS[field]?.kind !== "operator"),
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
    },
  };
}
