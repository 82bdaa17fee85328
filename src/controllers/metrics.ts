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
  return {
    setSlots: (pool, zone, state, count) => slots.set({ pool, zone, state }, count),
    granted: (pool) => granted.inc({ pool }),
    revoked: (pool, reason) => revoked.inc({ pool, reason }),
    forgetPool: async (pool) => {
      for (const metric of [slots, granted, revoked]) await removeSeries(metric, { pool });
    },
  };
}
