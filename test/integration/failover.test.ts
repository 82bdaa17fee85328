import type * as k8s from "@kubernetes/client-node";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FAILOVER_STEPS, GROUP, POOL_PLURAL, VERSION } from "../../src/api/index.ts";
import { createClient, DataplaneError } from "../../src/dataplane/client.ts";
import { startHead, type HeadHandle } from "../../src/dataplane/head.ts";
import { formatIdentity, IDENTITY_HEADER } from "../../src/dataplane/identity.ts";
import { createLogger } from "../../src/dataplane/log.ts";
import { epochOfVersion } from "../../src/dataplane/record.ts";
import { startServer, type ServerHandle } from "../../src/dataplane/server.ts";
import { mergePatchOptions } from "../../src/kube/client.ts";
import { installCrds } from "../support/crds.ts";
import {
  annotateService,
  condition,
  createScopedClaim,
  createScopedPool,
  createService,
  deleteService,
  eventsOf,
  getService,
  routedEpoch,
  setHeadImage,
  TEST_IMAGE,
  waitForFailover,
  waitForServing,
  type ServiceObject,
} from "../support/failover.ts";
import { neverReadyImage } from "../cluster/stages.ts";
import { LedgerHistory } from "../support/ledger-history.ts";
import {
  deleteNamespace,
  eventually,
  freshNamespace,
  isPodReady,
  makeNodeNotReady,
  makePodNotReady,
  makeZoneNotReady,
  restoreNode,
  testClient,
  testKubeConfig,
} from "../support/kube.ts";
import { metricValue, startOperator, type OperatorProcess } from "../support/operator.ts";
import { deletePool, getClaim, getPool, slotLeases, testPoolSelector } from "../support/pools.ts";

// Head failover on the real test cluster, run by the real operator process (node
// src/operator/main.ts): the head made NotReady, its node or its whole zone lost, its probe failing,
// a switchover asked for by hand, and the failback. Each test has its own pool and namespace; the
// operator manages only this file's pools (--pool-selector), so concurrent runs keep apart.

const client = testClient();
const run = Date.now().toString(36);
const scope = `failover-${run}`;
let counter = 0;
let operator: OperatorProcess;
let opNs: string;

interface World {
  scope: string;
  pool: string;
  opNs: string;
  ns: string;
}

const worlds: World[] = [];
const nodesToRestore = new Set<string>();

beforeAll(async () => {
  await installCrds();
  opNs = await freshNamespace(client, "fo-op");
  operator = await startOperator({
    namespace: opNs,
    poolSelector: testPoolSelector(scope),
    env: { UNDERSTUDY_LOG_LEVEL: "info" },
  });
});

afterEach(async () => {
  await Promise.all([...nodesToRestore].map((n) => restoreNode(client, n)));
  nodesToRestore.clear();
  // Removed while the operator runs, so claims let go of their finalizers.
  for (const world of worlds.splice(0)) {
    await deletePool(client, world.pool);
    await deleteNamespace(client, world.ns);
  }
});

afterAll(async () => {
  await Promise.all([...nodesToRestore].map((n) => restoreNode(client, n)));
  await operator?.stop();
  if (opNs) await deleteNamespace(client, opNs);
});

async function world(zones: Record<string, number>, hotSpares = 0): Promise<World> {
  const pool = `fo-${run}-${counter++}`;
  const ns = await freshNamespace(client, "fo");
  await createScopedPool(client, pool, scope, {
    zones,
    hotSpares,
    emergencyGraceSeconds: 1,
    plannedGraceSeconds: 2,
  });
  const w = { scope, pool, opNs, ns };
  worlds.push(w);
  return w;
}

async function boundClaim(w: World, name: string, bid: number, zone: string) {
  await createScopedClaim(client, w.scope, w.ns, name, w.pool, bid, { zone });
  return eventually(`claim ${name} Bound`, async () => {
    const claim = await getClaim(client, w.ns, name);
    return claim.status?.phase === "Bound" ? claim : undefined;
  });
}

async function holders(w: World): Promise<Map<string, string>> {
  const leases = await slotLeases(client, w.opNs, w.pool);
  return new Map(leases.map((l) => [l.metadata!.name!, l.spec?.holderIdentity ?? ""]));
}

async function headPods(w: World, service: string): Promise<k8s.V1Pod[]> {
  const list = await client.core.listNamespacedPod({
    namespace: w.ns,
    labelSelector: `understudy.dev/service=${service},understudy.dev/role=head`,
  });
  return list.items.filter((p) => !p.metadata?.deletionTimestamp);
}

/** The invariants every finished failover leaves: one head, routed, on the slot the ledger gives the service. */
async function expectOneServingHead(w: World, service: ServiceObject, name: string) {
  const status = service.status!;
  const heads = await eventually("the old head to go", async () => {
    const pods = await headPods(w, name);
    return pods.length === 1 ? pods : undefined;
  });
  expect(heads[0]!.metadata!.name).toBe(status.head!.pod);
  expect(heads[0]!.metadata!.labels!["understudy.dev/epoch"]).toBe(String(status.epoch));
  expect(await routedEpoch(client, w.ns, name)).toBe(String(status.epoch));
  if (status.head?.leaseName) {
    expect(heads[0]!.spec!.nodeName).toBe(status.head.node);
    const ledger = await holders(w);
    expect(ledger.get(status.head.leaseName)).toBe(`service:${w.ns}/${name}`);
    // The service holds exactly the head's slot.
    expect([...ledger.values()].filter((h) => h === `service:${w.ns}/${name}`)).toHaveLength(1);
  }
}

describe("failover of a head pod made NotReady", () => {
  it("revokes the lowest bid outside the failed zone, starts epoch 2 there, switches the Service and replenishes", async () => {
    const w = await world({ "zone-a": 1, "zone-b": 1, "zone-c": 1 });
    // Every slot leased (hotSpares 0): the failover must revoke one.
    await boundClaim(w, "cheap-a", 1, "zone-a");
    await boundClaim(w, "low-b", 10, "zone-b");
    await boundClaim(w, "high-c", 50, "zone-c");
    await createService(client, w.scope, w.ns, "kv", w.pool);
    const { pod: head1 } = await waitForServing(client, w.ns, "kv", 1);
    expect(head1.metadata!.name).toBe("kv-head-1");
    const nodeZone = (await client.core.readNode({ name: head1.spec!.nodeName! })).metadata!.labels![
      "topology.kubernetes.io/zone"
    ];
    expect(nodeZone).toBe("zone-a");

    await makePodNotReady(client, w.ns, "kv-head-1");
    const service = await waitForFailover(client, w.ns, "kv", 1);
    const last = service.status!.lastFailover!;
    expect(last).toMatchObject({
      reason: "PodNotReady",
      fromZone: "zone-a",
      toZone: "zone-b",
      fromPod: "kv-head-1",
      fromEpoch: 1,
      epoch: 2,
      revokedClaim: `${w.ns}/low-b`,
      step: "Done",
    });
    expect(last.durationMilliseconds).toBeGreaterThanOrEqual(0);
    expect(last.timeline!.map((t) => t.step)).toEqual(FAILOVER_STEPS);
    expect(service.status!.epoch).toBe(2);
    expect(service.status!.failoverCount).toBe(1);
    expect(service.status!.head).toMatchObject({
      pod: "kv-head-2",
      zone: "zone-b",
      leaseName: last.leaseName,
    });
    await expectOneServingHead(w, service, "kv");

    // The victim is told why, and the others keep their slots.
    const victim = await eventually("low-b Revoked", async () => {
      const claim = await getClaim(client, w.ns, "low-b");
      return claim.status?.phase === "Revoked" ? claim : undefined;
    });
    // Told as a failover, whoever got to it first (this controller or the claim controller).
    expect(victim.status).toMatchObject({ reason: "Failover" });
    expect((await getClaim(client, w.ns, "cheap-a")).status?.phase).toBe("Bound");
    expect((await getClaim(client, w.ns, "high-c")).status?.phase).toBe("Bound");

    // The pool replaced the slot: zone-b has a tenant slot again besides the reserved one.
    const ledger = await holders(w);
    const zoneB = [...ledger.entries()].filter(([name]) => name.includes("-zone-b-"));
    expect(zoneB.filter(([, holder]) => !holder.startsWith("service:"))).toHaveLength(1);

    // Events are written apart from the failover's own requests: they may land just after Done.
    const expectedReasons = ["HeadFailed", "FailoverSlotChosen", "FailoverRoutingSwitched", "FailoverDone"];
    const reasons = await eventually("the failover's Events", async () => {
      const seen = (await eventsOf(client, w.ns, "kv")).map((e) => e.reason);
      return expectedReasons.every((reason) => seen.includes(reason)) ? seen : undefined;
    });
    for (const reason of expectedReasons) expect(reasons).toContain(reason);

    // The operator's metrics: the failover by reason and outcome, its switch time, the epoch.
    const metrics = await operator.metrics();
    expect(
      metricValue(metrics, "understudy_failovers_total", { reason: "PodNotReady", outcome: "Succeeded" }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      metricValue(metrics, "understudy_failover_switch_seconds_count", { reason: "PodNotReady" }),
    ).toBeGreaterThanOrEqual(1);
    const kv = { service_namespace: w.ns, service_name: "kv", pool: w.pool };
    expect(metricValue(metrics, "understudy_storage_service_epoch", kv)).toBe(2);
    expect(
      metricValue(metrics, "understudy_failovers_total", {
        ...kv,
        reason: "PodNotReady",
        outcome: "Succeeded",
      }),
    ).toBe(1);
  });

  it("takes a free slot before revoking any lease", async () => {
    const w = await world({ "zone-b": 1, "zone-c": 1 }, 1);
    await boundClaim(w, "tenant-b", 1, "zone-b");
    await createService(client, w.scope, w.ns, "kv", w.pool);
    await waitForServing(client, w.ns, "kv", 1);
    await makePodNotReady(client, w.ns, "kv-head-1");
    const service = await waitForFailover(client, w.ns, "kv", 1);
    expect(service.status!.lastFailover).toMatchObject({ toZone: "zone-c", epoch: 2 });
    expect(service.status!.lastFailover!.revokedClaim).toBeUndefined();
    expect((await getClaim(client, w.ns, "tenant-b")).status?.phase).toBe("Bound");
    await expectOneServingHead(w, service, "kv");
  });

  it("falls back to the failed head's own zone when no other zone has a slot", async () => {
    const w = await world({ "zone-a": 1 });
    await createService(client, w.scope, w.ns, "kv", w.pool);
    await waitForServing(client, w.ns, "kv", 1);
    const before = await getService(client, w.ns, "kv");
    expect(condition(before, "ContingencyAvailable")).toMatchObject({ status: "True" });
    expect(condition(before, "ContingencyAvailable")!.message).toContain("no other zone");
    // The pool sees it too: the head would find a slot alone, but none if its zone failed.
    const capacity = await eventually("the pool's failover capacity counting kv", async () => {
      const c = (await getPool(client, w.pool)).status?.failoverCapacity;
      return c?.services === 1 && c;
    });
    expect(capacity).toEqual({ services: 1, singleFailure: 1, zoneOutage: 0, worstZone: "zone-a" });
    await makePodNotReady(client, w.ns, "kv-head-1");
    const service = await waitForFailover(client, w.ns, "kv", 1);
    expect(service.status!.lastFailover).toMatchObject({ fromZone: "zone-a", toZone: "zone-a", epoch: 2 });
    await expectOneServingHead(w, service, "kv");
  });

  it("with no capacity at all reports ContingencyAvailable=False and finishes once the pool grows", async () => {
    const w = await world({ "zone-b": 0 });
    await createService(client, w.scope, w.ns, "kv", w.pool);
    await waitForServing(client, w.ns, "kv", 1);
    await eventually("ContingencyAvailable=False", async () => {
      const s = await getService(client, w.ns, "kv");
      return condition(s, "ContingencyAvailable")?.status === "False" ? s : undefined;
    });
    await makePodNotReady(client, w.ns, "kv-head-1");
    const waiting = await eventually("a failover waiting for capacity", async () => {
      const s = await getService(client, w.ns, "kv");
      return s.status?.failover?.step === "Detected" && s.status.phase === "FailingOver" ? s : undefined;
    });
    expect(condition(waiting, "ContingencyAvailable")).toMatchObject({ status: "False", reason: "NoSlots" });
    await eventually("a NoContingencyCapacity warning", async () =>
      (await eventsOf(client, w.ns, "kv")).some(
        (e) => e.reason === "NoContingencyCapacity" && e.type === "Warning",
      )
        ? true
        : undefined,
    );

    await client.custom.patchClusterCustomObject(
      {
        group: GROUP,
        version: VERSION,
        plural: POOL_PLURAL,
        name: w.pool,
        body: { spec: { zones: [{ name: "zone-b", slots: 1 }] } },
      },
      mergePatchOptions,
    );
    const service = await waitForFailover(client, w.ns, "kv", 1);
    expect(service.status!.lastFailover).toMatchObject({ toZone: "zone-b", epoch: 2 });
    await expectOneServingHead(w, service, "kv");
  });
});

describe("a new head that never becomes Ready", () => {
  it("gives its slot back to the pool after the start deadline and finishes the failover on another slot", async () => {
    const w = await world({ "zone-b": 1, "zone-c": 1 }, 2);
    // Every slot Lease and every pod on a slot, as the API server has them, from here to the end.
    const history = new LedgerHistory(testKubeConfig(), w.opNs, w.ns, w.pool);
    await history.start();
    try {
      await createService(client, w.scope, w.ns, "kv", w.pool, { failover: { headStartDeadlineSeconds: 3 } });
      await waitForServing(client, w.ns, "kv", 1);
      const slotB = [...(await holders(w)).keys()].find((name) => name.includes("-zone-b-"))!;

      // A new head image is rolled out as a switchover, and heads of this image never get Ready; the
      // run takes zone-b's free slot first.
      await setHeadImage(client, w.ns, "kv", neverReadyImage);
      const stuck = await eventually("kv-head-2 Running but not Ready on zone-b's slot", async () => {
        const pod = await client.core.readNamespacedPod({ name: "kv-head-2", namespace: w.ns });
        const onB = pod.metadata?.labels?.["understudy.dev/slot"] === slotB;
        return onB && pod.status?.phase === "Running" && !isPodReady(pod) ? pod : undefined;
      });
      const stuckNode = stuck.spec!.nodeName!;
      expect((await holders(w)).get(slotB)).toBe(`service:${w.ns}/kv`);
      // The next head the operator starts is a good one again.
      await setHeadImage(client, w.ns, "kv", TEST_IMAGE);

      const service = await waitForFailover(client, w.ns, "kv", 1);
      const last = service.status!.lastFailover!;
      expect(last).toMatchObject({
        reason: "ImageRollout",
        epoch: 2,
        abandonedSlots: [slotB],
        abandonedNodes: [stuckNode],
      });
      const slot = last.leaseName!;
      expect(slot).not.toBe(slotB);
      // Given up once; then every step once more, on another slot (the pool may add and remove its
      // replacement slot meanwhile, which makes the run choose again before taking anything).
      const steps = last.timeline!.map((t) => t.step);
      expect(steps.slice(0, 5)).toEqual([...FAILOVER_STEPS.slice(0, 4), "Detected"]);
      expect(steps.slice(5).filter((step, i, all) => i === 0 || all[i - 1] !== step)).toEqual(
        FAILOVER_STEPS.slice(1),
      );
      const givenUp = last.timeline![4]!;
      expect(givenUp).toMatchObject({ step: "Detected", abandonedSlot: slotB, reason: "HeadNotReady" });
      expect(Date.parse(givenUp.at) - Date.parse(last.timeline![3]!.at)).toBeGreaterThanOrEqual(3000);
      expect(service.status!.head!.node).not.toBe(stuckNode);
      await expectOneServingHead(w, service, "kv");
      const reasons = (await eventsOf(client, w.ns, "kv")).map((e) => e.reason);
      expect(reasons).toContain("FailoverSlotAbandoned");
      // Counted once as an attempt given up, once as the failover that then succeeded.
      const kv = { service_namespace: w.ns, service_name: "kv", pool: w.pool, reason: "ImageRollout" };
      const metrics = await operator.metrics();
      expect(metricValue(metrics, "understudy_failovers_total", { ...kv, outcome: "SlotAbandoned" })).toBe(1);
      expect(metricValue(metrics, "understudy_failovers_total", { ...kv, outcome: "Succeeded" })).toBe(1);

      // The ledger, read back from the API server: the abandoned slot is the pool's again, and the
      // service holds exactly the slot its head runs on (checked in expectOneServingHead).
      const ledger = await holders(w);
      expect(ledger.get(slotB)).toBe("");
      expect(ledger.get(slot)).toBe(`service:${w.ns}/kv`);
      // Its history: the abandoned slot went to the service and back once; the head that did not get
      // Ready was gone before it went back, and the good head started only on a slot the service held.
      await eventually("the history to reach the end", () =>
        history.leases.some((l) => l.lease === slot && l.holder === `service:${w.ns}/kv`),
      );
      const holdersOfB = history.leases
        .filter((l) => l.lease === slotB)
        .map((l) => l.holder)
        .filter((holder, i, all) => i === 0 || all[i - 1] !== holder);
      expect(holdersOfB).toEqual(["", `service:${w.ns}/kv`, ""]);
      const heads = [...history.pods.values()]
        .filter((p) => p.role === "head")
        .sort((a, b) => a.createdRv - b.createdRv);
      expect(heads.map((h) => [h.name, h.slot])).toEqual([
        ["kv-head-2", slotB],
        ["kv-head-2", slot],
      ]);
      expect(heads[0]!.deletedRv).toBeLessThan(heads[1]!.createdRv);
      expect(history.violations()).toEqual([]);
    } finally {
      history.stop();
    }
  });
});

describe("failover when the head's node or zone fails", () => {
  it("moves the head off a NotReady node, without waiting for eviction", async () => {
    const w = await world({ "zone-a": 1, "zone-b": 1, "zone-c": 1 }, 3);
    await createService(client, w.scope, w.ns, "kv", w.pool);
    const { pod } = await waitForServing(client, w.ns, "kv", 1);
    const node = pod.spec!.nodeName!;
    nodesToRestore.add(node);
    await makeNodeNotReady(client, node);
    const service = await waitForFailover(client, w.ns, "kv", 1);
    expect(service.status!.lastFailover).toMatchObject({ reason: "NodeNotReady", fromNode: node, epoch: 2 });
    expect(service.status!.lastFailover!.toZone).not.toBe("zone-a");
    expect(service.status!.head!.node).not.toBe(node);
    // The old head sat on a node that cannot confirm its end: it was removed at once.
    await expect(client.core.readNamespacedPod({ name: "kv-head-1", namespace: w.ns })).rejects.toMatchObject(
      {
        code: 404,
      },
    );
    await expectOneServingHead(w, service, "kv");
  });

  it("moves the head out of a zone whose nodes all went NotReady", async () => {
    const w = await world({ "zone-a": 1, "zone-b": 1, "zone-c": 1 }, 3);
    await createService(client, w.scope, w.ns, "kv", w.pool);
    await waitForServing(client, w.ns, "kv", 1);
    const nodes = await makeZoneNotReady(client, "zone-a");
    for (const n of nodes) nodesToRestore.add(n);
    const service = await waitForFailover(client, w.ns, "kv", 1);
    expect(["zone-b", "zone-c"]).toContain(service.status!.lastFailover!.toZone);
    expect(service.status!.lastFailover!.reason).toBe("NodeNotReady");
    await expectOneServingHead(w, service, "kv");
  });

  it("spreads the heads one zone outage moves over the surviving zones and their nodes", async () => {
    // Three free slots in each surviving zone, over its two nodes: the first zone alone could take
    // every head, two of them on one node.
    const w = await world({ "zone-b": 3, "zone-c": 3 }, 6);
    const names = ["kv-1", "kv-2", "kv-3"];
    for (const name of names) await createService(client, w.scope, w.ns, name, w.pool);
    for (const name of names) await waitForServing(client, w.ns, name, 1);
    const nodes = await makeZoneNotReady(client, "zone-a");
    for (const n of nodes) nodesToRestore.add(n);
    const moved = await Promise.all(names.map((name) => waitForFailover(client, w.ns, name, 1)));
    const zones = moved.map((s) => s.status!.lastFailover!.toZone!);
    const perZone = new Map<string, number>();
    for (const zone of zones) perZone.set(zone, (perZone.get(zone) ?? 0) + 1);
    expect([...perZone.keys()].sort()).toEqual(["zone-b", "zone-c"]);
    expect(Math.max(...perZone.values())).toBe(2);
    expect(new Set(moved.map((s) => s.status!.head!.node)).size).toBe(3);
    for (const [i, name] of names.entries()) await expectOneServingHead(w, moved[i]!, name);
  });
});

describe("failure detection by the operator's probe", () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  it("fails over a head whose /healthz stops answering while its pod still looks Ready", async () => {
    const w = await world({ "zone-b": 1 }, 1);
    await createService(client, w.scope, w.ns, "kv", w.pool, {
      failureDetection: { probePeriodMilliseconds: 100, probeTimeoutMilliseconds: 50, failureThreshold: 3 },
    });
    const { pod, service: serving } = await waitForServing(client, w.ns, "kv", 1);
    // Play the head process on its pod IP (KWOK hands out loopback addresses), answering as itself.
    let answered = 0;
    const identity = {
      service: serving.metadata!.uid!,
      role: "head",
      pod: pod.metadata!.name!,
      epoch: 1,
    } as const;
    server = createServer((_req, res) => {
      answered++;
      res.setHeader(IDENTITY_HEADER, formatIdentity(identity));
      res.end("ok");
    });
    await new Promise<void>((resolve) => server!.listen(7000, pod.status!.podIP!, resolve));
    await eventually("the prober to reach the head", () => answered >= 2);
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
    const service = await waitForFailover(client, w.ns, "kv", 1);
    expect(service.status!.lastFailover).toMatchObject({ reason: "ProbeFailed", toZone: "zone-b", epoch: 2 });
    await expectOneServingHead(w, service, "kv");
  });
});

describe("another service's head at the head's address", () => {
  // A real data plane of another service: three servers and its head, the head bound to the pod IP
  // of our service's head, as when a pod IP is reused while an old head still runs on a cut-off node.
  const quiet = createLogger("foreign", "silent");
  let dirs: string[] = [];
  let servers: ServerHandle[] = [];
  let foreign: HeadHandle | undefined;
  afterEach(async () => {
    await foreign?.close();
    await Promise.all(servers.map((s) => s.close()));
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    foreign = undefined;
    servers = [];
    dirs = [];
  });

  async function foreignService(listen: string): Promise<HeadHandle> {
    const identity = { service: "uid-of-another-service", pod: "other-head-3" };
    dirs = ["zone-a", "zone-b", "zone-c"].map(() => mkdtempSync(join(tmpdir(), "foreign-server-")));
    servers = await Promise.all(
      dirs.map((dataDir, i) =>
        startServer({
          listen: "127.0.0.1:0",
          dataDir,
          zone: `zone-${"abc"[i]}`,
          token: "foreign-token",
          identity: { service: identity.service, pod: `other-server-${i}` },
          logger: quiet,
        }),
      ),
    );
    const head = await startHead({
      listen,
      token: "foreign-token",
      servers: servers.map((s, i) => ({ zone: `zone-${"abc"[i]}`, address: s.address })),
      epoch: 3,
      identity,
      logger: quiet,
    });
    await head.ready;
    return head;
  }

  it("is found out by the probe within the detection settings and failed over; a client refuses it", async () => {
    const w = await world({ "zone-b": 1 }, 1);
    const detection = { probePeriodMilliseconds: 100, probeTimeoutMilliseconds: 50, failureThreshold: 3 };
    await createService(client, w.scope, w.ns, "kv", w.pool, { failureDetection: detection });
    const { pod, service: serving } = await waitForServing(client, w.ns, "kv", 1);
    const headUrl = `http://${pod.status!.podIP!}:7000`;

    // The head pod looks Ready; what answers at its address is another service's head, serving.
    const foreignAt = Date.now();
    foreign = await foreignService(`${pod.status!.podIP!}:7000`);
    const health = await fetch(`${headUrl}/healthz`);
    expect(health.status).toBe(200);

    // A client of kv that reaches it refuses it: nothing is written there, for kv or the other service.
    const kvClient = createClient({
      resolveHead: async () => headUrl,
      serviceUid: serving.metadata!.uid!,
      maxAttempts: 3,
      initialBackoffMs: 1,
    });
    const refused = await kvClient.put("k", "for-kv").catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DataplaneError);
    expect((refused as DataplaneError).code).toBe("unavailable");
    expect((refused as Error).message).toContain("not the head this client looks for");
    const otherClient = createClient({
      resolveHead: async () => foreign!.url,
      serviceUid: "uid-of-another-service",
    });
    expect(await otherClient.get("k")).toEqual({ found: false, value: null, version: 0 });

    // The operator's probe fails the head and a failover follows, as for any failed head.
    const service = await waitForFailover(client, w.ns, "kv", 1);
    const last = service.status!.lastFailover!;
    expect(last).toMatchObject({ reason: "ProbeFailed", toZone: "zone-b", epoch: 2 });
    // Three probes 100 ms apart, then the reconcile: well under two seconds on a busy machine.
    const detectedAfterMs = Date.parse(last.startedAt) - foreignAt;
    expect(detectedAfterMs).toBeLessThan(
      detection.failureThreshold * detection.probePeriodMilliseconds + 2_000,
    );
    const failed = await eventually("the HeadFailed Event", async () =>
      (await eventsOf(client, w.ns, "kv")).find((e) => e.reason === "HeadFailed"),
    );
    expect(failed.message).toContain("another process answers at its address");
    expect(failed.message).toContain("service uid-of-another-service");
    await expectOneServingHead(w, service, "kv");
    // The other service's head was never fenced or harmed: it still serves its own clients.
    expect(epochOfVersion((await otherClient.put("still-mine", "yes")).version)).toBe(3);
  });
});

describe("switchover and failback", () => {
  it("a switchover annotation moves a healthy head once per value, then Manual failback brings it home", async () => {
    const w = await world({ "zone-b": 1 }, 1);
    await createService(client, w.scope, w.ns, "kv", w.pool);
    await waitForServing(client, w.ns, "kv", 1);
    await annotateService(client, w.ns, "kv", { "understudy.dev/switchover": "req-1" });
    const moved = await waitForFailover(client, w.ns, "kv", 1);
    expect(moved.status!.lastFailover).toMatchObject({ reason: "Manual", toZone: "zone-b", epoch: 2 });
    expect(moved.status!.handledSwitchover).toBe("req-1");
    await expectOneServingHead(w, moved, "kv");
    const slot = moved.status!.head!.leaseName!;

    // The same value again is not a new request.
    await annotateService(client, w.ns, "kv", { "understudy.dev/switchover": "req-1", touched: "yes" });
    await waitForServing(client, w.ns, "kv", 2);
    expect((await getService(client, w.ns, "kv")).status!.failoverCount).toBe(1);

    await annotateService(client, w.ns, "kv", { "understudy.dev/failback": "home-1" });
    const home = await eventually("the failback", async () => {
      const s = await getService(client, w.ns, "kv");
      return s.status?.lastFailback?.outcome === "Succeeded" && !s.status.failback ? s : undefined;
    });
    expect(home.status).toMatchObject({ epoch: 3, handledFailback: "home-1" });
    expect(home.status!.head).toMatchObject({ pod: "kv-head-3", zone: "zone-a" });
    expect(home.status!.head!.leaseName).toBeUndefined();
    await expectOneServingHead(w, home, "kv");
    // The slot went back to the pool.
    expect((await holders(w)).get(slot)).not.toBe(`service:${w.ns}/kv`);
  });

  it("a switchover that would revoke a tenant waits for the cooldown after the last failover, then starts", async () => {
    const w = await world({ "zone-b": 1, "zone-c": 1 });
    await boundClaim(w, "tenant-b", 1, "zone-b");
    await boundClaim(w, "tenant-c", 5, "zone-c");
    const cooldownSeconds = 8;
    await createService(client, w.scope, w.ns, "kv", w.pool, {
      failover: { switchoverCooldownSeconds: cooldownSeconds },
    });
    await waitForServing(client, w.ns, "kv", 1);
    // A failed head is never held back: the failover revokes the lowest bid at once.
    await makePodNotReady(client, w.ns, "kv-head-1");
    const first = await waitForFailover(client, w.ns, "kv", 1);
    expect(first.status!.lastFailover).toMatchObject({
      reason: "PodNotReady",
      revokedClaim: `${w.ns}/tenant-b`,
    });
    const notBefore = Date.parse(first.status!.lastFailover!.finishedAt!) + cooldownSeconds * 1000;

    // Asked for right away, a switchover would take zone-c's slot from tenant-c: it waits.
    await annotateService(client, w.ns, "kv", { "understudy.dev/switchover": "soon" });
    const waiting = await eventually("SwitchoverPending=True", async () => {
      const s = await getService(client, w.ns, "kv");
      return condition(s, "SwitchoverPending")?.status === "True" ? s : undefined;
    });
    expect(Date.now()).toBeLessThan(notBefore);
    const pending = condition(waiting, "SwitchoverPending")!;
    expect(pending.reason).toBe("Cooldown");
    expect(pending.message).toContain(`claim ${w.ns}/tenant-c`);
    expect(pending.message).toContain(`starts at ${new Date(notBefore).toISOString()}`);
    expect(waiting.status).toMatchObject({ failoverCount: 1, epoch: 2 });
    expect(waiting.status!.failover).toBeUndefined();
    expect(waiting.status!.handledSwitchover).not.toBe("soon");
    expect((await getClaim(client, w.ns, "tenant-c")).status?.phase).toBe("Bound");
    // The Event is recorded after the status is written: it may arrive a moment later.
    await eventually("the SwitchoverDelayed Event", async () =>
      (await eventsOf(client, w.ns, "kv")).some((e) => e.reason === "SwitchoverDelayed"),
    );

    // Once the cooldown has passed it starts by itself, and takes the slot it said it would.
    const moved = await waitForFailover(client, w.ns, "kv", 2, 60_000);
    const second = moved.status!.lastFailover!;
    expect(second).toMatchObject({
      reason: "Manual",
      revokedClaim: `${w.ns}/tenant-c`,
      toZone: "zone-c",
      epoch: 3,
    });
    expect(Date.parse(second.startedAt)).toBeGreaterThanOrEqual(notBefore);
    expect(moved.status!.handledSwitchover).toBe("soon");
    expect(condition(moved, "SwitchoverPending")).toMatchObject({ status: "False" });
    await expectOneServingHead(w, moved, "kv");
  });

  it("Automatic failback returns the head to its primary zone once the zone has been healthy a while", async () => {
    const w = await world({ "zone-b": 1 }, 1);
    await createService(client, w.scope, w.ns, "kv", w.pool, {
      failback: { policy: "Automatic", stableSeconds: 1 },
    });
    await waitForServing(client, w.ns, "kv", 1);
    await makePodNotReady(client, w.ns, "kv-head-1");
    await waitForFailover(client, w.ns, "kv", 1);
    const home = await eventually("the automatic failback", async () => {
      const s = await getService(client, w.ns, "kv");
      return s.status?.lastFailback?.outcome === "Succeeded" && !s.status.failback ? s : undefined;
    });
    expect(home.status).toMatchObject({ epoch: 3 });
    expect(home.status!.lastFailback).toMatchObject({ reason: "Automatic", toZone: "zone-a", epoch: 3 });
    await expectOneServingHead(w, home, "kv");
    expect([...(await holders(w)).values()]).not.toContain(`service:${w.ns}/kv`);
  });

  it("a deleted service gives its slot back", async () => {
    const w = await world({ "zone-b": 1 }, 1);
    await createService(client, w.scope, w.ns, "kv", w.pool);
    await waitForServing(client, w.ns, "kv", 1);
    await annotateService(client, w.ns, "kv", { "understudy.dev/switchover": "go" });
    await waitForFailover(client, w.ns, "kv", 1);
    await deleteService(client, w.ns, "kv");
    await eventually("the slot released", async () =>
      [...(await holders(w)).values()].every((h) => !h.startsWith("service:")),
    );
  });
});
