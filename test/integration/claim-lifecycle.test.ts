import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GROUP, POOL_PLURAL, VERSION } from "../../src/api/index.ts";
import { mergePatchOptions } from "../../src/kube/client.ts";
import { installCrds } from "../support/crds.ts";
import { deleteNamespace, eventually, freshNamespace, isPodReady, testClient } from "../support/kube.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import {
  claimManifest,
  createClaim,
  createPool,
  deletePool,
  getClaim,
  phaseOf,
  poolManifest,
  testPoolSelector,
} from "../support/pools.ts";

// A claim's life beyond Bound: it expires at its maximum duration, and a revoked claim that asked
// to be requeued waits for the next slot instead of staying Revoked.

const client = testClient();
const pool = `life-${Date.now().toString(36)}`;
let opNs: string;
let tenants: string;
let operator: OperatorProcess;

beforeAll(async () => {
  await installCrds();
  opNs = await freshNamespace(client, "understudy");
  tenants = await freshNamespace(client, "life");
  operator = await startOperator({ namespace: opNs, poolSelector: testPoolSelector(pool) });
  await createPool(
    client,
    poolManifest(
      pool,
      { zones: { "zone-a": 1, "zone-b": 1 }, allowedNamespaces: ["*"], plannedGraceSeconds: 1 },
      pool,
    ),
  );
});

afterAll(async () => {
  await operator?.stop();
  await deletePool(client, pool);
  for (const ns of [tenants, opNs]) if (ns) await deleteNamespace(client, ns);
});

const tenantPod = (claim: string) =>
  client.core.readNamespacedPod({ name: `${claim}-tenant`, namespace: tenants });

describe("a claim's life", () => {
  it("expires at its maximum duration: slot taken back with the planned notice, phase Expired", async () => {
    await createClaim(
      client,
      claimManifest(tenants, "short", pool, 5, { maxDurationSeconds: 3, zone: "zone-a" }),
    );
    const bound = await eventually("short Bound", async () => {
      const c = await getClaim(client, tenants, "short");
      return phaseOf(c) === "Bound" && c;
    });
    expect(bound.status!.expiresAt).toBeTruthy();
    expect(new Date(bound.status!.expiresAt).getTime() - new Date(bound.status!.boundAt).getTime()).toBe(
      3000,
    );
    await eventually("short's pod Ready", async () => isPodReady(await tenantPod("short")));
    const expired = await eventually(
      "short Expired",
      async () => {
        const c = await getClaim(client, tenants, "short");
        return phaseOf(c) === "Expired" && c;
      },
      20_000,
    );
    expect(expired.status!.reason).toBe("Expired");
    await eventually("short's pod gone", async () => {
      try {
        await tenantPod("short");
        return false;
      } catch {
        return true;
      }
    });
    // Expired is final: the claim does not come back for another slot.
    expect(phaseOf(await getClaim(client, tenants, "short"))).toBe("Expired");
  });

  it("goes back to Pending when revoked with requeueOnRevoke, and is bound again when a slot frees up", async () => {
    await createClaim(
      client,
      claimManifest(tenants, "patient", pool, 1, { requeueOnRevoke: true, zone: "zone-b" }),
    );
    await eventually(
      "patient Bound",
      async () => phaseOf(await getClaim(client, tenants, "patient")) === "Bound",
    );
    const shrink = (slots: number) =>
      client.custom.patchClusterCustomObject(
        {
          group: GROUP,
          version: VERSION,
          plural: POOL_PLURAL,
          name: pool,
          body: {
            spec: {
              zones: [
                { name: "zone-a", slots: 1 },
                { name: "zone-b", slots },
              ],
            },
          },
        },
        mergePatchOptions,
      );
    await shrink(0);
    const requeued = await eventually(
      "patient Pending again",
      async () => {
        const c = await getClaim(client, tenants, "patient");
        return phaseOf(c) === "Pending" && c.status?.revokedAt && c;
      },
      30_000,
    );
    expect(requeued.status!.revokedBy).toBe("pool");
    // The tenant is told it was requeued (the status message moves on to "waiting" at the next pass).
    await eventually("a Requeued Event", async () => {
      const events = await client.core.listNamespacedEvent({
        namespace: tenants,
        fieldSelector: "involvedObject.name=patient",
      });
      return events.items.some((e) => e.reason === "Requeued");
    });
    await shrink(1);
    const rebound = await eventually(
      "patient Bound again",
      async () => {
        const c = await getClaim(client, tenants, "patient");
        return phaseOf(c) === "Bound" && c;
      },
      30_000,
    );
    expect(rebound.status!.zone).toBe("zone-b");
  });
});
