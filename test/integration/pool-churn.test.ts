import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import { installCrds } from "../support/crds.ts";
import { deleteNamespace, eventually, freshNamespace, testClient, testKubeConfig } from "../support/kube.ts";
import { LedgerHistory } from "../support/ledger-history.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import {
  claimManifest,
  createClaim,
  createPool,
  deleteClaim,
  deletePool,
  getPool,
  listClaims,
  poolManifest,
  slotLeases,
  testPoolSelector,
} from "../support/pools.ts";
import { seededRandom } from "../support/random.ts";

// The ledger's invariant under churn: 50 claims created and deleted concurrently while two
// operator replicas run and the leader is killed midway. Every state the test observes is recorded
// and checked: no slot ever has two tenants' pods, no pod is created on a slot its claim does not
// hold, and at the end every slot is accounted for.

const client = testClient();
const pool = `churn-${Date.now().toString(36)}`;
let opNs: string;
let tenants: string;
const operators: OperatorProcess[] = [];
let history: LedgerHistory;

const startReplica = (identity: string) =>
  startOperator({
    namespace: opNs,
    identity,
    poolSelector: testPoolSelector(pool),
    env: {
      UNDERSTUDY_LEASE_DURATION: "3s",
      UNDERSTUDY_RENEW_DEADLINE: "2s",
      UNDERSTUDY_RETRY_PERIOD: "500ms",
    },
  });

beforeAll(async () => {
  await installCrds();
  opNs = await freshNamespace(client, "understudy");
  tenants = await freshNamespace(client, "churn");
  history = new LedgerHistory(testKubeConfig(), opNs, tenants, pool);
  await history.start();
  operators.push(await startReplica("replica-a"), await startReplica("replica-b"));
  await createPool(
    client,
    poolManifest(pool, { allowedNamespaces: [tenants], plannedGraceSeconds: 1 }, pool),
  );
  await eventually("6 slot Leases", async () => (await slotLeases(client, opNs, pool)).length === 6);
});

afterAll(async () => {
  history?.stop();
  for (const op of operators) await op.stop();
  await deletePool(client, pool);
  for (const ns of [tenants, opNs]) if (ns) await deleteNamespace(client, ns);
});

async function leaderIdentity(): Promise<string | undefined> {
  const lease = await client.coordination.readNamespacedLease({
    name: "understudy-operator",
    namespace: opNs,
  });
  return lease.spec?.holderIdentity ?? undefined;
}

describe("the slot ledger under churn", () => {
  it("never gives a slot to two tenants while 50 claims come and go and the leader dies", async () => {
    const random = seededRandom(Number(process.env.UNDERSTUDY_CHURN_SEED ?? 7));
    const names = Array.from({ length: 50 }, (_, i) => `c${i}`);
    let killed: string | undefined;
    // Midway: the leader dies without releasing its lease; the standby must wait it out.
    const killLeader = sleep(7000).then(async () => {
      killed = await leaderIdentity();
      operators.find((o) => o.identity === killed)?.process.kill("SIGKILL");
    });

    await Promise.all(
      names.map(async (name) => {
        await sleep(Math.floor(random() * 15_000));
        await createClaim(client, claimManifest(tenants, name, pool, Math.floor(random() * 100)));
        await sleep(1000 + Math.floor(random() * 3000));
        await deleteClaim(client, tenants, name);
      }),
    );
    await killLeader;
    expect(killed).toBeDefined();

    const survivor = operators.find((o) => o.identity !== killed)!;
    await eventually("the standby leads", async () => (await leaderIdentity()) === survivor.identity, 30_000);
    await eventually(
      "every claim gone",
      async () => (await listClaims(client, tenants)).length === 0,
      120_000,
    );
    // In the end every slot is accounted for: six Leases, all free, each held by a Running placeholder.
    const status = await eventually(
      "6 free slots",
      async () => {
        const s = (await getPool(client, pool)).status;
        return s?.free === 6 && s;
      },
      60_000,
    );
    expect(status.leased).toBe(0);
    const leases = await slotLeases(client, opNs, pool);
    expect(leases).toHaveLength(6);
    for (const l of leases) expect(l.spec?.holderIdentity ?? "").toBe("");
    const tenantPods = await client.core.listNamespacedPod({ namespace: tenants });
    expect(tenantPods.items).toHaveLength(0);

    await sleep(500); // let the recorder catch the last events
    console.log(`tenant pods seen: ${history.pods.size}, lease changes: ${history.leases.length}`);
    expect(history.pods.size).toBeGreaterThan(6); // slots really changed hands
    expect(history.violations()).toEqual([]);
  });
});
