import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import { GROUP, POOL_PLURAL, VERSION } from "../../src/api/index.ts";
import { mergePatchOptions } from "../../src/kube/client.ts";
import { installCrds } from "../support/crds.ts";
import { deleteNamespace, eventually, freshNamespace, isPodReady, testClient } from "../support/kube.ts";
import { metricSum, metricValue, startOperator, type OperatorProcess } from "../support/operator.ts";
import {
  claimManifest,
  createClaim,
  createPool,
  deleteClaim,
  deletePool,
  getClaim,
  getPool,
  listClaims,
  phaseOf,
  poolManifest,
  slotLeases,
  testPoolSelector,
} from "../support/pools.ts";

// The contingency pool against the real cluster and the real operator process: slots in every zone,
// leased to tenants by bid, refused when they break the rules, taken back with notice.

const client = testClient();
const pool = `pool-${Date.now().toString(36)}`;
let opNs: string;
let tenants: string;
let outsider: string;
let operator: OperatorProcess;

const zoneOfNode = new Map<string, string>();

beforeAll(async () => {
  await installCrds();
  opNs = await freshNamespace(client, "understudy");
  tenants = await freshNamespace(client, "tenants");
  outsider = await freshNamespace(client, "outsider");
  for (const n of (await client.core.listNode({ labelSelector: "type=kwok" })).items)
    zoneOfNode.set(n.metadata!.name!, n.metadata!.labels!["topology.kubernetes.io/zone"]!);
  operator = await startOperator({ namespace: opNs, poolSelector: testPoolSelector(pool) });
  // Hot spares hold every slot back at first, so all 8 claims are Pending when slots open up.
  await createPool(
    client,
    poolManifest(pool, { allowedNamespaces: [tenants], plannedGraceSeconds: 3, hotSpares: 6 }, pool),
  );
});

afterAll(async () => {
  await operator?.stop();
  await deletePool(client, pool);
  for (const ns of [tenants, outsider, opNs]) if (ns) await deleteNamespace(client, ns);
});

const tenantPods = async () =>
  (await client.core.listNamespacedPod({ namespace: tenants, labelSelector: "understudy.dev/role=tenant" }))
    .items;
const placeholders = async () =>
  (
    await client.core.listNamespacedPod({
      namespace: opNs,
      labelSelector: `understudy.dev/pool=${pool},understudy.dev/role=placeholder`,
    })
  ).items;

const claimName = (bid: number) => `bid-${bid}`;

describe("a contingency pool of 6 slots over three zones", () => {
  it("keeps 6 slot Leases with placeholder pods Running in the right zones, and counts them", async () => {
    const leases = await eventually("6 slot Leases", async () => {
      const l = await slotLeases(client, opNs, pool);
      return l.length === 6 && l;
    });
    const perZone = new Map<string, number>();
    for (const l of leases) {
      const zone = l.metadata!.labels!["understudy.dev/zone"]!;
      perZone.set(zone, (perZone.get(zone) ?? 0) + 1);
      expect(l.spec?.holderIdentity ?? "").toBe("");
      expect(zoneOfNode.get(l.metadata!.annotations!["understudy.dev/node"]!)).toBe(zone);
    }
    expect(Object.fromEntries(perZone)).toEqual({ "zone-a": 2, "zone-b": 2, "zone-c": 2 });

    const pods = await eventually("6 Running placeholders", async () => {
      const p = (await placeholders()).filter((x) => x.status?.phase === "Running");
      return p.length === 6 && p;
    });
    for (const p of pods)
      expect(zoneOfNode.get(p.spec!.nodeName!)).toBe(p.metadata!.labels!["understudy.dev/zone"]);
    // Autoscalers may not take a free slot's node away (docs/OPERATIONS.md).
    const keep = {
      "cluster-autoscaler.kubernetes.io/safe-to-evict": "false",
      "karpenter.sh/do-not-disrupt": "true",
    };
    for (const p of pods) expect(p.metadata!.annotations).toMatchObject(keep);
    // A placeholder without them (as an earlier version made it) gets them back.
    const bare = pods[0]!.metadata!.name!;
    await client.mergePatch(
      { apiVersion: "v1", kind: "Pod", metadata: { name: bare, namespace: opNs } },
      { metadata: { annotations: { "karpenter.sh/do-not-disrupt": null } } },
    );
    await eventually("the placeholder's annotations restored", async () => {
      const pod = await client.core.readNamespacedPod({ name: bare, namespace: opNs });
      return pod.metadata?.annotations?.["karpenter.sh/do-not-disrupt"] === "true";
    });

    const status = await eventually("status counts 6 free", async () => {
      const s = (await getPool(client, pool)).status;
      return s?.free === 6 && s;
    });
    expect(status.slots).toBe(6);
    expect(status.zones.map((z: { name: string; free: number }) => [z.name, z.free])).toEqual([
      ["zone-a", 2],
      ["zone-b", 2],
      ["zone-c", 2],
    ]);
  });

  it("binds the 6 highest of 8 bids, keeps 2 Pending, and hands a released slot to the highest Pending bid", async () => {
    for (const bid of [10, 20, 30, 40, 50, 60, 70, 80])
      await createClaim(client, claimManifest(tenants, claimName(bid), pool, bid));
    await eventually("8 Pending claims behind the hot spares", async () => {
      const c = await listClaims(client, tenants);
      return (
        c.length === 8 && c.every((x) => phaseOf(x) === "Pending" && x.status?.reason === "WaitingForSlot")
      );
    });
    await client.custom.patchClusterCustomObject(
      { group: GROUP, version: VERSION, plural: POOL_PLURAL, name: pool, body: { spec: { hotSpares: 0 } } },
      mergePatchOptions,
    );
    const claims = await eventually(
      "6 Bound, 2 Pending",
      async () => {
        const c = await listClaims(client, tenants);
        const bound = c.filter((x) => phaseOf(x) === "Bound");
        return bound.length === 6 && c.filter((x) => phaseOf(x) === "Pending").length === 2 && c;
      },
      60_000,
    );
    const bound = claims
      .filter((c) => phaseOf(c) === "Bound")
      .map((c) => c.spec.bid)
      .sort((a, b) => a - b);
    expect(bound).toEqual([30, 40, 50, 60, 70, 80]);

    // Every Bound claim runs its pod on its slot's node; no placeholder is left on a leased slot.
    const pods = await eventually("6 Ready tenant pods", async () => {
      const p = (await tenantPods()).filter(isPodReady);
      return p.length === 6 && p;
    });
    for (const c of claims.filter((x) => phaseOf(x) === "Bound")) {
      const pod = pods.find((p) => p.metadata!.labels!["understudy.dev/claim"] === c.metadata.name)!;
      expect(pod.spec!.nodeName).toBe(c.status!.node);
      expect(zoneOfNode.get(pod.spec!.nodeName!)).toBe(c.status!.zone);
    }
    await eventually("no placeholders on leased slots", async () => (await placeholders()).length === 0);

    const released = await getClaim(client, tenants, claimName(50));
    await deleteClaim(client, tenants, claimName(50));
    const promoted = await eventually(
      "bid 20 takes the released slot",
      async () => {
        const c = await getClaim(client, tenants, claimName(20));
        return phaseOf(c) === "Bound" && c;
      },
      60_000,
    );
    expect(promoted.status!.leaseName).toBe(released.status!.leaseName);
    expect(phaseOf(await getClaim(client, tenants, claimName(10)))).toBe("Pending");
    await eventually(
      "claim bid-50 gone",
      async () => !(await listClaims(client, tenants)).some((c) => c.metadata.name === claimName(50)),
    );
  });

  it("changes nothing when the operator restarts with Bound claims", async () => {
    await eventually("6 Ready tenant pods", async () => (await tenantPods()).filter(isPodReady).length === 6);
    await sleep(1000);
    const podUids = new Map((await tenantPods()).map((p) => [p.metadata!.name!, p.metadata!.uid!]));
    const leaseVersions = new Map(
      (await slotLeases(client, opNs, pool)).map((l) => [l.metadata!.name!, l.metadata!.resourceVersion!]),
    );
    expect(await operator.stop()).toBe(0);
    operator = await startOperator({ namespace: opNs, poolSelector: testPoolSelector(pool) });
    // Let the new operator list everything and reconcile every object at least once.
    await eventually(
      "the restarted operator reconciled the pool and the claims",
      async () => {
        const m = await operator.metrics();
        // Every result counts: a Pending claim's reconcile ends in requeue_after (claims of pools
        // other operators manage, which used to make up the number, are no longer reconciled here).
        return (
          metricSum(m, "understudy_reconcile_total", { controller: "pool" }) > 0 &&
          metricSum(m, "understudy_reconcile_total", { controller: "claim" }) >= 7
        );
      },
      30_000,
    );
    await sleep(1500);
    expect(new Map((await tenantPods()).map((p) => [p.metadata!.name!, p.metadata!.uid!]))).toEqual(podUids);
    expect(
      new Map(
        (await slotLeases(client, opNs, pool)).map((l) => [l.metadata!.name!, l.metadata!.resourceVersion!]),
      ),
    ).toEqual(leaseVersions);
  });

  it("refuses claims that break the pool's rules, with a reason and no pod", async () => {
    const privileged = {
      containers: [
        { name: "worker", image: "registry.example/batch-worker:1", securityContext: { privileged: true } },
      ],
    };
    await createClaim(client, claimManifest(outsider, "not-allowed", pool, 1000));
    await createClaim(client, claimManifest(tenants, "privileged", pool, 1000, { podSpec: privileged }));
    await createClaim(client, claimManifest(tenants, "no-such-pool", `${pool}-missing`, 1000));
    await createClaim(client, claimManifest(tenants, "no-such-zone", pool, 1000, { zone: "zone-z" }));
    const expected: [string, string, string][] = [
      [outsider, "not-allowed", "NamespaceNotAllowed"],
      [tenants, "privileged", "PodSecurityViolation"],
      [tenants, "no-such-pool", "PoolNotFound"],
      [tenants, "no-such-zone", "ZoneNotInPool"],
    ];
    for (const [ns, name, reason] of expected) {
      const claim = await eventually(`${name} refused`, async () => {
        const c = await getClaim(client, ns, name);
        return c.status?.reason === reason && c;
      });
      expect(phaseOf(claim)).toBe("Pending");
      expect(claim.status!.message).toBeTruthy();
      const valid = (claim.status!.conditions as { type: string; status: string }[]).find(
        (c) => c.type === "Valid",
      );
      expect(valid?.status).toBe("False");
    }
    // Refused at bid 1000, they still get nothing, and nobody lost a slot to them.
    await sleep(1000);
    const pods = await client.core.listNamespacedPod({
      namespace: tenants,
      labelSelector: "understudy.dev/role=tenant",
    });
    const names = pods.items.map((p) => p.metadata!.labels!["understudy.dev/claim"]);
    for (const [, name] of expected) expect(names).not.toContain(name);
    expect((await client.core.listNamespacedPod({ namespace: outsider })).items).toHaveLength(0);
    for (const [ns, name] of expected) await deleteClaim(client, ns, name);
  });

  it("revokes the lowest bids with the planned notice when the pool shrinks, and the tenants see it first", async () => {
    const before = await listClaims(client, tenants);
    const boundBids = before
      .filter((c) => phaseOf(c) === "Bound")
      .map((c) => c.spec.bid)
      .sort((a, b) => a - b);
    expect(boundBids).toEqual([20, 30, 40, 60, 70, 80]);
    const victims = boundBids.slice(0, 3).map(claimName);

    const noticed = new Set<string>();
    const watchNotices = (async () => {
      const deadline = Date.now() + 30_000;
      while (noticed.size < victims.length && Date.now() < deadline) {
        for (const p of await tenantPods()) {
          const a = p.metadata!.annotations ?? {};
          if (
            a["understudy.dev/revocation-reason"] === "PoolShrunk" &&
            a["understudy.dev/revocation-deadline"]
          )
            noticed.add(p.metadata!.labels!["understudy.dev/claim"]!);
        }
        await sleep(50);
      }
    })();
    await client.custom.patchClusterCustomObject(
      {
        group: GROUP,
        version: VERSION,
        plural: POOL_PLURAL,
        name: pool,
        body: { spec: { zones: ["zone-a", "zone-b", "zone-c"].map((name) => ({ name, slots: 1 })) } },
      },
      mergePatchOptions,
    );
    await watchNotices;
    expect([...noticed].sort()).toEqual([...victims].sort());

    for (const name of victims) {
      const c = await eventually(
        `${name} Revoked`,
        async () => {
          const claim = await getClaim(client, tenants, name);
          return phaseOf(claim) === "Revoked" && claim;
        },
        60_000,
      ).catch(async (err) => {
        const claim = await getClaim(client, tenants, name);
        const pods = await tenantPods();
        const leases = await slotLeases(client, opNs, pool);
        console.error(
          JSON.stringify(
            {
              status: claim.status,
              pods: pods.map((p) => [p.metadata?.name, p.metadata?.deletionTimestamp, p.status?.phase]),
              leases: leases.map((l) => [l.metadata?.name, l.spec?.holderIdentity, l.metadata?.annotations]),
            },
            null,
            1,
          ),
        );
        throw err;
      });
      expect(c.status!.reason).toBe("PoolShrunk");
      expect(c.status!.revokedAt).toBeTruthy();
    }
    await eventually(
      "3 slot Leases, 3 tenant pods",
      async () => {
        const leases = await slotLeases(client, opNs, pool);
        const pods = (await tenantPods()).filter((p) => !p.metadata?.deletionTimestamp);
        return leases.length === 3 && pods.length === 3;
      },
      60_000,
    );
    const survivors = (await listClaims(client, tenants))
      .filter((c) => phaseOf(c) === "Bound")
      .map((c) => c.spec.bid);
    expect(survivors.sort((a, b) => a - b)).toEqual([60, 70, 80]);
  });

  it("exports slot, lease and reconcile metrics", async () => {
    const m = await eventually("slot metrics", async () => {
      const text = await operator.metrics();
      return metricValue(text, "understudy_slots", { pool, zone: "zone-a", state: "leased" }) === 1 && text;
    });
    for (const zone of ["zone-a", "zone-b", "zone-c"]) {
      expect(metricValue(m, "understudy_slots", { pool, zone, state: "leased" })).toBe(1);
      expect(metricValue(m, "understudy_slots", { pool, zone, state: "free" })).toBe(0);
    }
    expect(metricValue(m, "understudy_leases_revoked_total", { pool, reason: "PoolShrunk" })).toBe(3);
    expect(
      metricValue(m, "understudy_reconcile_duration_seconds_count", { controller: "pool" }),
    ).toBeGreaterThan(0);
    expect(
      metricValue(m, "understudy_reconcile_errors_total", { controller: "pool" }) ?? 0,
    ).toBeGreaterThanOrEqual(0);
  });
});
