import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type * as k8s from "@kubernetes/client-node";
import { FAILOVER_STEPS } from "../../src/api/index.ts";
import { labels, roles } from "../../src/controllers/labels.ts";
import { installCrds } from "../support/crds.ts";
import {
  createScopedClaim,
  createScopedPool,
  createService,
  deleteService,
  getService,
  routedEpoch,
  setHeadImage,
  TEST_IMAGE,
  waitForFailover,
  waitForServing,
} from "../support/failover.ts";
import { neverReadyImage } from "../cluster/stages.ts";
import {
  deleteNamespace,
  eventually,
  freshNamespace,
  isPodReady,
  makePodNotReady,
  testClient,
} from "../support/kube.ts";
import { startOperator, type OperatorOptions, type OperatorProcess } from "../support/operator.ts";
import {
  deleteClaim,
  deletePool,
  getClaim,
  listClaims,
  slotLeases,
  testPoolSelector,
} from "../support/pools.ts";

// Crash safety of the failover: the operator process (node src/operator/main.ts) exits with 137 at a
// crash point (after a step is recorded, before its next effect; `<step>:<n>` before the n-th effect),
// then runs again without one, under the same leader-election identity. Whatever the point, the failover completes exactly once: one new head
// at epoch 2, one revoked claim, the Service routing to epoch 2, no slot with two holders or two pods.

const client = testClient();
const run = Date.now().toString(36);

// Effects at each step of this scenario (a leased slot is revoked). The first write records
// Detected and SlotChosen together, so the first crash point is SlotChosen's:
// SlotChosen: swap the lease, tell the tenant, create the head, record Revoked and HeadStarted |
// HeadStarted: record RoutingSwitched and switch the Service, both at once |
// RoutingSwitched: delete the old head, record OldHeadFenced | OldHeadFenced: record Replenished |
// Replenished: finish | Done: right after the finish is written.
const CRASH_POINTS = [
  "SlotChosen",
  "SlotChosen:2",
  "SlotChosen:3",
  "SlotChosen:4",
  "HeadStarted",
  "RoutingSwitched",
  "RoutingSwitched:2",
  "OldHeadFenced",
  "Replenished",
  "Done",
];

let cleanup: (() => Promise<void>)[] = [];

beforeAll(async () => {
  await installCrds();
});

afterEach(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => {});
  cleanup = [];
});

/** One run: its pool (named like its scope and the operator's identity), namespaces and operator. */
interface CrashRun {
  id: string;
  ns: string;
  opNs: string;
  options: OperatorOptions;
  operator?: OperatorProcess;
}

/**
 * A pool of one slot in zone-b and one in zone-c, scoped to this run, and the operator's options.
 * Cleanup deletes the service, then `beforePool` (while the operator may still run), then the pool.
 */
async function startRun(
  kind: string,
  n: number,
  hotSpares: number,
  beforePool?: (run: CrashRun) => Promise<void>,
): Promise<CrashRun> {
  const id = `${kind}-${run}-${n}`;
  const opNs = await freshNamespace(client, `${kind}-op`);
  const ns = await freshNamespace(client, kind);
  const crashRun: CrashRun = {
    id,
    ns,
    opNs,
    options: {
      namespace: opNs,
      identity: id,
      poolSelector: testPoolSelector(id),
      env: { UNDERSTUDY_LOG_LEVEL: "info" },
    },
  };
  cleanup.push(async () => {
    await deleteService(client, ns, "kv");
    await beforePool?.(crashRun);
    await deletePool(client, id);
    await crashRun.operator?.stop();
    await Promise.all([deleteNamespace(client, ns), deleteNamespace(client, opNs)]);
  });
  await createScopedPool(client, id, id, {
    zones: { "zone-b": 1, "zone-c": 1 },
    hotSpares,
    emergencyGraceSeconds: 1,
    plannedGraceSeconds: 2,
  });
  return crashRun;
}

async function startCrashingOperator(crashRun: CrashRun, point: string): Promise<void> {
  const { options } = crashRun;
  crashRun.operator = await startOperator({
    ...options,
    env: { ...options.env, UNDERSTUDY_CRASH_AT: point },
  });
}

/** The operator exits at its crash point as if killed; it runs again, without one. */
async function restartAfterCrash(crashRun: CrashRun, point: string): Promise<void> {
  const operator = crashRun.operator!;
  const code = await Promise.race([
    operator.exited,
    new Promise((resolve) => setTimeout(() => resolve("still running"), 30_000)),
  ]);
  expect(code, `exit at ${point} (log: ${operator.logFile})`).toBe(137);
  crashRun.operator = await startOperator(crashRun.options);
}

/** The service's one head pod, once only one is left. */
async function onlyHead(ns: string): Promise<k8s.V1Pod> {
  return eventually("only the new head", async () => {
    const pods = await client.core.listNamespacedPod({
      namespace: ns,
      labelSelector: `${labels.service}=kv,${labels.role}=${roles.head}`,
    });
    return pods.items.length === 1 ? pods.items[0] : undefined;
  });
}

describe("a failover interrupted by an operator crash", () => {
  it.each(CRASH_POINTS)(
    "completes exactly once after a crash at %s",
    async (point) => {
      const crashRun = await startRun("crash", CRASH_POINTS.indexOf(point), 0, async ({ ns, operator }) => {
        // Claims go while the operator runs, so the claims let go of their finalizers.
        for (const claim of ["low-b", "high-c"]) await deleteClaim(client, ns, claim);
        if (operator?.process.exitCode === null)
          await eventually("claims gone", async () => (await listClaims(client, ns)).length === 0, 15_000);
      });
      const { id: pool, id: scope, ns, opNs } = crashRun;
      await createScopedClaim(client, scope, ns, "low-b", pool, 10, { zone: "zone-b" });
      await createScopedClaim(client, scope, ns, "high-c", pool, 50, { zone: "zone-c" });
      await createService(client, scope, ns, "kv", pool);
      await startCrashingOperator(crashRun, point);
      await waitForServing(client, ns, "kv", 1);
      for (const claim of ["low-b", "high-c"])
        await eventually(
          `${claim} Bound`,
          async () => (await getClaim(client, ns, claim)).status?.phase === "Bound",
        );

      await makePodNotReady(client, ns, "kv-head-1");
      await restartAfterCrash(crashRun, point);
      const service = await waitForFailover(client, ns, "kv", 1);
      const status = service.status!;

      // Exactly once: epoch raised by one, one count, every step once and in order.
      expect(status.epoch).toBe(2);
      expect(status.failoverCount).toBe(1);
      expect(status.lastFailover).toMatchObject({ epoch: 2, fromEpoch: 1, revokedClaim: `${ns}/low-b` });
      expect(status.lastFailover!.timeline!.map((t) => t.step)).toEqual(FAILOVER_STEPS);
      expect(await routedEpoch(client, ns, "kv")).toBe("2");

      // One head, the new one, on the revoked slot's node; nothing of a third epoch.
      const head = await onlyHead(ns);
      expect(head.metadata!.name).toBe("kv-head-2");
      expect(head.spec!.nodeName).toBe(status.head!.node);

      // One claim revoked, the other untouched.
      await eventually(
        "low-b Revoked",
        async () => (await getClaim(client, ns, "low-b")).status?.phase === "Revoked",
      );
      expect((await getClaim(client, ns, "high-c")).status?.phase).toBe("Bound");

      // The ledger: no holder on two slots, the service on exactly the head's slot, and no tenant
      // pod left on that slot.
      const leases = await slotLeases(client, opNs, pool);
      const held = leases.map((l) => l.spec?.holderIdentity ?? "").filter((h) => h !== "");
      expect(new Set(held).size).toBe(held.length);
      expect(held.filter((h) => h === `service:${ns}/kv`)).toHaveLength(1);
      const slot = leases.find((l) => l.spec?.holderIdentity === `service:${ns}/kv`)!;
      expect(slot.metadata!.name).toBe(status.head!.leaseName);
      await eventually("no tenant pod on the head's slot", async () => {
        const pods = await client.core.listNamespacedPod({
          namespace: ns,
          labelSelector: `${labels.slot}=${slot.metadata!.name},${labels.role}=${roles.tenant}`,
        });
        return pods.items.length === 0;
      });

      // And it stays done: nothing more happens once the operator has looked again.
      await waitForServing(client, ns, "kv", 2);
      expect((await getService(client, ns, "kv")).status!.failoverCount).toBe(1);
    },
    90_000,
  );
});

// Giving up the slot of a head that is not Ready in time, in this scenario (free slots in zone-b and
// zone-c; the head started on zone-b's never gets Ready): HeadStarted: delete that head, record the
// give-up (Detected, the slot abandoned) | Detected, the second time: give zone-b's slot back.
const GIVE_UP_CRASH_POINTS = ["HeadStarted", "HeadStarted:2", "Detected:2"];

describe("a slot given up (its head not Ready in time) when the operator crashes", () => {
  it.each(GIVE_UP_CRASH_POINTS)(
    "is given back once and the failover finishes on the other slot after a crash at %s",
    async (point) => {
      const crashRun = await startRun("giveup", GIVE_UP_CRASH_POINTS.indexOf(point), 2);
      const { id: pool, id: scope, ns, opNs } = crashRun;
      await createService(client, scope, ns, "kv", pool, { failover: { headStartDeadlineSeconds: 2 } });
      await startCrashingOperator(crashRun, point);
      await waitForServing(client, ns, "kv", 1);
      const names = (await slotLeases(client, opNs, pool)).map((l) => l.metadata!.name!);
      const slotB = names.find((name) => name.includes("-zone-b-"))!;

      await setHeadImage(client, ns, "kv", neverReadyImage);
      await makePodNotReady(client, ns, "kv-head-1");
      const stuck = await eventually("kv-head-2 Running, not Ready", async () => {
        const pod = await client.core.readNamespacedPod({ name: "kv-head-2", namespace: ns });
        return pod.status?.phase === "Running" && !isPodReady(pod) ? pod : undefined;
      });
      expect(stuck.metadata!.labels![labels.slot]).toBe(slotB);
      await setHeadImage(client, ns, "kv", TEST_IMAGE);
      await restartAfterCrash(crashRun, point);
      const service = await waitForFailover(client, ns, "kv", 1);
      const last = service.status!.lastFailover!;
      expect(service.status).toMatchObject({ epoch: 2, failoverCount: 1 });
      expect(last).toMatchObject({ epoch: 2, abandonedSlots: [slotB] });
      const slot = last.leaseName!;
      expect(slot).not.toBe(slotB);
      // Given up once, with its reason, then every step once more on another slot (choosing again
      // before taking anything when the pool's replacement slot comes and goes meanwhile).
      const steps = last.timeline!.map((t) => t.step);
      expect(steps.slice(0, 5)).toEqual([...FAILOVER_STEPS.slice(0, 4), "Detected"]);
      expect(steps.slice(5).filter((step, i, all) => i === 0 || all[i - 1] !== step)).toEqual(
        FAILOVER_STEPS.slice(1),
      );
      expect(last.timeline!.filter((t) => t.abandonedSlot !== undefined)).toEqual([
        expect.objectContaining({ abandonedSlot: slotB, reason: "HeadNotReady" }),
      ]);
      expect(await routedEpoch(client, ns, "kv")).toBe("2");
      expect((await onlyHead(ns)).metadata!.labels![labels.slot]).toBe(slot);
      // The ledger: the abandoned slot is free again, the service holds its head's slot and no other.
      const ledger = new Map(
        (await slotLeases(client, opNs, pool)).map((l) => [l.metadata!.name!, l.spec?.holderIdentity ?? ""]),
      );
      expect(ledger.get(slotB)).toBe("");
      expect([...ledger].filter(([, holder]) => holder === `service:${ns}/kv`)).toEqual([
        [slot, `service:${ns}/kv`],
      ]);
    },
    90_000,
  );
});
