// PoolClaim reconciler: derives the claim's status from the slot ledger, runs the tenant pod while
// (and only while) the claim holds its slot, releases the slot when the claim goes, and expires
// claims that reached their maximum duration. Grants are the pool controller's: it orders claims by bid.
import type * as k8s from "@kubernetes/client-node";
import {
  CONDITION_VALID,
  REASON_INVALID_SPEC,
  type ConditionInput,
  type ContingencyPool,
  type PoolClaim,
  claimResource,
} from "../api/index.ts";
import {
  nextClaimAction,
  ORPHAN_POD_MESSAGE,
  type ClaimAction,
  type ClaimObserved,
} from "../decisions/claim-steps.ts";
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
import { CLEAR_REVOCATION, revocationNote, swapHolder } from "./slot-ledger.ts";
import { StaleRead, writeStatus } from "./claim-status.ts";
import { countUsage, nextUsage, usagePatch } from "./usage.ts";
import { reconcileWorkload } from "./workload.ts";
import { admit, isTerminated, toClaimView, toSlotView } from "./views.ts";

/**
 * Waiting for a tenant pod to go: its deletion wakes the claim (tenant pods are watched), so this
 * is only a safety net. Polling faster cost thousands of reconciles a second when many claims were
 * released at once.
 */
export const POD_GONE_FALLBACK_MS = 5_000;

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
  const poolName = (raw.spec as { pool?: unknown } | undefined)?.pool;
  if (typeof poolName === "string" && !ctx.managesPool(poolName)) return {}; // another operator's pool
  const poolRaw = typeof poolName === "string" ? ctx.cache.pools.get(poolName) : undefined;
  const poolParsed = poolRaw ? parsedPool(poolRaw) : undefined;
  const pool = poolParsed?.ok ? poolParsed.value : undefined;

  const deleting = !!raw.metadata?.deletionTimestamp;
  const parsedAny = parsedClaim(raw);
  // Workload mode (no template): the tenant's own pods get the claim's slots.
  if (parsedAny.ok && parsedAny.value.spec.template === undefined) {
    if (!deleting) await addFinalizer(ctx.client, raw, finalizer);
    return reconcileWorkload(ctx, raw, parsedAny.value, pool, deleting);
  }
  let claim: PoolClaim | undefined;
  if (!deleting) {
    const parsed = parsedAny;
    if (!parsed.ok) {
      await writeStatus(
        ctx,
        raw as unknown as PoolClaim,
        { reason: REASON_INVALID_SPEC, message: parsed.message },
        { type: CONDITION_VALID, status: "False", reason: REASON_INVALID_SPEC, message: parsed.message },
      );
      ctx.events.warning(raw, REASON_INVALID_SPEC, parsed.message);
      return {};
    }
    claim = parsed.value;
    await addFinalizer(ctx.client, raw, finalizer);
  }
  const observed = observeClaim(ctx, raw, claim, pool);
  const { decision } = observed;
  // The usage record follows the ledger; it goes with the status this pass writes.
  const wanting = decision.phase === "Pending" && decision.verdict.admitted && !decision.held;
  const usage = claim ? nextUsage(ctx, claim, wanting) : undefined;
  const action = nextClaimAction(decision);
  const state = { raw, claim, pool, usage, ...observed };
  // Actions that write no status of their own still bring the usage record up to the ledger (a
  // Completed or Revoked claim closes its last hold this way).
  if (usage?.changed && !STATUS_WRITING_ACTIONS.includes(action.kind)) await recordStatus(ctx, state, {});
  return applyClaimAction(ctx, state, action);
}

interface ClaimObservation {
  decision: ClaimObserved;
  lease: k8s.V1Lease | undefined;
  pod: k8s.V1Pod | undefined;
}

/** The snapshot nextClaimAction decides on, read from the caches. */
function observeClaim(
  ctx: ControllerContext,
  raw: k8s.KubernetesObject,
  claim: PoolClaim | undefined,
  pool: ContingencyPool | undefined,
): ClaimObservation {
  const { namespace, name, uid } = raw.metadata as { namespace: string; name: string; uid?: string };
  const lease = heldLease(ctx, namespace, name);
  const held = lease ? toSlotView(lease) : undefined;
  const pod = ownedTenantPod(ctx, { namespace, name, uid });
  const named = ctx.cache.pods.get(tenantPodName(name), namespace);
  const now = ctx.now();
  const boundAt =
    held && claim?.status?.leaseName === held.leaseName && claim.status.boundAt
      ? new Date(claim.status.boundAt).getTime()
      : now;
  const expiresAt = claim && held ? claimExpiresAt({ ...toClaimView(claim), boundAt }) : undefined;
  return {
    lease,
    pod,
    decision: {
      now,
      deleting: !!raw.metadata?.deletionTimestamp,
      phase: claim?.status?.phase ?? "Pending",
      plannedGraceSeconds: pool?.spec.revocation.plannedGraceSeconds,
      verdict: claim ? admit(claim, pool) : { admitted: true },
      held,
      boundAt,
      expiresAt,
      maxDurationSeconds: claim?.spec.maxDurationSeconds,
      requeueOnRevoke: claim?.spec.requeueOnRevoke ?? false,
      pod: pod && {
        terminating: !!pod.metadata?.deletionTimestamp,
        finished: isTerminated(pod),
        succeeded: pod.status?.phase === "Succeeded",
        onHeldSlot:
          !!held &&
          pod.spec?.nodeName === held.node &&
          pod.metadata?.labels?.[labels.slot] === held.leaseName,
      },
      podNameTaken: named !== undefined && pod === undefined,
      revocationReason: claim ? revocationReason(ctx, claim) : "SlotRevoked",
      statusMessage: claim?.status?.message,
    },
  };
}

interface ClaimState extends ClaimObservation {
  raw: k8s.KubernetesObject;
  claim: PoolClaim | undefined;
  pool: ContingencyPool | undefined;
  usage: ReturnType<typeof nextUsage> | undefined;
}

/** A released claim lets go of its object: the slot-release finalizer comes off. */
export async function letGoOfClaim(
  ctx: ControllerContext,
  raw: k8s.KubernetesObject,
): Promise<ReconcileResult> {
  try {
    await removeFinalizer(ctx.client, raw, finalizer);
  } catch (err) {
    if (isNotFound(err)) return {};
    if (err instanceof FinalizerConflictError) return { requeueAfterMs: 100 };
    throw err;
  }
  return {};
}

/** Actions whose apply writes the claim's status (with its usage record). */
const STATUS_WRITING_ACTIONS: readonly ClaimAction["kind"][] = [
  "complete",
  "runPod",
  "recordRevoked",
  "refuse",
  "waitForSlot",
];

/** The claim's status with its usage record; the record is counted in the metrics once written. */
async function recordStatus(
  ctx: ControllerContext,
  state: ClaimState,
  fields: Parameters<typeof writeStatus>[2],
  ...conditions: ConditionInput[]
): Promise<void> {
  const claim = state.claim!;
  const usage = state.usage;
  await writeStatus(
    ctx,
    claim,
    usage ? { ...fields, usage: usagePatch(usage.status, claim.status?.usage) } : fields,
    ...conditions,
  );
  if (usage?.changed) countUsage(ctx, claim, usage.previous, usage.next);
}

async function applyClaimAction(
  ctx: ControllerContext,
  state: ClaimState,
  action: ClaimAction,
): Promise<ReconcileResult> {
  const { raw, lease, pod } = state;
  const { namespace, name } = raw.metadata as { namespace: string; name: string };
  switch (action.kind) {
    case "stopPodForRelease":
      if (pod && !pod.metadata?.deletionTimestamp) {
        try {
          await ctx.client.core.deleteNamespacedPod({
            name: pod.metadata!.name!,
            namespace,
            gracePeriodSeconds: action.graceSeconds,
          });
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
      return { requeueAfterMs: POD_GONE_FALLBACK_MS };
    case "freeSlot": {
      const swapped = await swapHolder(ctx.client, lease!, { kind: "free" }, CLEAR_REVOCATION);
      return swapped.ok ? {} : { requeueAfterMs: 100 };
    }
    case "removeFinalizer":
      return letGoOfClaim(ctx, raw);
    case "waitForCache":
      return { requeueAfterMs: 200 };
    case "revoke": {
      const claim = state.claim!;
      // The ledger first: the slot is free before the tenant is told.
      const swapped = await swapHolder(
        ctx.client,
        lease!,
        { kind: "free" },
        revocationNote({ namespace, name }, action.reason),
      );
      if (!swapped.ok) return { requeueAfterMs: 100 };
      ctx.metrics?.revoked(claim.spec.pool, action.reason);
      await noticeRevocation(ctx, {
        claim: { namespace, name },
        reason: action.reason,
        message: action.message,
        graceSeconds: action.graceSeconds,
        by: "pool",
        phase: action.phase,
      });
      return {};
    }
    case "runPod":
      return runOnSlot(ctx, state, action);
    case "complete": {
      // The pod is done with the slot: it goes back to the pool at once, and says so.
      const claim = state.claim!;
      const swapped = await swapHolder(ctx.client, lease!, { kind: "free" }, CLEAR_REVOCATION);
      if (!swapped.ok) return { requeueAfterMs: 100 };
      const reason = action.succeeded ? "TenantPodSucceeded" : "TenantPodFailed";
      const message = `the tenant pod ${action.succeeded ? "completed" : "failed"}; slot ${action.slot.leaseName} went back to the pool`;
      await recordStatus(
        ctx,
        state,
        { phase: "Completed", reason, message, leaseName: undefined },
        { type: "Ready", status: "False", reason, message },
      );
      ctx.events.normal(claim, "Completed", message);
      return {};
    }
    case "stopOrphanPod":
      await noticeRevocation(ctx, {
        claim: { namespace, name },
        reason: action.reason,
        message: ORPHAN_POD_MESSAGE,
        graceSeconds: action.graceSeconds,
        by: "pool",
        phase: action.phase,
      });
      return { requeueAfterMs: POD_GONE_FALLBACK_MS };
    case "waitForPodGone":
      return { requeueAfterMs: POD_GONE_FALLBACK_MS };
    case "recordRevoked": {
      const claim = state.claim!;
      await recordStatus(ctx, state, {
        phase: action.next,
        reason: action.reason,
        message: action.message,
        leaseName: undefined,
        pod: undefined,
      });
      ctx.events.normal(
        claim,
        action.next === "Pending" ? "Requeued" : "Revoked",
        action.next === "Pending" ? "the claim waits for another slot" : "the claim lost its slot",
      );
      return {};
    }
    case "refuse": {
      const claim = state.claim!;
      if (claim.status?.reason !== action.reason) ctx.events.warning(claim, action.reason, action.message);
      await recordStatus(
        ctx,
        state,
        { phase: "Pending", reason: action.reason, message: action.message },
        { type: CONDITION_VALID, status: "False", reason: action.reason, message: action.message },
        {
          type: "Ready",
          status: "False",
          reason: action.reason,
          message: "the claim is refused and gets no slot",
        },
      );
      return {};
    }
    case "waitForSlot": {
      const claim = state.claim!;
      await recordStatus(
        ctx,
        state,
        {
          phase: "Pending",
          reason: "WaitingForSlot",
          message: `waiting for a free slot of pool ${claim.spec.pool}`,
        },
        ADMITTED,
        { type: "Ready", status: "False", reason: "WaitingForSlot", message: "no slot granted yet" },
      );
      return {};
    }
    case "none":
      return {};
  }
}

export const ADMITTED: ConditionInput = {
  type: CONDITION_VALID,
  status: "True",
  reason: "Admitted",
  message: "the claim passed admission",
};

/** The claim holds its slot: its pod runs there, and the status says Bound and how the pod stands. */
async function runOnSlot(
  ctx: ControllerContext,
  state: ClaimState,
  action: Extract<ClaimAction, { kind: "runPod" }>,
): Promise<ReconcileResult> {
  const claim = state.claim!;
  const { slot, expiresAt } = action;
  const name = claim.metadata.name!;
  const podReady = await runTenantPod(ctx, claim, state.pool!, slot, state.pod, state.decision.podNameTaken);
  const problem = PROBLEM_REASONS.includes(podReady.reason);
  if (problem && claim.status?.conditions?.find((c) => c.type === "Ready")?.reason !== podReady.reason)
    ctx.events.warning(claim, podReady.reason, podReady.message);
  await recordStatus(
    ctx,
    state,
    {
      phase: "Bound",
      leaseName: slot.leaseName,
      slot: String(slot.index),
      zone: slot.zone,
      node: slot.node,
      pod: tenantPodName(name),
      boundAt: new Date(action.boundAt).toISOString(),
      expiresAt: expiresAt === undefined ? undefined : new Date(expiresAt).toISOString(),
      revokedAt: undefined,
      revokeDeadline: undefined,
      revokedBy: undefined,
      reason: "SlotHeld",
      message: `holds slot ${slot.leaseName} on node ${slot.node} in ${slot.zone}`,
    },
    ADMITTED,
    podReady,
  );
  if (claim.status?.phase !== "Bound")
    ctx.events.normal(claim, "Bound", `granted slot ${slot.leaseName} on ${slot.node} (${slot.zone})`);
  const retry = problem ? TENANT_POD_RETRY_MS : undefined;
  const expiry = expiresAt !== undefined ? Math.max(10, expiresAt - ctx.now()) : undefined;
  const after = Math.min(retry ?? Infinity, expiry ?? Infinity);
  return after === Infinity ? {} : { requeueAfterMs: after };
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
