// An operator with nothing to do makes no writes. A pool, its claims and a storage service that
// have settled are reconciled again (the pool is touched, which wakes all three controllers), and
// every request the operator makes goes through a counting proxy: none may write a status, for the
// reconciles found nothing new. (Owned objects are applied again once a minute by design, so their
// applies are not counted here.)
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import { GROUP, POOL_PLURAL, VERSION } from "../../src/api/index.ts";
import { headServiceName } from "../../src/controllers/storage-service/index.ts";
import { mergePatchOptions } from "../../src/kube/client.ts";
import { countingProxy, type CountingProxy } from "../support/counting-proxy.ts";
import { installCrds } from "../support/crds.ts";
import {
  createScopedClaim,
  createScopedPool,
  createService,
  routedEpoch,
  waitForServing,
} from "../support/failover.ts";
import { deleteNamespace, eventually, freshNamespace, testClient } from "../support/kube.ts";
import { metricSum, startOperator, type OperatorProcess } from "../support/operator.ts";
import { deletePool, getClaim, getPool, testPoolSelector } from "../support/pools.ts";

const client = testClient();
const run = Date.now().toString(36);
const scope = `quiet-${run}`;
const pool = `quiet-${run}`;
let proxy: CountingProxy;
let operator: OperatorProcess;
let opNs: string;
let ns: string;

beforeAll(async () => {
  await installCrds();
  // Only this test's objects: the pool, and what is in the test's namespaces. Claims of other
  // suites whose pool is gone are every operator's, and one written while its namespace is deleted
  // is no write of this pool's.
  proxy = await countingProxy(undefined, (url) =>
    [`/namespaces/${ns}/`, `/namespaces/${opNs}/`, `/${pool}`].some((part) => url.includes(part)),
  );
  opNs = await freshNamespace(client, "quiet-op");
  ns = await freshNamespace(client, "quiet");
  operator = await startOperator({
    namespace: opNs,
    kubeconfig: proxy.kubeconfig(),
    poolSelector: testPoolSelector(scope),
  });
});

afterAll(async () => {
  await deletePool(client, pool).catch(() => undefined);
  if (ns) await deleteNamespace(client, ns);
  await operator?.stop();
  if (opNs) await deleteNamespace(client, opNs);
  proxy?.close();
});

const WRITES = [
  "patch contingencypools/status",
  "patch poolclaims/status",
  "patch storageservices/status",
  // Owned objects are applied when they change (or every ten minutes), so at rest never.
  "patch networkpolicies",
];

const counted = () => Object.fromEntries(WRITES.map((k) => [k, proxy.counts.get(k) ?? 0]));

async function patchPoolMetadata(metadata: Record<string, unknown>): Promise<void> {
  await client.custom.patchClusterCustomObject(
    { group: GROUP, version: VERSION, plural: POOL_PLURAL, name: pool, body: { metadata } },
    mergePatchOptions,
  );
}

async function reconciles(controller: string): Promise<number> {
  return metricSum(await (await fetch(operator.metricsUrl)).text(), "understudy_reconcile_total", {
    controller,
  });
}

/** Until no request of WRITES has been made for `quietMs`: the operator has settled. */
async function settled(quietMs: number): Promise<void> {
  let last = JSON.stringify(counted());
  let since = performance.now();
  await eventually(
    "the operator to settle",
    () => {
      const now = JSON.stringify(counted());
      if (now !== last) [last, since] = [now, performance.now()];
      return performance.now() - since >= quietMs;
    },
    60_000,
    100,
  );
}

describe("an operator at rest", () => {
  it("reconciles a settled pool, claims and storage service without writing anything", async () => {
    await createScopedPool(client, pool, scope, {
      zones: { "zone-a": 1, "zone-b": 1, "zone-c": 1 },
      allowedNamespaces: [ns],
    });
    await createScopedClaim(client, scope, ns, "tenant-b", pool, 10, { zone: "zone-b" });
    await createScopedClaim(client, scope, ns, "tenant-c", pool, 20, { zone: "zone-c" });
    await createService(client, scope, ns, "kv", pool);
    await waitForServing(client, ns, "kv", 1);
    for (const name of ["tenant-b", "tenant-c"])
      await eventually(`claim ${name} Bound and Ready`, async () => {
        const claim = await getClaim(client, ns, name);
        return (
          claim.status?.phase === "Bound" &&
          claim.status.conditions?.some(
            (c: { type: string; status: string }) => c.type === "Ready" && c.status === "True",
          )
        );
      });
    await settled(3_000);

    const before = counted();
    // The proxy sees this test's writes: each kind was written while the objects settled.
    for (const [kind, writes] of Object.entries(before)) expect(writes, kind).toBeGreaterThan(0);
    const reconciled = {
      pool: await reconciles("pool"),
      claim: await reconciles("claim"),
      service: await reconciles("storage-service"),
    };
    // A new label on the pool wakes the pool, every claim of it and every service on it.
    await patchPoolMetadata({ labels: { "example.com/touched": run } });
    await eventually("the pool, its claims and its service reconciled again", async () => {
      return (
        (await reconciles("pool")) > reconciled.pool &&
        (await reconciles("claim")) >= reconciled.claim + 2 &&
        (await reconciles("storage-service")) > reconciled.service
      );
    });
    await sleep(500); // a write decided in those reconciles has reached the proxy by now
    expect(counted()).toEqual(before);
    expect((await getPool(client, pool)).metadata.labels?.["example.com/touched"]).toBe(run);
  });

  it("wakes no claim for a change of its pool that claims do not read", async () => {
    // Claims of other suites whose pool is gone are every operator's, and are reconciled when they
    // change (while their namespace is deleted): one may land in the window. A claim of this pool
    // woken by the change would be woken on every try, so one try without such a stray decides.
    let woken = 0;
    for (let attempt = 1; attempt <= 3; attempt++) {
      let seen = await reconciles("claim");
      let since = performance.now();
      await eventually("no claim reconciled for 1.5 s", async () => {
        const now = await reconciles("claim");
        if (now !== seen) [seen, since] = [now, performance.now()];
        return performance.now() - since >= 1_500;
      });
      const before = { pool: await reconciles("pool"), claim: await reconciles("claim") };
      // An annotation changes neither the pool's generation nor its labels: like a status update.
      await patchPoolMetadata({ annotations: { "example.com/touched": `${run}-${attempt}` } });
      await eventually("the pool reconciled", async () => (await reconciles("pool")) > before.pool);
      await sleep(500); // claims woken by the same event would have been reconciled by now
      woken = (await reconciles("claim")) - before.claim;
      if (woken === 0) break;
    }
    expect(woken).toBe(0);
  });

  it("puts a deleted head Service back at once, routing to the current head", async () => {
    await client.core.deleteNamespacedService({ name: headServiceName("kv"), namespace: ns });
    const routed = await eventually(
      "the head Service back",
      () => routedEpoch(client, ns, "kv"),
      30_000,
      100,
    );
    expect(routed).toBe("1");
  });
});
