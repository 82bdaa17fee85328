// Names and identities shared by the decisions and the controllers that apply them, so both sides
// spell a slot lease, a holder or a head pod the same way.
import type { ClaimRef, SlotHolder } from "./types.ts";

/** Lease name of a slot: `slot-<pool>-<zone>-<index>`. */
export function slotLeaseName(pool: string, zone: string, index: number): string {
  return `slot-${pool}-${zone}-${index}`;
}

/** Name of the head pod of a storage service for one epoch; one name per epoch keeps creation idempotent. */
export function headPodName(service: string, epoch: number): string {
  return `${service}-head-${epoch}`;
}

/** `spec.holderIdentity` of a slot lease: `""`, `claim:<ns>/<name>` or `service:<ns>/<name>`. */
export function formatHolderIdentity(holder: SlotHolder): string {
  switch (holder.kind) {
    case "free":
      return "";
    case "claim":
      return `claim:${holder.namespace}/${holder.name}`;
    case "service":
      return `service:${holder.namespace}/${holder.name}`;
  }
}

/**
 * Reads a lease's `spec.holderIdentity`. Returns undefined for a value the operator never writes,
 * so a controller can report the lease instead of guessing who holds it.
 */
export function parseHolderIdentity(identity: string | undefined | null): SlotHolder | undefined {
  if (identity === undefined || identity === null || identity === "") return { kind: "free" };
  const match = /^(claim|service):([^/]+)\/([^/]+)$/.exec(identity);
  if (!match) return undefined;
  const [, kind, namespace, name] = match as unknown as [string, "claim" | "service", string, string];
  return { kind, namespace, name };
}

/** `<namespace>/<name>`, the order key used wherever claims tie. */
export function refKey(ref: ClaimRef): string {
  return `${ref.namespace}/${ref.name}`;
}
