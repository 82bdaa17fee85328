// Failovers decided at the same moment by several workers of the real operator process: each takes
// a slot of its own at its first choice, instead of racing another for one Lease and choosing again.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installCrds } from "../support/crds.ts";
import {
  createScopedPool,
  createService,
  waitForFailover,
  waitForServing,
  type ServiceObject,
} from "../support/failover.ts";
import { deleteNamespace, freshNamespace, makePodNotReady, testClient } from "../support/kube.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import { deletePool, slotLeases, testPoolSelector } from "../support/pools.ts";

const client = testClient();
const run = Date.now().toString(36);
const scope = `fo-workers-${run}`;
const pool = `fo-workers-${run}`;
const names = ["kv-1", "kv-2", "kv-3", "kv-4"];
let operator: OperatorProcess;
let opNs: string;
let ns: string;

beforeAll(async () => {
  await installCrds();
  opNs = await freshNamespace(client, "fo-workers-op");
  ns = await freshNamespace(client, "fo-workers");
  operator = await startOperator({
    namespace: opNs,
    poolSelector: testPoolSelector(scope),
    env: { UNDERSTUDY_LOG_LEVEL: "info", UNDERSTUDY_CONCURRENCY: "4" },
  });
});

afterAll(async () => {
  // Removed while the operator runs, so it lets go of the slots.
  await deletePool(client, pool).catch(() => undefined);
  if (ns) await deleteNamespace(client, ns);
  await operator?.stop();
  if (opNs) await deleteNamespace(client, opNs);
});

describe("several failovers at once, with four workers", () => {
  it("each takes its own slot at its first choice", async () => {
    await createScopedPool(client, pool, scope, {
      zones: { "zone-b": 2, "zone-c": 2 },
      hotSpares: 4,
      emergencyGraceSeconds: 0,
      plannedGraceSeconds: 1,
    });
    for (const name of names) await createService(client, scope, ns, name, pool);
    const heads = await Promise.all(names.map((name) => waitForServing(client, ns, name, 1)));
    await Promise.all(heads.map(({ pod }) => makePodNotReady(client, ns, pod.metadata!.name!)));
    const moved: ServiceObject[] = await Promise.all(
      names.map((name) => waitForFailover(client, ns, name, 1)),
    );

    // Four workers decided from the same ledger within moments of each other; none lost its
    // choice to another and had to choose again.
    for (const service of moved)
      expect(
        service.status!.lastFailover!.timeline!.filter((t) => t.step === "SlotChosen"),
        `${service.metadata.name}'s timeline`,
      ).toHaveLength(1);
    const slots = moved.map((s) => s.status!.head!.leaseName!);
    expect(new Set(slots).size).toBe(4);
    // And the ledger agrees: each service holds its head's slot and no other.
    const holders = new Map(
      (await slotLeases(client, opNs, pool)).map((l) => [l.metadata!.name!, l.spec?.holderIdentity]),
    );
    for (const [i, service] of moved.entries())
      expect(holders.get(slots[i]!)).toBe(`service:${ns}/${service.metadata.name}`);
    expect([...holders.values()].filter((h) => h?.startsWith("service:")).length).toBe(4);
  });
});
