// ContingencyPool reconciler: keeps the declared slots on nodes that have room, holds free slots'
// capacity with placeholder pods, grants free slots to Pending claims by bid, and reports counts.
// It observes, asks the decisions what to do, applies, and records; it keeps no state of its own.
import type * as k8s from "@kubernetes/client-node";
import {
  CONDITION_VALID,
  REASON_INVALID_SPEC,
  poolZoneSummary,
  setCondition,
  type ConditionInput,
  type ContingencyPool,
  poolResource,
  type FailoverCapacityStatus,
} from "../api/index.ts";
import { estimateFailoverCapacity } from "../decisions/failover-capacity.ts";
import { planGrants } from "../decisions/grants.ts";
import { planSlotPlacement } from "../decisions/slot-placement.ts";
import type { SlotView } from "../decisions/types.ts";
import { isConflict, isNotFound } from "../kube/errors.ts";
import type { ControllerContext, ReconcileResult } from "./context.ts";
import { annotations, labels, roles } from "./labels.ts";
import { placeholderName, placeholderPod, placeholderPriorityClassObject, tenantPodClaim } from "./pods.ts";
import { noticeRevocation } from "./revocation.ts";
import {
  observeNodes,
  parsedPool,
  podsOfPool,
  poolClaims,
  poolServiceHeads,
  slotLeasesOfPool,
} from "./indexes.ts";
import { sameJson } from "./json-equal.ts";
import { createSlotLease, deleteSlotLease, slotLease, swapHolder } from "./slot-ledger.ts";
import { isTerminated, toPoolView, toSlotView } from "./views.ts";

export function poolSlots(ctx: ControllerContext, pool: string): { slot: SlotView; lease: k8s.V1Lease }[] {
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
  const claims = poolClaims(ctx, pool, name);
  let observed = poolSlots(ctx, name);
  const leaseOf = new Map(observed.map((o) => [o.slot.leaseName, o.lease]));

  await ensurePriorityClass(ctx);

  // Ledger first: create, move and remove slot Leases; pods follow the ledger below.
  const plan = planSlotPlacement({ pool: view, slots: observed.map((o) => o.slot), nodes, claims });
  for (const creation of plan.create) {
    const lease = slotLease(name, ctx.namespace, creation);
    lease.metadata!.ownerReferences = [ownerRef(pool)];
    if (await createSlotLease(ctx.client, lease))
      ctx.log.info({ pool: name, slot: creation.leaseName, node: creation.node }, "slot created");
  }
  for (const move of plan.move) {
    const lease = leaseOf.get(move.slot.leaseName)!;
    const result = await swapHolder(ctx.client, lease, { kind: "free" }, {}, move.toNode);
    if (result.ok) await deletePod(ctx, placeholderName(move.slot.leaseName), ctx.namespace, 0);
  }
  for (const removal of plan.remove) {
    const lease = leaseOf.get(removal.slot.leaseName)!;
    if (removal.revoke) {
      // The ledger first: the slot leaves the claim (and says why) before the tenant hears of it.
      // Now free, the slot goes on a later pass: shrinking removes free slots first.
      const { claim, graceSeconds } = removal.revoke;
      const swapped = await swapHolder(
        ctx.client,
        lease,
        { kind: "free" },
        {
          [annotations.revokedClaim]: `${claim.namespace}/${claim.name}`,
          [annotations.revocationReason]: "PoolShrunk",
        },
      );
      if (!swapped.ok) continue; // changed meanwhile: decide again next time
      ctx.metrics?.revoked(name, "PoolShrunk");
      await noticeRevocation(ctx, {
        claim,
        reason: "PoolShrunk",
        message: `pool ${name} shrank and took back slot ${removal.slot.leaseName}`,
        graceSeconds,
        by: "pool",
        phase: "Revoking",
      });
      continue;
    }
    if (!(await deleteSlotLease(ctx.client, lease))) continue;
    await deletePod(ctx, placeholderName(removal.slot.leaseName), ctx.namespace, 0);
  }
  // A slot whose claim is gone (deleted before it could release the slot, e.g. while no operator
  // led) goes back to the pool once no pod of that tenant is left on it.
  const occupiedBefore = occupiedSlots(ctx, name, observed);
  let released = 0;
  for (const { slot, lease } of observed) {
    if (slot.holder.kind !== "claim" || occupiedBefore.has(slot.leaseName)) continue;
    if (ctx.cache.claims.get(slot.holder.name, slot.holder.namespace)) continue;
    if ((await swapHolder(ctx.client, lease, { kind: "free" })).ok) released++;
  }
  const ledgerChanged = plan.create.length + plan.move.length + plan.remove.length + released > 0;
  if (ledgerChanged) return { requeueAfterMs: 50 }; // act on the new ledger once the caches have it

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
  // A slot whose last tenant's pod has not gone yet is not grantable: two tenants never share a slot.
  const occupied = occupiedSlots(ctx, name, observed);
  const grantable = observed
    .map((o) => o.slot)
    .filter((s) => s.holder.kind !== "free" || !occupied.has(s.leaseName));
  const grants = planGrants({ pool: view, slots: grantable, claims, nodes });
  let granted = 0;
  for (const grant of grants.grants) {
    if (grant.adopted) continue;
    const result = await swapHolder(ctx.client, leaseOf.get(grant.slot.leaseName)!, {
      kind: "claim",
      ...grant.claim,
    });
    if (result.ok) {
      ctx.writes.grants.expect(
        name,
        grant.slot.leaseName,
        leaseOf.get(grant.slot.leaseName)!.metadata!.resourceVersion!,
        ctx.now(),
      );
      granted++;
      ctx.metrics?.granted(name);
      ctx.log.info({ pool: name, slot: grant.slot.leaseName, claim: grant.claim }, "slot granted");
    }
  }
  if (granted > 0) observed = poolSlots(ctx, name);

  await syncPlaceholders(ctx, pool, observed);

  const counts = countSlots(ctx, pool, observed);
  for (const z of counts.zones)
    for (const state of ["free", "leased", "reserved", "pending"] as const)
      ctx.metrics?.setSlots(name, z.name, state, z[state]);
  const shortfall = plan.shortfall.map((s) => `${s.zone}: ${s.missing} (${s.reason})`).join(", ");
  const failoverCapacity = estimateFailoverCapacity({
    slots: observed.map((o) => o.slot),
    nodes,
    claims,
    services: poolServiceHeads(ctx, name),
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

/**
 * Slots on which a tenant pod still exists (terminating ones included): a pod of the claim that
 * holds the slot or last lost it. Labels alone prove nothing (anyone who may create a pod can copy
 * them), so a pod counts only under its claim's controller reference.
 */
function occupiedSlots(
  ctx: ControllerContext,
  pool: string,
  observed: readonly { slot: SlotView; lease: k8s.V1Lease }[],
): Set<string> {
  const tenantsOf = new Map<string, string[]>();
  for (const { slot, lease } of observed) {
    const claims = [lease.metadata?.annotations?.[annotations.revokedClaim]];
    if (slot.holder.kind === "claim") claims.push(`${slot.holder.namespace}/${slot.holder.name}`);
    tenantsOf.set(
      slot.leaseName,
      claims.filter((c): c is string => !!c),
    );
  }
  const out = new Set<string>();
  for (const pod of podsOfPool(ctx, pool)) {
    const l = pod.metadata?.labels ?? {};
    const slot = l[labels.slot];
    if (l[labels.role] !== roles.tenant || !slot || isTerminated(pod)) continue;
    const claim = tenantPodClaim(pod);
    if (claim && tenantsOf.get(slot)?.includes(claim)) out.add(slot);
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

/** A free slot has exactly one placeholder, on its node; a held slot has none. */
async function syncPlaceholders(
  ctx: ControllerContext,
  pool: ContingencyPool,
  observed: { slot: SlotView; lease: k8s.V1Lease }[],
): Promise<void> {
  for (const { slot, lease } of observed) {
    const name = placeholderName(slot.leaseName);
    const existing = ctx.cache.pods.get(name, ctx.namespace);
    const wanted = slot.holder.kind === "free";
    if (
      existing &&
      (!wanted || existing.spec?.nodeName !== slot.node || existing.status?.phase === "Failed")
    ) {
      if (!existing.metadata?.deletionTimestamp) await deletePod(ctx, name, ctx.namespace, 0);
      continue;
    }
    if (wanted && !existing) {
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
}

export interface SlotCounts {
  slots: number;
  free: number;
  leased: number;
  reserved: number;
  pending: number;
  zones: { name: string; slots: number; free: number; leased: number; reserved: number; pending: number }[];
}

function countSlots(
  ctx: ControllerContext,
  pool: ContingencyPool,
  observed: { slot: SlotView }[],
): SlotCounts {
  const zoneNames = [
    ...new Set([...pool.spec.zones.map((z) => z.name), ...observed.map((o) => o.slot.zone)]),
  ];
  const zones = zoneNames.map((zone) => ({
    name: zone,
    slots: 0,
    free: 0,
    leased: 0,
    reserved: 0,
    pending: 0,
  }));
  const byName = new Map(zones.map((z) => [z.name, z]));
  for (const { slot } of observed) {
    const z = byName.get(slot.zone)!;
    z.slots++;
    if (slot.holder.kind === "claim") z.leased++;
    else if (slot.holder.kind === "service") z.reserved++;
    else {
      const placeholder = ctx.cache.pods.get(placeholderName(slot.leaseName), ctx.namespace);
      if (placeholder?.status?.phase === "Running" && placeholder.spec?.nodeName === slot.node) z.free++;
      else z.pending++;
    }
  }
  const sum = (k: keyof Omit<SlotCounts["zones"][number], "name">) => zones.reduce((a, z) => a + z[k], 0);
  return {
    slots: sum("slots"),
    free: sum("free"),
    leased: sum("leased"),
    reserved: sum("reserved"),
    pending: sum("pending"),
    zones,
  };
}

async function writeStatus(
  ctx: ControllerContext,
  pool: ContingencyPool,
  counts: Partial<SlotCounts> & { zoneSummary?: string; failoverCapacity?: FailoverCapacityStatus },
  ...conditions: ConditionInput[]
): Promise<void> {
  const now = new Date(ctx.now());
  let next = pool.status?.conditions ?? [];
  for (const c of conditions)
    next = setCondition(next, { ...c, observedGeneration: pool.metadata.generation }, now);
  const status = { ...counts, observedGeneration: pool.metadata.generation, conditions: next };
  const current = pool.status ?? {};
  if (sameJson(pick(current, Object.keys(status)), status)) return; // nothing new: no write
  try {
    await ctx.client.patchCustomStatus(poolResource, pool.metadata.name!, undefined, status);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

function pick(obj: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, obj[k]]));
}
