// Whether the service could fail over right now, and where to: the ContingencyAvailable condition
// and the check before a switchover. The same choice a failover would make, without its effects.
import type { StorageService } from "../../api/index.ts";
import { chooseFailoverSlot, type FailoverSlotChoice } from "../../decisions/failover-slot.ts";
import type { NodeView } from "../../decisions/types.ts";
import { serviceRef } from "./names.ts";
import { troubledZones, type PoolSnapshot } from "./observe.ts";
import type { ConditionInput } from "./status.ts";

export function contingencyChoice(
  service: StorageService,
  pool: PoolSnapshot | undefined,
  nodes: readonly NodeView[],
): FailoverSlotChoice | undefined {
  if (!pool) return undefined;
  if (pool.observation.refusal)
    return { kind: "none", reason: "NamespaceNotAllowed", message: pool.observation.refusal };
  const head = service.status?.head;
  return chooseFailoverSlot({
    service: serviceRef(service),
    slots: pool.slots,
    nodes,
    claims: pool.observation.claims,
    ...(head?.zone !== undefined ? { failedZone: head.zone } : {}),
    failedZones: troubledZones(nodes),
    exclude: head?.leaseName !== undefined ? [head.leaseName] : [],
    ...(pool.observation.placement ? { placement: pool.observation.placement } : {}),
  });
}

export function contingencyCondition(
  service: StorageService,
  choice: FailoverSlotChoice | undefined,
): ConditionInput {
  const type = "ContingencyAvailable";
  if (!choice)
    return {
      type,
      status: "False",
      reason: "NoPool",
      message: `pool ${service.spec.pool} does not exist or is invalid`,
    };
  if (choice.kind === "none")
    return { type, status: "False", reason: choice.reason, message: choice.message };
  const where = `slot ${choice.slot.leaseName} on node ${choice.slot.node} in ${choice.slot.zone}`;
  const fallback = choice.zoneFallback ? " (no other zone has a usable slot)" : "";
  return choice.victim
    ? {
        type,
        status: "True",
        reason: "LeasedSlot",
        message: `a failover would take ${where} from claim ${choice.victim.namespace}/${choice.victim.name}${fallback}`,
      }
    : { type, status: "True", reason: "FreeSlot", message: `a failover would take free ${where}${fallback}` };
}
