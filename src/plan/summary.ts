// Figures over simulated days: the shares and counts the planner and the utilization benchmark print.
import { DAY, type DayResult, type SimParams } from "./simulate.ts";

export interface VariantSummary {
  label: string;
  hotSpares: number;
  slotsPerZone: number;
  days: number;
  leasedShare: number;
  serviceShare: number;
  freeShare: number;
  failovers: number;
  foundAtOnceShare: number;
  revokedShare: number;
  outageFailovers: number;
  outageFoundAtOnceShare: number;
  maxWaitSeconds: number;
  tenantsGranted: number;
  tenantsArrived: number;
  tenantsRevoked: number;
  meanTenantWaitSeconds: number;
  slotsPerService: number;
  revocationsPerDay: number;
}

/** Figures over simulated days; a share over no failovers counts as met. */
export function summarize(label: string, params: SimParams, days: DayResult[]): VariantSummary {
  const sum = (f: (d: DayResult) => number) => days.reduce((a, d) => a + f(d), 0);
  const total = sum((d) => d.slotSeconds.total);
  const failovers = sum((d) => d.failovers.total);
  const waits = days.flatMap((d) => d.tenants.waitSeconds);
  return {
    label,
    hotSpares: params.hotSpares,
    slotsPerZone: params.slotsPerZone,
    days: days.length,
    leasedShare: sum((d) => d.slotSeconds.leased) / total,
    serviceShare: sum((d) => d.slotSeconds.service) / total,
    freeShare: sum((d) => d.slotSeconds.free) / total,
    failovers,
    foundAtOnceShare: failovers === 0 ? 1 : sum((d) => d.failovers.foundAtOnce) / failovers,
    revokedShare: failovers === 0 ? 0 : sum((d) => d.failovers.revoked) / failovers,
    outageFailovers: sum((d) => d.failovers.inOutage),
    outageFoundAtOnceShare:
      sum((d) => d.failovers.inOutageFoundAtOnce) /
      Math.max(
        1,
        sum((d) => d.failovers.inOutage),
      ),
    maxWaitSeconds: Math.max(0, ...days.flatMap((d) => d.failovers.waitedSeconds)),
    tenantsGranted: sum((d) => d.tenants.granted),
    tenantsArrived: sum((d) => d.tenants.arrived),
    tenantsRevoked: sum((d) => d.tenants.revoked),
    meanTenantWaitSeconds: waits.reduce((a, b) => a + b, 0) / Math.max(1, waits.length),
    slotsPerService: total / days.length / DAY / params.serviceZones.length,
    revocationsPerDay: sum((d) => d.tenants.revoked) / days.length,
  };
}
