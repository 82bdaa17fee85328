// The pool's metrics: slots by state, and the ledger's grants and revocations.
import { removeSeries, type OperatorMetrics } from "../operator/metrics.ts";

export interface LedgerMetrics {
  setSlots(
    pool: string,
    zone: string,
    state: "free" | "leased" | "reserved" | "pending",
    count: number,
  ): void;
  granted(pool: string): void;
  revoked(pool: string, reason: string): void;
  /** A tenant namespace's slot-seconds and seconds waited, as the claims' usage records close them. */
  tenantUsage(pool: string, namespace: string, delta: { slotSeconds: number; waitingSeconds: number }): void;
  /** A slot taken from a tenant namespace's claim, by reason, as its usage record counts it. */
  tenantRevoked(pool: string, namespace: string, reason: string): void;
  /** Drops every series of a deleted pool. */
  forgetPool(pool: string): Promise<void>;
}

export function ledgerMetrics(metrics: OperatorMetrics): LedgerMetrics {
  const slots = metrics.gauge("understudy_slots", "Slots of a pool by zone and state.", [
    "pool",
    "zone",
    "state",
  ]);
  const granted = metrics.counter(
    "understudy_leases_granted_total",
    "Slot leases granted to tenant claims.",
    ["pool"],
  );
  const revoked = metrics.counter(
    "understudy_leases_revoked_total",
    "Slot leases taken back from tenant claims, by reason (Failover, PoolShrunk, Expired, ...).",
    ["pool", "reason"],
  );
  const slotSeconds = metrics.counter(
    "understudy_tenant_slot_seconds_total",
    "Slot-seconds tenant claims held, by pool and namespace, counted as each hold ends.",
    ["pool", "namespace"],
  );
  const waitingSeconds = metrics.counter(
    "understudy_tenant_waiting_seconds_total",
    "Seconds tenant claims waited for a slot, by pool and namespace, counted as each wait ends.",
    ["pool", "namespace"],
  );
  const tenantRevocations = metrics.counter(
    "understudy_tenant_revocations_total",
    "Slots taken from tenant claims, by pool, namespace and reason (from the claims' usage records).",
    ["pool", "namespace", "reason"],
  );
  return {
    tenantUsage: (pool, namespace, delta) => {
      if (delta.slotSeconds > 0) slotSeconds.inc({ pool, namespace }, delta.slotSeconds);
      if (delta.waitingSeconds > 0) waitingSeconds.inc({ pool, namespace }, delta.waitingSeconds);
    },
    tenantRevoked: (pool, namespace, reason) => tenantRevocations.inc({ pool, namespace, reason }),
    setSlots: (pool, zone, state, count) => slots.set({ pool, zone, state }, count),
    granted: (pool) => granted.inc({ pool }),
    revoked: (pool, reason) => revoked.inc({ pool, reason }),
    forgetPool: async (pool) => {
      for (const metric of [slots, granted, revoked]) await removeSeries(metric, { pool });
    },
  };
}
