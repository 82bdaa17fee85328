// The slot ledger: one Lease per slot, and every change of holder a compare-and-swap on it.
import * as k8s from "@kubernetes/client-node";
import { formatHolderIdentity } from "../decisions/names.ts";
import type { SlotCreation } from "../decisions/slot-placement.ts";
import type { SlotHolder } from "../decisions/types.ts";
import type { KubeClient } from "../kube/client.ts";
import { isConflict, isNotFound } from "../kube/errors.ts";
import { annotations, labels, managedBy } from "./labels.ts";

/** Lease durations carry no meaning for slots (a slot is held until revoked), but the field is required by some tools. */
const SLOT_LEASE_SECONDS = 3600;

export type SwapResult = { ok: true; lease: k8s.V1Lease } | { ok: false; reason: "Conflict" | "NotFound" };

export function slotLease(pool: string, namespace: string, slot: SlotCreation): k8s.V1Lease {
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      name: slot.leaseName,
      namespace,
      labels: {
        [labels.pool]: pool,
        [labels.zone]: slot.zone,
        [labels.slot]: String(slot.index),
        [labels.managedBy]: managedBy,
      },
      annotations: { [annotations.node]: slot.node },
    },
    spec: { holderIdentity: "", leaseDurationSeconds: SLOT_LEASE_SECONDS },
  };
}

/** Creates a slot's Lease; false when it exists already (creation is by name, so at most one exists). */
export async function createSlotLease(client: KubeClient, lease: k8s.V1Lease): Promise<boolean> {
  try {
    await client.coordination.createNamespacedLease({ namespace: lease.metadata!.namespace!, body: lease });
    return true;
  } catch (err) {
    if (isConflict(err)) return false;
    throw err;
  }
}

/**
 * Changes a slot's holder, but only if the Lease is still exactly as observed (its resourceVersion).
 * Losing the race is a normal outcome, not an error: the caller re-reads and decides again.
 */
export async function swapHolder(
  client: KubeClient,
  observed: k8s.V1Lease,
  holder: SlotHolder,
  extraAnnotations: Record<string, string | undefined> = {},
  moveToNode?: string,
): Promise<SwapResult> {
  const now = new k8s.V1MicroTime();
  const ann = { ...(observed.metadata?.annotations ?? {}) };
  for (const [k, v] of Object.entries(extraAnnotations)) {
    if (v === undefined) delete ann[k];
    else ann[k] = v;
  }
  if (moveToNode) ann[annotations.node] = moveToNode;
  const body: k8s.V1Lease = {
    ...observed,
    metadata: { ...observed.metadata, annotations: ann },
    spec: {
      ...observed.spec,
      holderIdentity: formatHolderIdentity(holder),
      acquireTime: now,
      renewTime: now,
      leaseTransitions: (observed.spec?.leaseTransitions ?? 0) + 1,
    },
  };
  try {
    const lease = await client.coordination.replaceNamespacedLease({
      name: observed.metadata!.name!,
      namespace: observed.metadata!.namespace!,
      body,
    });
    return { ok: true, lease };
  } catch (err) {
    if (isConflict(err)) return { ok: false, reason: "Conflict" };
    if (isNotFound(err)) return { ok: false, reason: "NotFound" };
    throw err;
  }
}

/** The note a revoker leaves on a slot's Lease: whose it was and why it was taken back. */
export const revocationNote = (claim: { namespace: string; name: string }, reason: string) => ({
  [annotations.revokedClaim]: `${claim.namespace}/${claim.name}`,
  [annotations.revocationReason]: reason,
});

/** A slot a claim gives back itself was not revoked from anyone: an older revocation note goes. */
export const CLEAR_REVOCATION = {
  [annotations.revokedClaim]: undefined,
  [annotations.revocationReason]: undefined,
};

/** Deletes a slot's Lease only if it is unchanged since observed (a precondition on resourceVersion). */
export async function deleteSlotLease(client: KubeClient, observed: k8s.V1Lease): Promise<boolean> {
  try {
    await client.coordination.deleteNamespacedLease({
      name: observed.metadata!.name!,
      namespace: observed.metadata!.namespace!,
      body: { preconditions: { resourceVersion: observed.metadata!.resourceVersion } },
    });
    return true;
  } catch (err) {
    if (isNotFound(err)) return true;
    if (isConflict(err)) return false;
    throw err;
  }
}
