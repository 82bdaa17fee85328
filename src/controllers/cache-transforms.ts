// What the informer caches keep of each object: only what the controllers read (controller-runtime's
// TransformStripManagedFields, taken further per kind). Objects are shaped as they arrive, so the
// fields dropped here are never held, however many objects the cluster has. A controller that starts
// reading another field adds it here; test/unit/controllers/cache-transforms.test.ts names each kept one.
import type * as k8s from "@kubernetes/client-node";
import { labels } from "./labels.ts";

type Metadata = k8s.V1ObjectMeta;

/** Metadata without managedFields: the API server's record of who set which field, never read here. */
function metadataAsRead(metadata: Metadata | undefined): Metadata | undefined {
  if (!metadata?.managedFields) return metadata;
  const { managedFields: _, ...rest } = metadata;
  return rest;
}

/** Any object without its managedFields (custom resources, slot Leases, head Services). */
export function withoutManagedFields<T extends k8s.KubernetesObject>(object: T): T {
  if (!object.metadata?.managedFields) return object;
  return { ...object, metadata: metadataAsRead(object.metadata) };
}

/** Whether a pod is one the operator runs (placeholder, tenant, head, server): it carries one of its labels. */
const operatorsPod = (metadata: Metadata | undefined) =>
  metadata?.labels?.[labels.pool] !== undefined ||
  metadata?.labels?.[labels.service] !== undefined ||
  metadata?.labels?.[labels.role] !== undefined;

const containerAsRead = (c: k8s.V1Container): k8s.V1Container => ({
  name: c.name,
  // A head's image tells a pending image rollout (head-image-rollout.ts).
  ...(c.image !== undefined ? { image: c.image } : {}),
  ...(c.resources?.requests ? { resources: { requests: c.resources.requests } } : {}),
});

/**
 * A pod as the controllers read it. Every pod is cached, because a node's room is what all its pods
 * request (as the scheduler counts it); of a pod the operator does not run only that is kept, with
 * its identity and labels. Kept: metadata (annotations only on the operator's pods), the node it is
 * bound to, the containers' names, images and requests and the pod-level resources, the phase, the
 * conditions, the pod IP and the status reason and message. A pod naming a claim is kept whole.
 */
export function podAsRead(pod: k8s.V1Pod): k8s.V1Pod {
  const metadata = metadataAsRead(pod.metadata);
  // A tenant's pod is judged whole (admission reads every field) and gated, pinned and tolerated
  // in place (workload mode): kept as it is but for managedFields.
  if (metadata?.labels?.[labels.claim] !== undefined) return { ...pod, metadata };
  const spec = pod.spec;
  const status = pod.status;
  let kept = metadata;
  if (metadata?.annotations && !operatorsPod(metadata)) {
    const { annotations: _, ...rest } = metadata;
    kept = rest;
  }
  return {
    apiVersion: pod.apiVersion,
    kind: pod.kind,
    metadata: kept,
    ...(spec && {
      spec: {
        ...(spec.nodeName !== undefined && { nodeName: spec.nodeName }),
        containers: (spec.containers ?? []).map(containerAsRead),
        ...(spec.initContainers && { initContainers: spec.initContainers.map(containerAsRead) }),
        ...(spec.resources && { resources: spec.resources }),
      },
    }),
    ...(status && {
      status: {
        ...(status.phase !== undefined && { phase: status.phase }),
        ...(status.conditions && { conditions: status.conditions }),
        ...(status.podIP !== undefined && { podIP: status.podIP }),
        ...(status.reason !== undefined && { reason: status.reason }),
        ...(status.message !== undefined && { message: status.message }),
      },
    }),
  };
}

/**
 * A node as the controllers read it: metadata (labels give its zone), whether it is unschedulable
 * and its taints, its conditions and what it can allocate. Its images, addresses, capacity and
 * system information (most of a real node's size) are not kept.
 */
export function nodeAsRead(node: k8s.V1Node): k8s.V1Node {
  const spec = node.spec;
  const status = node.status;
  return {
    apiVersion: node.apiVersion,
    kind: node.kind,
    metadata: metadataAsRead(node.metadata),
    ...(spec && {
      spec: {
        ...(spec.unschedulable !== undefined && { unschedulable: spec.unschedulable }),
        ...(spec.taints && { taints: spec.taints }),
      },
    }),
    ...(status && {
      status: {
        ...(status.conditions && { conditions: status.conditions }),
        ...(status.allocatable && { allocatable: status.allocatable }),
      },
    }),
  };
}
