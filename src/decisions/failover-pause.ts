// Whether automatic failover is paused for a storage service, and by what: its own
// spec.failover.paused or its pool's spec.failoverPaused (planned maintenance). Pure.

export interface FailoverPause {
  by: "service" | "pool";
  /** The condition's reason: ServicePaused or PoolPaused. */
  reason: "ServicePaused" | "PoolPaused";
  message: string;
}

export function failoverPause(
  servicePaused: boolean,
  pool: { name: string; failoverPaused: boolean } | undefined,
): FailoverPause | undefined {
  if (servicePaused)
    return {
      by: "service",
      reason: "ServicePaused",
      message: "automatic failover and failback are paused (spec.failover.paused)",
    };
  if (pool?.failoverPaused)
    return {
      by: "pool",
      reason: "PoolPaused",
      message: `automatic failover and failback are paused for every service of pool ${pool.name} (its spec.failoverPaused)`,
    };
  return undefined;
}
