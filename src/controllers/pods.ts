// The pods the pool and claim controllers run on slots.
import type * as k8s from "@kubernetes/client-node";
import type { ContingencyPool, PoolClaim } from "../api/index.ts";
import type { SlotView } from "../decisions/types.ts";
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
 * The tenant's pod on its slot: the claim's template, pinned to the slot's node, sized to the slot
 * when the template asks for nothing, owned by the claim (so deleting the claim deletes the pod).
 */
export function tenantPod(claim: PoolClaim, pool: ContingencyPool, slot: SlotView): k8s.V1Pod {
  const template = claim.spec.template;
  const spec = template.spec as unknown as k8s.V1PodSpec;
  const size = { cpu: String(pool.spec.slotSize.cpu), memory: String(pool.spec.slotSize.memory) };
  const containers = spec.containers.map((c, i) =>
    i === 0 && !c.resources?.requests
      ? { ...c, resources: { ...c.resources, requests: size, limits: size } }
      : c,
  );
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
      containers,
      nodeName: slot.node,
      tolerations: [...(spec.tolerations ?? []), ...((pool.spec.tolerations ?? []) as k8s.V1Toleration[])],
    },
  };
}
