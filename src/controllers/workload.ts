// Workload mode, as the claim controller applies it: observe the claim's own pods and held slots,
// plan with planWorkload (src/decisions/workload-pods.ts), apply. The tenant's pods are created
// with the tenant's rights; the operator only pins a gated pod to a held slot's node, lifts the
// gate, and evicts a pod whose slot was taken back.
import * as k8s from "@kubernetes/client-node";
import { CONDITION_VALID, SLOT_SCHEDULING_GATE, type ContingencyPool, type PoolClaim } from "../api/index.ts";
import { admitTenantPod, type AdmissionDecision } from "../decisions/claim-admission.ts";
import { formatHolderIdentity } from "../decisions/names.ts";
import type { SlotView } from "../decisions/types.ts";
import {
  normalizedWorkloadPodSpec,
  planWorkload,
  type WorkloadObserved,
  type WorkloadPlan,
} from "../decisions/workload-pods.ts";
import { isNotFound, isConflict, statusCode } from "../kube/errors.ts";
import { pointerSegment, type JsonPatchOperation } from "../kube/json-patch.ts";
import { compareStrings } from "../decisions/order.ts";
import { ADMITTED, letGoOfClaim, POD_GONE_FALLBACK_MS } from "./claim-controller.ts";
import { countUsage, nextUsage, usagePatch } from "./usage.ts";
import { writeStatus } from "./claim-status.ts";
import type { ControllerContext, ReconcileResult } from "./context.ts";
import type { InvolvedObject } from "../operator/events.ts";
import { CLEAR_REVOCATION, revocationNote, swapHolder } from "./slot-ledger.ts";
import { perObject } from "./derived.ts";
import { slotLeasesHeldBy, slotLeasesRevokedFrom, workloadPodsOf } from "./indexes.ts";
import { annotations, labels, prefix, roles } from "./labels.ts";
import { placeholderName } from "./pods.ts";
import { admitClaimTarget, isTerminated, time, toPoolView, toSlotView } from "./views.ts";
import { claimExpiresAt } from "../decisions/expiry.ts";

/** Node affinity to exactly one node, by name: what a gated pod may be narrowed to. */
const nodeNameAffinity = (node: string): k8s.V1Affinity => ({
  nodeAffinity: {
    requiredDuringSchedulingIgnoredDuringExecution: {
      nodeSelectorTerms: [{ matchFields: [{ key: "metadata.name", operator: "In", values: [node] }] }],
    },
  },
});

/** Admission of a pod against a pool, once per pod version and pool version. */
const podAdmissions = perObject((_pod: k8s.V1Pod) => new WeakMap<ContingencyPool, AdmissionDecision>());

function admitPod(pod: k8s.V1Pod, pool: ContingencyPool | undefined): AdmissionDecision {
  if (!pool) return { admitted: false, reason: "PoolNotFound", message: "the claim's pool does not exist" };
  const memo = podAdmissions(pod);
  const hit = memo.get(pool);
  if (hit) return hit;
  const assigned = pod.metadata?.labels?.[labels.slot] !== undefined;
  // The operator's own notes on the pod (revocation, refusal) are not the tenant's to answer for.
  const tenantAnnotations = Object.fromEntries(
    Object.entries(pod.metadata?.annotations ?? {}).filter(([key]) => !key.startsWith(`${prefix}/`)),
  );
  const decision = admitTenantPod(
    normalizedWorkloadPodSpec(pod.spec, SLOT_SCHEDULING_GATE, assigned),
    { annotations: tenantAnnotations },
    toPoolView(pool),
  );
  memo.set(pool, decision);
  return decision;
}

/** The slots whose Lease names the claim, as views. */
export function heldSlots(ctx: ControllerContext, namespace: string, name: string): SlotView[] {
  const identity = formatHolderIdentity({ kind: "claim", namespace, name });
  return slotLeasesHeldBy(ctx, identity).flatMap((lease) => {
    const slot = toSlotView(lease);
    return slot ? [slot] : [];
  });
}

/** The snapshot planWorkload decides on, for a workload claim (no template). */
export function observeWorkload(
  ctx: ControllerContext,
  claim: PoolClaim,
  pool: ContingencyPool | undefined,
  deleting = false,
): WorkloadObserved {
  const { namespace, name } = claim.metadata as { namespace: string; name: string };
  const held = heldSlots(ctx, namespace, name);
  const firstHeld = Math.min(...held.map((s) => s.acquiredAt ?? ctx.now()));
  const boundAt = time(claim.status?.boundAt) ?? (held.length ? firstHeld : undefined);
  const expiresAt =
    claim.spec.maxDurationSeconds !== undefined && boundAt !== undefined
      ? claimExpiresAt({ maxDurationSeconds: claim.spec.maxDurationSeconds, boundAt })
      : undefined;
  return {
    now: ctx.now(),
    deleting,
    claimAdmission: admitClaimTarget(claim, pool),
    grace: pool?.spec.revocation,
    held,
    revoked: slotLeasesRevokedFrom(ctx, `${namespace}/${name}`).map((lease) => ({
      leaseName: lease.metadata!.name!,
      reason: lease.metadata?.annotations?.[annotations.revocationReason] ?? "SlotRevoked",
    })),
    pods: workloadPodsOf(ctx, namespace, name).map((pod) => ({
      name: pod.metadata!.name!,
      createdAt: time(pod.metadata?.creationTimestamp) ?? 0,
      gated: (pod.spec?.schedulingGates ?? []).some((g) => g.name === SLOT_SCHEDULING_GATE),
      slot: pod.metadata?.labels?.[labels.slot],
      terminating: !!pod.metadata?.deletionTimestamp,
      finished: isTerminated(pod),
      admission: admitPod(pod, pool),
    })),
    slotsMax: claim.spec.slots,
    gang: claim.spec.gang,
    expiresAt: held.length ? expiresAt : undefined,
    maxDurationSeconds: claim.spec.maxDurationSeconds,
    expired: claim.status?.phase === "Expired",
  };
}

/** planWorkload over the claim's snapshot: also what the pool's grants read (slotsWanted). */
export const workloadPlan = (
  ctx: ControllerContext,
  claim: PoolClaim,
  pool: ContingencyPool | undefined,
  deleting = false,
): { observed: WorkloadObserved; plan: WorkloadPlan } => {
  const observed = observeWorkload(ctx, claim, pool, deleting);
  return { observed, plan: planWorkload(observed) };
};

/** Pins a gated pod to the slot's node: the slot's labels, node affinity, the pool's tolerations. */
export async function assignPod(
  ctx: ControllerContext,
  pod: k8s.V1Pod,
  slot: SlotView,
  pool: ContingencyPool,
): Promise<void> {
  const label = (key: string): string => `/metadata/labels/${pointerSegment(key)}`;
  const ops: JsonPatchOperation[] = [
    // Only the pod as observed: a pod changed meanwhile (given a slot already) is decided again.
    { op: "test", path: "/metadata/resourceVersion", value: pod.metadata!.resourceVersion },
    { op: "add", path: label(labels.slot), value: slot.leaseName },
    { op: "add", path: label(labels.pool), value: slot.pool },
    { op: "add", path: label(labels.zone), value: slot.zone },
    { op: "add", path: label(labels.role), value: roles.tenant },
    { op: "add", path: "/spec/affinity", value: nodeNameAffinity(slot.node) },
  ];
  const tolerations = (pool.spec.tolerations ?? []) as k8s.V1Toleration[];
  if (tolerations.length)
    ops.push({
      op: "add",
      path: "/spec/tolerations",
      value: [...(pod.spec?.tolerations ?? []), ...tolerations],
    });
  await patchPod(ctx, pod, ops);
}

/** Lifts the operator's gate (other gates stay), once the slot's placeholder has made room. */
export async function ungatePod(ctx: ControllerContext, pod: k8s.V1Pod, slot: SlotView): Promise<void> {
  await deletePlaceholder(ctx, slot.leaseName);
  const gates = pod.spec?.schedulingGates ?? [];
  const rest = gates.filter((g) => g.name !== SLOT_SCHEDULING_GATE);
  await patchPod(ctx, pod, [
    { op: "test", path: "/spec/schedulingGates", value: gates },
    rest.length
      ? { op: "replace", path: "/spec/schedulingGates", value: rest }
      : { op: "remove", path: "/spec/schedulingGates" },
  ]);
}

async function deletePlaceholder(ctx: ControllerContext, leaseName: string): Promise<void> {
  if (!ctx.cache.pods.get(placeholderName(leaseName), ctx.namespace)) return;
  try {
    await ctx.client.core.deleteNamespacedPod({
      name: placeholderName(leaseName),
      namespace: ctx.namespace,
      gracePeriodSeconds: 0,
    });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

async function patchPod(ctx: ControllerContext, pod: k8s.V1Pod, ops: JsonPatchOperation[]): Promise<void> {
  try {
    await ctx.client.jsonPatch({ apiVersion: "v1", kind: "Pod", metadata: podName(pod) }, [
      { op: "test", path: "/metadata/uid", value: pod.metadata!.uid },
      ...ops,
    ]);
  } catch (err) {
    if (isNotFound(err) || changedSinceObserved(err)) return; // decided again on the next pass
    throw err;
  }
}

const podName = (pod: k8s.V1Pod) => ({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace! });

/**
 * A write guarded by the pod's uid (or resourceVersion) failed: the pod changed, or is another pod
 * by the same name (a StatefulSet recreates its pods under their old names), so the write was
 * meant for a pod that is gone. A failed JSON Patch test, or a uid that is not the object's, is 422;
 * a failed precondition is 409.
 */
const changedSinceObserved = (err: unknown) => isConflict(err) || statusCode(err) === 422;

/** Preconditions of a deletion or eviction: only the pod observed, not one recreated under its name. */
const onlyThisPod = (pod: k8s.V1Pod): k8s.V1Preconditions => ({ uid: pod.metadata!.uid });

/**
 * Evicts a tenant's pod from a slot: annotated with why and until when, marked with the
 * DisruptionTarget condition (so a Job's podFailurePolicy can tell a revocation from a failure),
 * then evicted through the Eviction API with the grace given. The slot is no longer the tenant's,
 * so a PodDisruptionBudget cannot keep the pod there: a refused eviction becomes a deletion.
 */
export async function evictPod(
  ctx: ControllerContext,
  pod: k8s.V1Pod,
  reason: string,
  graceSeconds: number,
): Promise<void> {
  const { name, namespace } = podName(pod);
  const uid = pod.metadata!.uid;
  const deadline = new Date(ctx.now() + graceSeconds * 1000).toISOString();
  try {
    // Every write names the pod's uid: one recreated under the same name meanwhile is left alone.
    if (!pod.metadata?.annotations?.[annotations.revocationReason])
      await ctx.client.mergePatch(
        { apiVersion: "v1", kind: "Pod", metadata: { name, namespace } },
        {
          metadata: {
            uid,
            annotations: {
              [annotations.revocationReason]: reason,
              [annotations.revocationDeadline]: deadline,
            },
          },
        },
      );
    if (!pod.status?.conditions?.some((c) => c.type === "DisruptionTarget" && c.status === "True"))
      await ctx.client.core.patchNamespacedPodStatus(
        {
          name,
          namespace,
          body: {
            metadata: { uid },
            status: {
              conditions: [
                {
                  type: "DisruptionTarget",
                  status: "True",
                  reason: "SlotRevoked",
                  message: `the pod's slot was taken back (${reason}); it stops within ${graceSeconds}s`,
                  lastTransitionTime: new Date(ctx.now()),
                },
              ],
            },
          },
        },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch),
      );
    try {
      await ctx.client.core.createNamespacedPodEviction({
        name,
        namespace,
        body: {
          apiVersion: "policy/v1",
          kind: "Eviction",
          metadata: { name, namespace },
          deleteOptions: { gracePeriodSeconds: graceSeconds, preconditions: onlyThisPod(pod) },
        },
      });
    } catch (err) {
      if (statusCode(err) !== 429) throw err;
      await ctx.client.core.deleteNamespacedPod({
        name,
        namespace,
        gracePeriodSeconds: graceSeconds,
        body: { preconditions: onlyThisPod(pod) },
      });
    }
  } catch (err) {
    if (!isNotFound(err) && !changedSinceObserved(err)) throw err;
  }
}

/** How often a workload claim with pods on the way is looked at again, besides the events that wake it. */
const WORKLOAD_SETTLE_MS = 1000;

/**
 * A workload claim's reconcile: plan, apply each action, record the status (phase Bound while it
 * holds a slot, Pending while it holds none, Expired once its time ran out).
 */
export async function reconcileWorkload(
  ctx: ControllerContext,
  raw: k8s.KubernetesObject,
  claim: PoolClaim,
  pool: ContingencyPool | undefined,
  deleting: boolean,
): Promise<ReconcileResult> {
  const { namespace, name } = claim.metadata as { namespace: string; name: string };
  const { observed, plan } = workloadPlan(ctx, claim, pool, deleting);
  const podsByName = new Map(workloadPodsOf(ctx, namespace, name).map((p) => [p.metadata!.name!, p]));
  const leaseOf = (slot: SlotView) => ctx.cache.slotLeases.get(slot.leaseName, ctx.namespace);
  let pending = false;
  for (const action of plan.actions) {
    switch (action.kind) {
      case "assign":
        await assignPod(ctx, podsByName.get(action.pod)!, action.slot, pool!);
        pending = true;
        break;
      case "ungate":
        await ungatePod(ctx, podsByName.get(action.pod)!, action.slot);
        break;
      case "evict":
        await evictPod(ctx, podsByName.get(action.pod)!, action.reason, action.graceSeconds);
        ctx.events.warning(
          claim,
          "PodEvicted",
          `pod ${action.pod} lost its slot (${action.reason}); it stops within ${action.graceSeconds}s and waits, gated, for the next slot`,
        );
        pending = true;
        break;
      case "freeSlot": {
        const lease = leaseOf(action.slot);
        if (lease && (await swapHolder(ctx.client, lease, { kind: "free" }, CLEAR_REVOCATION)).ok)
          ctx.log.info({ claim: `${namespace}/${name}`, slot: action.slot.leaseName }, "slot released");
        pending = true;
        break;
      }
      case "revokeSlot": {
        // The ledger first, with the reason; the pod on the slot is evicted once the Lease says so.
        const lease = leaseOf(action.slot);
        if (!lease) break;
        const swapped = await swapHolder(
          ctx.client,
          lease,
          { kind: "free" },
          revocationNote({ namespace, name }, action.reason),
        );
        if (swapped.ok) {
          ctx.metrics?.revoked(claim.spec.pool, action.reason);
          ctx.events.warning(
            claim,
            action.reason,
            `${action.message}; slot ${action.slot.leaseName} taken back`,
          );
        }
        pending = true;
        break;
      }
      case "removeFinalizer":
        return letGoOfClaim(ctx, raw);
    }
  }
  if (deleting) return { requeueAfterMs: POD_GONE_FALLBACK_MS };
  for (const r of plan.refused) {
    const pod = podsByName.get(r.pod);
    if (pod && !pod.metadata?.annotations?.[annotations.refusal]) {
      ctx.events.warning(
        pod as InvolvedObject,
        r.reason,
        `pod refused for pool ${claim.spec.pool}: ${r.message}`,
      );
      ctx.events.warning(claim, r.reason, `pod ${r.pod} refused: ${r.message}`);
      try {
        await ctx.client.mergePatch(
          { apiVersion: "v1", kind: "Pod", metadata: podName(pod) },
          {
            metadata: {
              uid: pod.metadata!.uid,
              annotations: { [annotations.refusal]: `${r.reason}: ${r.message}` },
            },
          },
        );
      } catch (err) {
        if (!isNotFound(err) && !changedSinceObserved(err)) throw err;
      }
    }
  }
  // Usage goes in the same status write; it is counted in the metrics once written.
  const usage = nextUsage(ctx, claim, plan.waiting > 0);
  await writeWorkloadStatus(ctx, claim, observed, plan, usagePatch(usage.status, claim.status?.usage));
  if (usage.changed) countUsage(ctx, claim, usage.previous, usage.next);
  const expiry = observed.expiresAt !== undefined ? Math.max(10, observed.expiresAt - ctx.now()) : undefined;
  const after = Math.min(pending ? WORKLOAD_SETTLE_MS : Infinity, expiry ?? Infinity);
  return after === Infinity ? {} : { requeueAfterMs: after };
}

async function writeWorkloadStatus(
  ctx: ControllerContext,
  claim: PoolClaim,
  observed: WorkloadObserved,
  plan: WorkloadPlan,
  usage: ReturnType<typeof usagePatch>,
): Promise<void> {
  const held = [...observed.held].sort((a, b) => compareStrings(a.leaseName, b.leaseName));
  const expired = observed.expired || plan.expiring;
  const admission = observed.claimAdmission;
  const phase = expired ? "Expired" : held.length > 0 ? "Bound" : "Pending";
  const first = Math.min(...held.map((s) => s.acquiredAt ?? ctx.now()));
  const boundAt = held.length
    ? (claim.status?.boundAt ?? new Date(first).toISOString())
    : expired
      ? claim.status?.boundAt
      : undefined;
  const reason = !admission.admitted
    ? admission.reason
    : plan.expiring || observed.expired
      ? "Expired"
      : held.length > 0
        ? "SlotsHeld"
        : plan.refused.length > 0 && plan.waiting === 0
          ? plan.refused[0]!.reason
          : "WaitingForSlot";
  const message = !admission.admitted
    ? admission.message
    : reason === "Expired"
      ? `the claim reached its maximum duration of ${claim.spec.maxDurationSeconds}s`
      : `holds ${held.length} of at most ${claim.spec.slots} slots; ${plan.waiting} pods wait for a slot` +
        (plan.refused.length ? `, ${plan.refused.length} refused` : "");
  await writeStatus(
    ctx,
    claim,
    {
      phase,
      reason,
      message,
      heldSlots: held.map((s) => ({
        leaseName: s.leaseName,
        node: s.node,
        zone: s.zone,
        pod: plan.podOnSlot.get(s.leaseName),
        since: new Date(s.acquiredAt ?? ctx.now()).toISOString(),
      })),
      podsWaiting: plan.waiting,
      podsRefused: plan.refused.length,
      boundAt,
      usage,
    },
    admission.admitted
      ? ADMITTED
      : { type: CONDITION_VALID, status: "False", reason: admission.reason, message: admission.message },
    held.length > 0
      ? { type: "Ready", status: "True", reason: "SlotsHeld", message }
      : { type: "Ready", status: "False", reason, message },
  );
}
