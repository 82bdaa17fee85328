import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { binaries, kubeconfigPath } from "../cluster/config.ts";
import { cli } from "../support/cli.ts";
import {
  condition,
  createService,
  getService,
  waitForFailover,
  waitForServing,
  type ServiceObject,
} from "../support/failover.ts";
import { eventually, makePodNotReady, testClient } from "../support/kube.ts";
import { operatorSuite } from "../support/operator-suite.ts";
import { getPool } from "../support/pools.ts";

// Maintenance mode on the real test cluster, run by the real operator: automatic failover paused for
// one service or a whole pool (with the `understudy pause` / `resume` commands) leaves a failed head
// reported but in place, and resuming fails it over.

const client = testClient();
const suite = operatorSuite("mt");

async function world() {
  const { pool, ns } = await suite.world({ "zone-b": 1 }, 1);
  await createService(client, suite.scope, ns, "kv", pool);
  await waitForServing(client, ns, "kv", 1);
  return { pool, ns };
}

const kubectl = async (...args: string[]) =>
  (
    await promisify(execFile)(binaries.kubectl, [
      "--kubeconfig",
      process.env.KUBECONFIG ?? kubeconfigPath,
      ...args,
    ])
  ).stdout;

/** The head failed and reported, and, over a few seconds, still not failed over. */
async function expectHeldWhilePaused(ns: string, reason: string): Promise<ServiceObject> {
  await makePodNotReady(client, ns, "kv-head-1");
  const reported = await eventually("the failed head reported while paused", async () => {
    const s = await getService(client, ns, "kv");
    return condition(s, "HeadAvailable")?.status === "False" &&
      condition(s, "FailoverPaused")?.status === "True"
      ? s
      : undefined;
  });
  expect(condition(reported, "FailoverPaused")).toMatchObject({ reason });
  // Longer than a failover takes here (about a second with a hot spare).
  await new Promise((resolve) => setTimeout(resolve, 4000));
  const held = await getService(client, ns, "kv");
  expect(held.status?.failover).toBeUndefined();
  expect(held.status).toMatchObject({ epoch: 1, head: { pod: "kv-head-1" } });
  expect(held.status?.failoverCount ?? 0).toBe(0);
  expect(held.status?.phase).not.toBe("Ready");
  const heads = await client.core.listNamespacedPod({
    namespace: ns,
    labelSelector: "understudy.dev/service=kv,understudy.dev/role=head",
  });
  expect(heads.items.map((p) => p.metadata!.name)).toEqual(["kv-head-1"]);
  return held;
}

describe("automatic failover paused", () => {
  it("for one service: a failed head is reported, not replaced, until `understudy resume`", async () => {
    const { ns } = await world();
    expect(await cli("pause", "kv", "-n", ns)).toContain(`paused for ${ns}/kv`);
    expect((await getService(client, ns, "kv")).spec).toMatchObject({ failover: { paused: true } });
    // The printer column shows it.
    const table = await kubectl("get", "storageservices", "-n", ns);
    expect(table.split("\n")[0]).toMatch(/\bPAUSED\b/);
    expect(table.split("\n")[1]).toMatch(/\btrue\b/);

    await expectHeldWhilePaused(ns, "ServicePaused");

    expect(await cli("resume", "kv", "-n", ns)).toContain(`resumed for ${ns}/kv`);
    const moved = await waitForFailover(client, ns, "kv", 1);
    expect(moved.status).toMatchObject({
      epoch: 2,
      lastFailover: { reason: "PodNotReady", toZone: "zone-b" },
    });
    const resumed = await eventually("FailoverPaused=False", async () => {
      const s = await getService(client, ns, "kv");
      return condition(s, "FailoverPaused")?.status === "False" ? s : undefined;
    });
    expect(condition(resumed, "FailoverPaused")).toMatchObject({ reason: "Resumed" });

    // Maintenance over: `understudy failback` brings the head home from its slot.
    expect(await cli("failback", "kv", "-n", ns)).toContain(`failback requested for ${ns}/kv`);
    const home = await eventually("the failback", async () => {
      const s = await getService(client, ns, "kv");
      return s.status?.lastFailback?.outcome === "Succeeded" && !s.status.failback ? s : undefined;
    });
    expect(home.status).toMatchObject({ epoch: 3, head: { zone: "zone-a" } });
  });

  it("for a whole pool: every service of the pool waits until the pool resumes", async () => {
    const { pool, ns } = await world();
    expect(await cli("pause", "--pool", pool)).toContain(`pool ${pool}`);
    expect(((await getPool(client, pool)) as { spec?: unknown }).spec).toMatchObject({
      failoverPaused: true,
    });
    const pools = await kubectl("get", "contingencypools", pool);
    expect(pools.split("\n")[0]).toMatch(/\bFAILOVER PAUSED\b/);

    await expectHeldWhilePaused(ns, "PoolPaused");

    await cli("resume", "--pool", pool);
    const moved = await waitForFailover(client, ns, "kv", 1);
    expect(moved.status).toMatchObject({ epoch: 2 });
    await eventually("FailoverPaused=False", async () => {
      const s = await getService(client, ns, "kv");
      return condition(s, "FailoverPaused")?.status === "False";
    });
  });

  it("refuses a pause that names neither a service nor a pool", async () => {
    await expect(cli("pause")).rejects.toThrow(/a service or --pool/);
  });
});
