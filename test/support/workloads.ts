import type * as k8s from "@kubernetes/client-node";
import { expect } from "vitest";
import { SLOT_SCHEDULING_GATE, poolResource } from "../../src/api/index.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { kwokCompletionAnnotations, slotLeases, type PoolShape } from "./pools.ts";

// What tests of workload mode read back from the real cluster: a claim's pods, the slot Leases that
// name it, and whether each running pod sits on one of them.

/** A pool for workload tests: quick revocations, and KWOK's completion delays allowed on tenant pods. */
export const workloadPoolShape: PoolShape = {
  plannedGraceSeconds: 1,
  emergencyGraceSeconds: 0,
  tenantPods: kwokCompletionAnnotations,
};

/** A workload claim on a pool: where its Leases and its pods live. */
export interface WorkloadRef {
  client: KubeClient;
  /** The operator's namespace (slot Leases). */
  opNs: string;
  pool: string;
  /** The claim's namespace (its pods). */
  namespace: string;
  claim: string;
}

export const listPods = async (client: KubeClient, namespace: string, selector: string) =>
  (await client.core.listNamespacedPod({ namespace, labelSelector: selector })).items;

/** Pods neither being deleted nor finished. */
export const livePods = (pods: k8s.V1Pod[]) =>
  pods.filter(
    (p) => !p.metadata?.deletionTimestamp && p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed",
  );

/** The pod still carries the operator's scheduling gate. */
export const isSlotGated = (p: k8s.V1Pod) =>
  (p.spec?.schedulingGates ?? []).some((g) => g.name === SLOT_SCHEDULING_GATE);

/** The pool's slot Leases that name the claim as holder. */
export const heldLeases = async (w: WorkloadRef) =>
  (await slotLeases(w.client, w.opNs, w.pool)).filter(
    (l) => l.spec?.holderIdentity === `claim:${w.namespace}/${w.claim}`,
  );

/**
 * Each running pod labelled `app=<claim>` sits on a slot its claim holds, on that slot's node,
 * ungated; no slot has two pods; there are `count` of them. Returns them.
 */
export async function expectPodsOnHeldSlots(w: WorkloadRef, count: number): Promise<k8s.V1Pod[]> {
  const held = await heldLeases(w);
  const running = livePods(await listPods(w.client, w.namespace, `app=${w.claim}`)).filter(
    (p) => p.status?.phase === "Running",
  );
  const nodeOf = new Map(
    held.map((l) => [l.metadata!.name!, l.metadata!.annotations!["understudy.dev/node"]]),
  );
  const slots = running.map((p) => p.metadata!.labels!["understudy.dev/slot"]!);
  expect(new Set(slots).size).toBe(slots.length);
  for (const pod of running) {
    const slot = pod.metadata!.labels!["understudy.dev/slot"]!;
    expect(nodeOf.get(slot), `${pod.metadata!.name} on a held slot`).toBeDefined();
    expect(pod.spec!.nodeName).toBe(nodeOf.get(slot));
    expect(isSlotGated(pod)).toBe(false);
  }
  expect(running).toHaveLength(count);
  return running;
}

/** Sets a pool's slot count per zone (a pool that shrinks takes slots back). */
export async function setPoolZones(
  client: KubeClient,
  pool: string,
  zones: Record<string, number>,
): Promise<void> {
  await client.patchCustom(poolResource, pool, undefined, {
    spec: { zones: Object.entries(zones).map(([name, slots]) => ({ name, slots })) },
  });
}

/** A merge patch of any namespaced object (a Job's parallelism, a StatefulSet's replicas). */
export const mergePatchObject = (
  client: KubeClient,
  apiVersion: string,
  kind: string,
  namespace: string,
  name: string,
  patch: object,
) => client.mergePatch({ apiVersion, kind, metadata: { name, namespace } }, patch as Record<string, unknown>);
