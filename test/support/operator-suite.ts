// One operator process for a test file, managing only that file's pools (--pool-selector), and a
// fresh pool and namespace per test, removed after it while the operator still runs.
import { afterAll, afterEach, beforeAll } from "vitest";
import { installCrds } from "./crds.ts";
import { createScopedPool } from "./failover.ts";
import { deleteNamespace, freshNamespace, testClient } from "./kube.ts";
import { startOperator, type OperatorProcess } from "./operator.ts";
import { deletePool, testPoolSelector } from "./pools.ts";

export interface OperatorSuite {
  scope: string;
  operator(): OperatorProcess;
  operatorNamespace(): string;
  /** A pool of this suite (emergency grace 1 s, planned 2 s) and a namespace for its services. */
  world(zones: Record<string, number>, hotSpares?: number): Promise<{ pool: string; ns: string }>;
}

export function operatorSuite(prefix: string): OperatorSuite {
  const client = testClient();
  const run = Date.now().toString(36);
  const scope = `${prefix}-${run}`;
  let counter = 0;
  let operator: OperatorProcess | undefined;
  let opNs: string | undefined;
  const cleanup: { pool: string; ns: string }[] = [];

  beforeAll(async () => {
    await installCrds();
    opNs = await freshNamespace(client, `${prefix}-op`);
    operator = await startOperator({ namespace: opNs, poolSelector: testPoolSelector(scope) });
  });
  afterEach(async () => {
    for (const { pool, ns } of cleanup.splice(0)) {
      await deletePool(client, pool);
      await deleteNamespace(client, ns);
    }
  });
  afterAll(async () => {
    await operator?.stop();
    if (opNs) await deleteNamespace(client, opNs);
  });

  return {
    scope,
    operator: () => operator!,
    operatorNamespace: () => opNs!,
    async world(zones, hotSpares = 0) {
      const pool = `${prefix}-${run}-${counter++}`;
      const ns = await freshNamespace(client, prefix);
      await createScopedPool(client, pool, scope, {
        zones,
        hotSpares,
        emergencyGraceSeconds: 1,
        plannedGraceSeconds: 2,
      });
      cleanup.push({ pool, ns });
      return { pool, ns };
    },
  };
}
