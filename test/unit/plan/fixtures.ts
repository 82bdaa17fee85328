import type { Assumption, Assumptions } from "../../../src/plan/assumptions.ts";
import { DEFAULTS, spreadServices } from "../../../src/plan/simulate.ts";

// Assumptions as a test states them: every figure "observed", the rest from the simulation's defaults.

const observed = <T>(value: T): Assumption<T> => ({ value, source: "observed", note: "test" });

export function assumptions(shape: {
  services: number;
  slotsPerZone?: number;
  hotSpares?: number;
  headroomPerZone?: number;
}): Assumptions {
  const zones = ["zone-a", "zone-b", "zone-c"];
  return {
    zones: observed(zones),
    serviceZones: observed(spreadServices(shape.services, zones)),
    slotsPerZone: observed(shape.slotsPerZone ?? 2),
    hotSpares: observed(shape.hotSpares ?? 0),
    headroomPerZone: observed(shape.headroomPerZone ?? DEFAULTS.headroomPerZone),
    headMtbfHours: observed(DEFAULTS.headMtbfHours),
    meanRepairMinutes: observed(DEFAULTS.meanRepairMinutes),
    zoneOutageMinutes: observed(DEFAULTS.zoneOutageMinutes),
    peakArrivalsPerHour: observed(DEFAULTS.peakArrivalsPerHour),
    meanTenantMinutes: observed(DEFAULTS.meanTenantMinutes),
    patienceMinutes: observed(DEFAULTS.patienceMinutes),
    zonedShare: observed(DEFAULTS.zonedShare),
    requeueShare: observed(DEFAULTS.requeueShare),
  };
}
