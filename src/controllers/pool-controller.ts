// ContingencyPool reconciler: keeps the declared slots on nodes that have room, holds free slots'
// capacity with placeholder pods, grants free slots to Pending claims by bid, and reports counts.
// It observes, asks the decisions what to do, applies, and records; it keeps no state of its own.
import type * as k8s from "@kubernetes/client-node";
import {
  CONDITION_VALID,
  REASON_INVALID_SPEC,
  poolZoneSummary,
  type ConditionInput,
  type ContingencyPool,
  poolResource,
  type FailoverCapacityStatus,
} from "../api/index.ts";
import { estimateFailoverCapacity } from "../decisions/failover-capacity.ts";
import {
  countSlots,
  nextPoolLedgerActions,
  planPlaceholders,
  planPoolGrants,
  type PlaceholderPlan,
  type PlaceholderView,
  type PoolLedgerAction,
  type PoolSlotObservation,
  type PoolSlotCounts,
  type TenantPodOnSlot,
} from "../decisions/pool-steps.ts";
import type { SlotView } from "../decisions/types.ts";
import { isConflict, isNotFound } from "../kube/errors.ts";
import type { ControllerContext, ReconcileResult } from "./context.ts";
import { writeStatus as writeObjectStatus } from "./status-writer.ts";
import { annotations, labels, placeholderAnnotations, roles } from "./labels.ts";
import { placeholderName, placeholderPod, placeholderPriorityClassObject, tenantPodClaim } from "./pods.ts";
import { noticeRevocation } from "./revocation.ts";
import { workloadPlan } from "./workload.ts";
import type { ClaimView } from "../decisions/types.ts";
import {
  observeNodes,
  parsedClaim,
  parsedPool,
  podsOfPool,
  poolClaims,
  poolServiceHeads,
  slotLeasesOfPool,
} from "./indexes.ts";
import { createSlotLease, deleteSlotLease, revocationNote, slotLease, swapHolder } from "./slot-ledger.ts";
import { isTerminated, toPoolView, toSlotView } from "./views.ts";

function poolSlots(ctx: ControllerContext, pool: string): { slot: SlotView; lease: k8s.V1Lease }[] {
  return slotLeasesOfPool(ctx, pool).flatMap((lease) => {
    const slot = toSlotView(lease);
    return slot ? [{ slot, lease }] : [];
  });
}

const GRANTS_UNSEEN_REQUEUE_MS = 20;

export async function reconcilePool(ctx: ControllerContext, name: string): Promise<ReconcileResult> {
  const raw = ctx.cache.pools.get(name);
  if (!raw) {
    // Slot Leases and placeholders are owned by the pool: the garbage collector removes them.
    await ctx.metrics?.forgetPool(name);
    return {};
  }
  if (!ctx.managesPool(name)) return {};
  const parsed = parsedPool(raw);
  if (!parsed.ok) {
    await writeStatus(
      ctx,
      raw as unknown as ContingencyPool,
      {},
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
  const pool = parsed.value;
  const view = toPoolView(pool);
  const nodes = observeNodes(ctx);
  const claims = poolClaims(ctx, pool, name).map((view) => withWorkloadDemand(ctx, view, pool));
  let observed = poolSlots(ctx, name);
  const leaseOf = new Map(observed.map((o) => [o.slot.leaseName, o.lease]));

  await ensurePriorityClass(ctx);

  // Ledger first: create, move and remove slot Leases; pods follow the ledger below.
  const ledgerObserved = {
    pool: view,
    slots: observed.map(slotObservation),
    nodes,
    claims,
    tenantPods: tenantPodsOnSlots(ctx, name),
  };
  const ledger = nextPoolLedgerActions({
    ...ledgerObserved,
    usageHolds: usageHolds(ctx, name),
    existingClaims: new Set(
      observed.flatMap(({ slot }) =>
        slot.holder.kind === "claim" && ctx.cache.claims.get(slot.holder.name, slot.holder.namespace)
          ? [`${slot.holder.namespace}/${slot.holder.name}`]
          : [],
      ),
    ),
  });
  for (const action of ledger.actions) await applyLedgerAction(ctx, pool, action, leaseOf);
  if (ledger.actions.length > 0) return { requeueAfterMs: 50 }; // act on the new ledger once the caches have it

  // Grants: a compare-and-swap per slot; a lost race is decided again on the next pass. Only on a
  // cache that shows this pool's earlier grants: a claim granted a moment ago still looks Pending
  // until then, and would get a second slot.
  if (
    !ctx.writes.grants.met(
      name,
      (lease) => ctx.cache.slotLeases.get(lease, ctx.namespace)?.metadata?.resourceVersion,
      ctx.now(),
    )
  )
    return { requeueAfterMs: GRANTS_UNSEEN_REQUEUE_MS };
  const grants = planPoolGrants(ledgerObserved, ledger.withdrawn);
  let granted = 0;
  for (const grant of grants.grants) {
    if (grant.adopted) continue;
    const lease = leaseOf.get(grant.slot.leaseName)!;
    const result = await swapHolder(ctx.client, lease, { kind: "claim", ...grant.claim });
    if (result.ok) {
      ctx.writes.grants.expect(name, grant.slot.leaseName, lease.metadata!.resourceVersion!, ctx.now());
      granted++;
      ctx.metrics?.granted(name);
      ctx.log.info({ pool: name, slot: grant.slot.leaseName, claim: grant.claim }, "slot granted");
    }
  }
  if (granted > 0) observed = poolSlots(ctx, name);

  const slots = observed.map((o) => o.slot);
  const placeholders = observePlaceholders(ctx, slots);
  await applyPlaceholders(ctx, pool, observed, planPlaceholders(slots, placeholders));

  const counts = countSlots(
    pool.spec.zones.map((z) => z.name),
    slots,
    observePlaceholders(ctx, slots),
  );
  for (const z of counts.zones)
    for (const state of ["free", "leased", "reserved", "pending"] as const)
      ctx.metrics?.setSlots(name, z.name, state, z[state]);
  const shortfall = ledger.shortfall.map((s) => `${s.zone}: ${s.missing} (${s.reason})`).join(", ");
  const failoverCapacity = estimateFailoverCapacity({
    slots,
    nodes,
    claims,
    services: poolServiceHeads(ctx, pool),
  });
  await writeStatus(
    ctx,
    pool,
    { ...counts, zoneSummary: poolZoneSummary(counts.zones), failoverCapacity },
    {
      type: CONDITION_VALID,
      status: "True",
      reason: "SpecValid",
      message: "the spec passed the operator's checks",
    },
    shortfall || counts.pending > 0
      ? {
          type: "Ready",
          status: "False",
          reason: shortfall ? "InsufficientCapacity" : "PlaceholdersPending",
          message: shortfall
            ? `slots missing: ${shortfall}`
            : `${counts.pending} slots not yet holding capacity`,
        }
      : {
          type: "Ready",
          status: "True",
          reason: "SlotsHeld",
          message: "every slot has a Lease and its capacity is held",
        },
  );
  return granted > 0 || counts.pending > 0 ? { requeueAfterMs: 1000 } : {};
}

async function applyLedgerAction(
  ctx: ControllerContext,
  pool: ContingencyPool,
  action: PoolLedgerAction,
  leaseOf: ReadonlyMap<string, k8s.V1Lease>,
): Promise<void> {
  const name = pool.metadata.name!;
  switch (action.kind) {
    case "createSlot": {
      const lease = slotLease(name, ctx.namespace, action.creation);
      lease.metadata!.ownerReferences = [ownerRef(pool)];
      if (await createSlotLease(ctx.client, lease))
        ctx.log.info(
          { pool: name, slot: action.creation.leaseName, node: action.creation.node },
          "slot created",
        );
      return;
    }
    case "moveSlot": {
      const { slot, toNode } = action.move;
      const result = await swapHolder(ctx.client, leaseOf.get(slot.leaseName)!, { kind: "free" }, {}, toNode);
      if (result.ok) await deletePod(ctx, placeholderName(slot.leaseName), ctx.namespace, 0);
      return;
    }
    case "revokeSlot": {
      // The ledger first: the slot leaves the claim (and says why) before the tenant hears of it.
      // Now free, the slot goes on a later pass: shrinking removes free slots first.
      const { claim, graceSeconds, slot } = action;
      const swapped = await swapHolder(
        ctx.client,
        leaseOf.get(slot.leaseName)!,
        { kind: "free" },
        revocationNote(claim, "PoolShrunk"),
      );
      if (!swapped.ok) return; // changed meanwhile: decide again next time
      ctx.metrics?.revoked(name, "PoolShrunk");
      await noticeRevocation(ctx, {
        claim,
        reason: "PoolShrunk",
        message: `pool ${name} shrank and took back slot ${slot.leaseName}`,
        graceSeconds,
        by: "pool",
        phase: "Revoking",
      });
      return;
    }
    case "removeSlot":
      if (await deleteSlotLease(ctx.client, leaseOf.get(action.slot.leaseName)!))
        await deletePod(ctx, placeholderName(action.slot.leaseName), ctx.namespace, 0);
      return;
    case "releaseOrphan":
      await swapHolder(ctx.client, leaseOf.get(action.slot.leaseName)!, { kind: "free" });
      return;
  }
}

/** The slots the pool's claims' usage records still count as held. */
function usageHolds(ctx: ControllerContext, pool: string): Set<string> {
  const out = new Set<string>();
  for (const raw of ctx.cache.claims.list()) {
    const parsed = parsedClaim(raw);
    if (!parsed.ok || parsed.value.spec.pool !== pool) continue;
    for (const hold of parsed.value.status?.usage?.held ?? []) out.add(hold.leaseName);
  }
  return out;
}

/** A workload claim's view carries how many more slots its waiting pods ask for now. */
function withWorkloadDemand(ctx: ControllerContext, view: ClaimView, pool: ContingencyPool): ClaimView {
  const raw = ctx.cache.claims.get(view.name, view.namespace);
  const parsed = raw ? parsedClaim(raw) : undefined;
  if (!parsed?.ok || parsed.value.spec.template !== undefined) return view;
  const { plan } = workloadPlan(ctx, parsed.value, pool);
  return { ...view, slotsWanted: plan.slotsWanted, gang: parsed.value.spec.gang };
}

function slotObservation({ slot, lease }: { slot: SlotView; lease: k8s.V1Lease }): PoolSlotObservation {
  return { slot, revokedClaim: lease.metadata?.annotations?.[annotations.revokedClaim] };
}

/**
 * The tenant pods on a pool's slots. Labels alone prove nothing (anyone who may create a pod can
 * copy them), so an inline pod counts only under its claim's controller reference; a tenant's own
 * pod (workload mode) only for the claim its label names in its own namespace.
 */
function tenantPodsOnSlots(ctx: ControllerContext, pool: string): TenantPodOnSlot[] {
  return podsOfPool(ctx, pool).flatMap((pod) => {
    const l = pod.metadata?.labels ?? {};
    const leaseName = l[labels.slot];
    const claim =
      tenantPodClaim(pod) ?? (l[labels.claim] ? `${pod.metadata?.namespace}/${l[labels.claim]}` : undefined);
    if (l[labels.role] !== roles.tenant || !leaseName || !claim) return [];
    return [{ leaseName, claim, finished: isTerminated(pod) }];
  });
}

function observePlaceholders(
  ctx: ControllerContext,
  slots: readonly SlotView[],
): Map<string, PlaceholderView> {
  const out = new Map<string, PlaceholderView>();
  for (const slot of slots) {
    const pod = ctx.cache.pods.get(placeholderName(slot.leaseName), ctx.namespace);
    if (pod)
      out.set(slot.leaseName, {
        node: pod.spec?.nodeName,
        phase: pod.status?.phase,
        terminating: !!pod.metadata?.deletionTimestamp,
        annotated: Object.entries(placeholderAnnotations).every(
          ([key, value]) => pod.metadata?.annotations?.[key] === value,
        ),
      });
  }
  return out;
}

function ownerRef(pool: ContingencyPool): k8s.V1OwnerReference {
  return {
    apiVersion: pool.apiVersion,
    kind: pool.kind,
    name: pool.metadata.name!,
    uid: pool.metadata.uid!,
    controller: true,
  };
}

async function ensurePriorityClass(ctx: ControllerContext): Promise<void> {
  if (ctx.writes.priorityClassEnsured) return;
  try {
    await ctx.client.scheduling.createPriorityClass({ body: placeholderPriorityClassObject });
  } catch (err) {
    if (!isConflict(err)) throw err;
  }
  ctx.writes.priorityClassEnsured = true;
}

async function deletePod(
  ctx: ControllerContext,
  name: string,
  namespace: string,
  graceSeconds: number,
): Promise<void> {
  if (!ctx.cache.pods.get(name, namespace)) return;
  try {
    await ctx.client.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: graceSeconds });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

/** A free slot has exactly one placeholder, on its node, told what autoscalers leave alone; a held slot has none. */
async function applyPlaceholders(
  ctx: ControllerContext,
  pool: ContingencyPool,
  observed: readonly { slot: SlotView; lease: k8s.V1Lease }[],
  plan: PlaceholderPlan,
): Promise<void> {
  for (const slot of plan.remove) await deletePod(ctx, placeholderName(slot.leaseName), ctx.namespace, 0);
  for (const slot of plan.annotate) {
    // A placeholder made by an earlier version: told what the autoscalers must leave alone.
    try {
      await ctx.client.mergePatch(
        {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: placeholderName(slot.leaseName), namespace: ctx.namespace },
        },
        { metadata: { annotations: placeholderAnnotations } },
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  const leaseOf = new Map(observed.map((o) => [o.slot.leaseName, o.lease]));
  for (const slot of plan.create) {
    const lease = leaseOf.get(slot.leaseName)!;
    const pod = placeholderPod(pool, slot, ctx.namespace, ctx.placeholderImage);
    pod.metadata!.ownerReferences = [
      {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        name: lease.metadata!.name!,
        uid: lease.metadata!.uid!,
        controller: true,
      },
    ];
    try {
      await ctx.client.core.createNamespacedPod({ namespace: ctx.namespace, body: pod });
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
  }
}

/** The pool's counts and conditions, written when they change (one writer: the pool controller). */
async function writeStatus(
  ctx: ControllerContext,
  pool: ContingencyPool,
  counts: Partial<PoolSlotCounts> & { zoneSummary?: string; failoverCapacity?: FailoverCapacityStatus },
  ...conditions: ConditionInput[]
): Promise<void> {
  await writeObjectStatus(ctx, poolResource, pool, counts, conditions, { lock: false });
}
