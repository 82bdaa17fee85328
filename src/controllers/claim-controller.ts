// PoolClaim reconciler: derives the claim's status from the slot ledger, runs the tenant pod while
// (and only while) the claim holds its slot, releases the slot when the claim goes, and expires
// claims that reached their maximum duration. Grants are the pool controller's: it orders claims by bid.
import type * as k8s from "@kubernetes/client-node";
import {
  CONDITION_VALID,
  REASON_INVALID_SPEC,
  setCondition,
  type ConditionInput,
  type ContingencyPool,
  type PoolClaim,
  claimResource,
} from "../api/index.ts";
import type { AdmissionDecision } from "../decisions/claim-admission.ts";
import { claimExpiresAt } from "../decisions/expiry.ts";
import { formatHolderIdentity } from "../decisions/names.ts";
import type { SlotView } from "../decisions/types.ts";
import { errorMessage, isConflict, isNotFound, isRefusal } from "../kube/errors.ts";
import { addFinalizer, FinalizerConflictError, removeFinalizer } from "../operator/finalizers.ts";
import type { ControllerContext, ReconcileResult } from "./context.ts";
import { annotations, finalizer, labels } from "./labels.ts";
import { placeholderName, tenantPod, tenantPodName } from "./pods.ts";
import { noticeRevocation, stopTenantPod } from "./revocation.ts";
import {
  ownedTenantPod,
  parsedClaim,
  parsedPool,
  slotLeasesHeldBy,
  slotLeasesRevokedFrom,
} from "./indexes.ts";
import { sameJson } from "./json-equal.ts";
import { swapHolder } from "./slot-ledger.ts";
import { admit, isTerminated, toClaimView, toSlotView } from "./views.ts";

type ClaimStatus = NonNullable<PoolClaim["status"]>;

/**
 * Waiting for a tenant pod to go: its deletion wakes the claim (tenant pods are watched), so this
 * is only a safety net. Polling faster cost thousands of reconciles a second when many claims were
 * released at once.
 */
const POD_GONE_FALLBACK_MS = 5_000;

/** A tenant pod the API server refused is tried again this often (a change to the claim retries at once). */
const TENANT_POD_RETRY_MS = 30_000;

function heldLease(ctx: ControllerContext, namespace: string, name: string): k8s.V1Lease | undefined {
  const identity = formatHolderIdentity({ kind: "claim", namespace, name });
  return slotLeasesHeldBy(ctx, identity)[0];
}

export async function reconcileClaim(
  ctx: ControllerContext,
  namespace: string,
  name: string,
): Promise<ReconcileResult> {
  try {
    return await reconcileClaimOnce(ctx, namespace, name);
  } catch (err) {
    if (err instanceof StaleRead) return { requeueAfterMs: 50 };
    // The claim went away under us (the cache lags a deletion): nothing is left to do for it.
    if (isNotFound(err) && !(await claimExists(ctx, namespace, name))) return {};
    throw err;
  }
}

async function claimExists(ctx: ControllerContext, namespace: string, name: string): Promise<boolean> {
  try {
    await ctx.client.getCustom(claimResource, name, namespace);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

async function reconcileClaimOnce(
  ctx: ControllerContext,
  namespace: string,
  name: string,
): Promise<ReconcileResult> {
  const raw = ctx.cache.claims.get(name, namespace);
  if (!raw) return {};
  const lease = heldLease(ctx, namespace, name);
  const named = ctx.cache.pods.get(tenantPodName(name), namespace);
  const pod = ownedTenantPod(ctx, { namespace, name, uid: raw.metadata?.uid });
  const nameTaken = named !== undefined && pod === undefined;

  const poolName = (raw.spec as { pool?: unknown } | undefined)?.pool;
  if (typeof poolName === "string" && !ctx.managesPool(poolName)) return {}; // another operator's pool
  const poolRaw = typeof poolName === "string" ? ctx.cache.pools.get(poolName) : undefined;
  const poolParsed = poolRaw ? parsedPool(poolRaw) : undefined;
  const pool = poolParsed?.ok ? poolParsed.value : undefined;
  if (raw.metadata?.deletionTimestamp)
    return release(ctx, raw, lease, pod, pool?.spec.revocation.plannedGraceSeconds);

  const parsed = parsedClaim(raw);
  if (!parsed.ok) {
    await writeStatus(
      ctx,
      raw as unknown as PoolClaim,
      { reason: REASON_INVALID_SPEC, message: parsed.message },
      {
        type: CONDITION_VALID,
        status: "False",
        reason: REASON_INVALID_SPEC,
        message: parsed.message,
      },
    );
    ctx.events.warning(raw, REASON_INVALID_SPEC, parsed.message);
    return {};
  }
  const claim = parsed.value;
  await addFinalizer(ctx.client, raw, finalizer);

  const verdict = admit(claim, pool);
  const phase = claim.status?.phase ?? "Pending";

  if (lease && pool && (phase === "Revoking" || phase === "Revoked" || phase === "Expired")) {
    // A revoker swaps the Lease before it writes the claim's status: a Lease still naming a revoked
    // claim is a cache that has not caught up yet.
    return { requeueAfterMs: 200 };
  }
  if (lease && pool && !verdict.admitted) {
    // Admission holds for as long as the claim runs, not only at the grant: a template, pool policy
    // or namespace list changed under a Bound claim takes its slot back, with the planned notice,
    // before any pod is created from what no longer passes.
    return revokeInadmissible(ctx, claim, pool, lease, verdict);
  }
  if (lease && pool) {
    const slot = toSlotView(lease)!;
    const view = toClaimView(claim);
    const boundAt =
      claim.status?.leaseName === slot.leaseName && claim.status.boundAt
        ? claim.status.boundAt
        : new Date(ctx.now()).toISOString();
    const expiresAt = claimExpiresAt({ ...view, boundAt: new Date(boundAt).getTime() });
    if (expiresAt !== undefined && expiresAt <= ctx.now()) {
      // The ledger first: the slot is free before the tenant is told.
      const swapped = await swapHolder(
        ctx.client,
        lease,
        { kind: "free" },
        { [annotations.revokedClaim]: `${namespace}/${name}`, [annotations.revocationReason]: "Expired" },
      );
      if (!swapped.ok) return { requeueAfterMs: 100 };
      ctx.metrics?.revoked(claim.spec.pool, "Expired");
      await noticeRevocation(ctx, {
        claim: { namespace, name },
        reason: "Expired",
        message: `the claim reached its maximum duration of ${claim.spec.maxDurationSeconds}s`,
        graceSeconds: pool.spec.revocation.plannedGraceSeconds,
        by: "pool",
        phase: "Expired",
      });
      return {};
    }
    const podReady = await runTenantPod(ctx, claim, pool, slot, pod, nameTaken);
    const problem = PROBLEM_REASONS.includes(podReady.reason);
    if (problem && claim.status?.conditions?.find((c) => c.type === "Ready")?.reason !== podReady.reason)
      ctx.events.warning(claim, podReady.reason, podReady.message);
    await writeStatus(
      ctx,
      claim,
      {
        phase: "Bound",
        leaseName: slot.leaseName,
        slot: String(slot.index),
        zone: slot.zone,
        node: slot.node,
        pod: tenantPodName(name),
        boundAt,
        expiresAt: expiresAt === undefined ? undefined : new Date(expiresAt).toISOString(),
        revokedAt: undefined,
        revokeDeadline: undefined,
        revokedBy: undefined,
        reason: "SlotHeld",
        message: `holds slot ${slot.leaseName} on node ${slot.node} in ${slot.zone}`,
      },
      { type: CONDITION_VALID, status: "True", reason: "Admitted", message: "the claim passed admission" },
      podReady,
    );
    if (phase !== "Bound")
      ctx.events.normal(claim, "Bound", `granted slot ${slot.leaseName} on ${slot.node} (${slot.zone})`);
    const retry = problem ? TENANT_POD_RETRY_MS : undefined;
    const expiry = expiresAt !== undefined ? Math.max(10, expiresAt - ctx.now()) : undefined;
    const after = Math.min(retry ?? Infinity, expiry ?? Infinity);
    return after === Infinity ? {} : { requeueAfterMs: after };
  }

  // No slot held. A pod still running here outlived its lease: stop it, as revocation would.
  if (phase === "Bound" || phase === "Revoking" || phase === "Expired" || pod) {
    if (pod && !pod.metadata?.deletionTimestamp && !isTerminated(pod)) {
      await noticeRevocation(ctx, {
        claim: { namespace, name },
        reason: revocationReason(ctx, claim),
        message: "the claim no longer holds its slot",
        graceSeconds: pool?.spec.revocation.plannedGraceSeconds ?? 30,
        by: "pool",
        phase: phase === "Expired" ? "Expired" : "Revoking",
      });
      return { requeueAfterMs: POD_GONE_FALLBACK_MS };
    }
    if (pod) return { requeueAfterMs: POD_GONE_FALLBACK_MS }; // terminating: the phase moves on once it is gone
    if (phase === "Expired") return {};
    if (phase === "Bound" || phase === "Revoking") {
      const next = claim.spec.requeueOnRevoke ? "Pending" : "Revoked";
      await writeStatus(ctx, claim, {
        phase: next,
        reason: revocationReason(ctx, claim),
        message:
          next === "Pending"
            ? "revoked; waiting for another slot (requeueOnRevoke)"
            : (claim.status?.message ?? "revoked"),
        leaseName: undefined,
        pod: undefined,
      });
      ctx.events.normal(
        claim,
        next === "Pending" ? "Requeued" : "Revoked",
        next === "Pending" ? "the claim waits for another slot" : "the claim lost its slot",
      );
      return {};
    }
  }
  if (phase === "Revoked") return {};

  if (!verdict.admitted) {
    if (claim.status?.reason !== verdict.reason) ctx.events.warning(claim, verdict.reason, verdict.message);
    await writeStatus(
      ctx,
      claim,
      { phase: "Pending", reason: verdict.reason, message: verdict.message },
      { type: CONDITION_VALID, status: "False", reason: verdict.reason, message: verdict.message },
      {
        type: "Ready",
        status: "False",
        reason: verdict.reason,
        message: "the claim is refused and gets no slot",
      },
    );
    return {};
  }
  await writeStatus(
    ctx,
    claim,
    {
      phase: "Pending",
      reason: "WaitingForSlot",
      message: `waiting for a free slot of pool ${claim.spec.pool}`,
    },
    { type: CONDITION_VALID, status: "True", reason: "Admitted", message: "the claim passed admission" },
    { type: "Ready", status: "False", reason: "WaitingForSlot", message: "no slot granted yet" },
  );
  return {};
}

/**
 * Why a claim lost its slot: what the revoker wrote on the slot's Lease, else what the claim's status
 * already says, else a generic reason. Whoever tells the tenant first, the words are the same.
 */
function revocationReason(ctx: ControllerContext, claim: PoolClaim): string {
  const ref = `${claim.metadata.namespace}/${claim.metadata.name}`;
  const lease = slotLeasesRevokedFrom(ctx, ref)[0];
  const onLease = lease?.metadata?.annotations?.[annotations.revocationReason];
  if (onLease) return onLease;
  const status = claim.status?.reason;
  return status && status !== "SlotHeld" && status !== "WaitingForSlot" ? status : "SlotRevoked";
}

/** The ledger first, then the tenant is told, as for any revocation (see revocation.ts). */
async function revokeInadmissible(
  ctx: ControllerContext,
  claim: PoolClaim,
  pool: ContingencyPool,
  lease: k8s.V1Lease,
  verdict: AdmissionDecision & { admitted: false },
): Promise<ReconcileResult> {
  const { namespace, name } = claim.metadata as { namespace: string; name: string };
  const swapped = await swapHolder(
    ctx.client,
    lease,
    { kind: "free" },
    { [annotations.revokedClaim]: `${namespace}/${name}`, [annotations.revocationReason]: verdict.reason },
  );
  if (!swapped.ok) return { requeueAfterMs: 100 };
  ctx.metrics?.revoked(claim.spec.pool, verdict.reason);
  await noticeRevocation(ctx, {
    claim: { namespace, name },
    reason: verdict.reason,
    message: `the claim no longer passes admission: ${verdict.message}`,
    graceSeconds: pool.spec.revocation.plannedGraceSeconds,
    by: "pool",
    phase: "Revoking",
  });
  return {};
}

/** Ready reasons that say the tenant pod cannot run as things are: told by an Event, retried slowly. */
const PROBLEM_REASONS: readonly string[] = ["TenantPodRefused", "TenantPodNameTaken"];

/**
 * The tenant pod runs on the slot's node once the placeholder has made room. Returns the claim's
 * Ready condition as the pod stands: starting, ready, finished, or why it cannot run.
 */
async function runTenantPod(
  ctx: ControllerContext,
  claim: PoolClaim,
  pool: ContingencyPool,
  slot: SlotView,
  pod: k8s.V1Pod | undefined,
  nameTaken: boolean,
): Promise<ConditionInput> {
  const namespace = claim.metadata.namespace!;
  const name = tenantPodName(claim.metadata.name!);
  const starting: ConditionInput = {
    type: "Ready",
    status: "False",
    reason: "TenantPodStarting",
    message: "the tenant pod is starting",
  };
  if (nameTaken)
    return {
      type: "Ready",
      status: "False",
      reason: "TenantPodNameTaken",
      message: `pod ${name} exists and does not belong to this claim; the claim's pod runs once it is gone`,
    };
  if (pod && (pod.spec?.nodeName !== slot.node || pod.metadata?.labels?.[labels.slot] !== slot.leaseName)) {
    // A pod from an earlier slot: it must go before the new one starts.
    await stopTenantPod(
      ctx,
      { namespace, name: claim.metadata.name!, uid: claim.metadata.uid },
      "SlotChanged",
      0,
    );
    return starting;
  }
  if (pod) return podCondition(pod) ?? starting;
  try {
    await ctx.client.core.deleteNamespacedPod({
      name: placeholderName(slot.leaseName),
      namespace: ctx.namespace,
      gracePeriodSeconds: 0,
    });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  let created: k8s.V1Pod;
  try {
    created = await ctx.client.core.createNamespacedPod({ namespace, body: tenantPod(claim, pool, slot) });
  } catch (err) {
    if (isConflict(err)) return starting;
    if (isRefusal(err)) return refusedCondition(errorMessage(err));
    throw err;
  }
  if (!created.spec?.resources) {
    // An API server without pod-level resources drops the field silently; unbounded containers
    // could then use the whole node.
    await ctx.client.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 });
    return refusedCondition(
      "it dropped spec.resources, which bounds the pod to its slot (Kubernetes 1.34+ with the PodLevelResources feature is required)",
    );
  }
  return starting;
}

const refusedCondition = (message: string): ConditionInput => ({
  type: "Ready",
  status: "False",
  reason: "TenantPodRefused",
  message: `the API server refused the tenant pod: ${message}`,
});

/** Ready or finished, from the pod itself; undefined while it starts. */
function podCondition(pod: k8s.V1Pod): ConditionInput | undefined {
  const phase = pod.status?.phase;
  if (phase === "Succeeded" || phase === "Failed") {
    const why = [pod.status?.reason, pod.status?.message].filter(Boolean).join(": ");
    return {
      type: "Ready",
      status: "False",
      reason: phase === "Succeeded" ? "TenantPodSucceeded" : "TenantPodFailed",
      message: `the tenant pod ${phase === "Succeeded" ? "completed" : "failed"}${why ? ` (${why})` : ""}`,
    };
  }
  const ready =
    phase === "Running" && !!pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
  return ready
    ? {
        type: "Ready",
        status: "True",
        reason: "TenantPodReady",
        message: "the tenant pod runs on the claim's slot",
      }
    : undefined;
}

/**
 * A deleted claim stops its pod, gives its slot back once the pod is gone (compare-and-swap), then
 * lets go of the object. Giving up a slot is the tenant's own act, so unlike a revocation the pod
 * goes first: the claim holds the slot for as long as its pod runs on it.
 */
async function release(
  ctx: ControllerContext,
  claim: k8s.KubernetesObject,
  lease: k8s.V1Lease | undefined,
  pod: k8s.V1Pod | undefined,
  releaseGraceSeconds: number | undefined,
): Promise<ReconcileResult> {
  const namespace = claim.metadata!.namespace!;
  if (pod && !isTerminated(pod)) {
    if (!pod.metadata?.deletionTimestamp) {
      try {
        await ctx.client.core.deleteNamespacedPod({
          name: pod.metadata!.name!,
          namespace,
          gracePeriodSeconds: releaseGraceSeconds,
        });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return { requeueAfterMs: POD_GONE_FALLBACK_MS };
  }
  if (lease) {
    const swapped = await swapHolder(ctx.client, lease, { kind: "free" });
    if (!swapped.ok) return { requeueAfterMs: 100 };
  }
  try {
    await removeFinalizer(ctx.client, claim, finalizer);
  } catch (err) {
    if (isNotFound(err)) return {};
    if (err instanceof FinalizerConflictError) return { requeueAfterMs: 100 };
    throw err;
  }
  return {};
}

/** Merge-patches the status fields given (undefined clears one) and the conditions, skipping writes that change nothing. */
async function writeStatus(
  ctx: ControllerContext,
  claim: PoolClaim,
  fields: Partial<Record<keyof ClaimStatus, unknown>>,
  ...conditions: ConditionInput[]
): Promise<void> {
  const current = (claim.status ?? {}) as Record<string, unknown>;
  const now = new Date(ctx.now());
  let next = claim.status?.conditions ?? [];
  for (const c of conditions)
    next = setCondition(next, { ...c, observedGeneration: claim.metadata.generation }, now);
  const patch: Record<string, unknown> = { observedGeneration: claim.metadata.generation };
  for (const [k, v] of Object.entries(fields)) patch[k] = v === undefined ? null : v;
  if (conditions.length) patch.conditions = next;
  const changed = Object.entries(patch).some(([k, v]) => !sameJson(current[k] ?? null, v));
  if (!changed) return;
  try {
    // Under an optimistic lock: a status decided on a stale read (the revoker wrote meanwhile) fails
    // with 409 and is decided again, instead of overwriting what the revoker wrote.
    await ctx.client.patchCustomStatus(
      claimResource,
      claim.metadata.name!,
      claim.metadata.namespace,
      patch,
      claim.metadata.resourceVersion,
    );
  } catch (err) {
    if (isConflict(err)) throw new StaleRead();
    if (!isNotFound(err)) throw err;
  }
}

/** The caches were behind the API server; the reconcile is repeated shortly with fresher ones. */
class StaleRead extends Error {}
