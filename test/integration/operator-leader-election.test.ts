import * as k8s from "@kubernetes/client-node";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Informer } from "../../src/kube/informer.ts";
import { core } from "../../src/kube/resources.ts";
import { LeaderElector, type LeaderElectionTiming } from "../../src/operator/leader-election.ts";
import { createLogger } from "../../src/operator/logger.ts";
import { deleteNamespace, eventually, freshNamespace, testClient, testKubeConfig } from "../support/kube.ts";

// Two electors in one process campaign for one Lease on the real API server. What they report
// through their own callbacks is checked against each other (never two leaders at once) and
// against the Lease's history as a watch saw it.

const client = testClient();
const log = createLogger({ level: "warn" });
let namespace: string;

beforeAll(async () => {
  namespace = await freshNamespace(client, "op-leader");
});
afterAll(async () => {
  await deleteNamespace(client, namespace);
});

/** Leadership as the electors' callbacks tell it, with a check that it never overlaps. */
class LeadershipLog {
  private current: string | undefined;
  readonly violations: string[] = [];
  readonly starts: { identity: string; at: number }[] = [];
  readonly stops: { identity: string; at: number }[] = [];

  started(identity: string): void {
    if (this.current !== undefined)
      this.violations.push(`${identity} started leading while ${this.current} led`);
    this.current = identity;
    this.starts.push({ identity, at: Date.now() });
  }

  stopped(identity: string): void {
    if (this.current !== identity)
      this.violations.push(`${identity} stopped leading but ${this.current} led`);
    this.current = undefined;
    this.stops.push({ identity, at: Date.now() });
  }
}

/** The holders a watch saw the Lease pass through, consecutive repeats folded. */
async function watchHolders(leaseName: string): Promise<{ holders: string[]; stop: () => void }> {
  const holders: string[] = [];
  const informer = new Informer<k8s.V1Lease>(testKubeConfig(), {
    resource: core.leases,
    namespace,
    fieldSelector: `metadata.name=${leaseName}`,
  });
  informer.on((e) => {
    if (e.type === "delete") return;
    const holder = e.object.spec?.holderIdentity ?? "";
    if (holders.at(-1) !== holder) holders.push(holder);
  });
  await informer.start();
  return { holders, stop: () => informer.stop() };
}

const electors: LeaderElector[] = [];
afterEach(async () => {
  await Promise.all(electors.splice(0).map((e) => e.stop()));
});

function elector(
  leaseName: string,
  identity: string,
  timing: LeaderElectionTiming,
  ledger: LeadershipLog,
): LeaderElector {
  const e = new LeaderElector({
    client,
    namespace,
    name: leaseName,
    identity,
    ...timing,
    log,
    onStartedLeading: () => ledger.started(identity),
    onStoppedLeading: () => ledger.stopped(identity),
  });
  electors.push(e);
  return e;
}

const readLease = (name: string) => client.coordination.readNamespacedLease({ name, namespace });

const fast: LeaderElectionTiming = { leaseDurationMs: 2_000, renewDeadlineMs: 1_500, retryPeriodMs: 250 };

describe("LeaderElector", () => {
  it("lets exactly one of two candidates lead, and the Lease names it", async () => {
    const ledger = new LeadershipLog();
    const history = await watchHolders("one-leader");
    const a = elector("one-leader", "a", fast, ledger);
    const b = elector("one-leader", "b", fast, ledger);
    void a.run();
    void b.run();

    const leader = await eventually("a leader", () => [a, b].find((e) => e.isLeader()));
    const other = leader === a ? b : a;
    const first = await readLease("one-leader");
    // Watch through several lease durations: the leader renews, the other stands by.
    for (let i = 0; i < 8; i++) {
      await sleep(500);
      expect(leader.isLeader()).toBe(true);
      expect(other.isLeader()).toBe(false);
      expect(other.healthy()).toBe(true);
      expect(other.leader()).toBe(leader.identity);
    }
    const later = await readLease("one-leader");
    expect(later.spec?.holderIdentity).toBe(leader.identity);
    expect(later.spec?.leaseDurationSeconds).toBe(2);
    expect(later.spec?.leaseTransitions).toBe(0);
    expect(later.metadata?.resourceVersion).not.toBe(first.metadata?.resourceVersion);
    expect(String(later.spec?.renewTime)).not.toBe(String(first.spec?.renewTime));

    expect(ledger.violations).toEqual([]);
    expect(ledger.starts.map((s) => s.identity)).toEqual([leader.identity]);
    expect(history.holders).toEqual([leader.identity]);
    history.stop();
  });

  it("hands over at once on release, long before the lease would expire", async () => {
    const slow: LeaderElectionTiming = {
      leaseDurationMs: 60_000,
      renewDeadlineMs: 40_000,
      retryPeriodMs: 250,
    };
    const ledger = new LeadershipLog();
    const history = await watchHolders("release");
    const a = elector("release", "a", slow, ledger);
    void a.run();
    await eventually("a leads", () => a.isLeader());
    const b = elector("release", "b", slow, ledger);
    void b.run();
    await eventually("b sees a lead", () => b.leader() === "a");

    const releasedAt = Date.now();
    await a.stop({ release: true });
    expect(a.isLeader()).toBe(false);
    await eventually("b leads", () => b.isLeader(), 30_000);
    const tookOver = ledger.starts.find((s) => s.identity === "b")!.at;
    expect(tookOver - releasedAt).toBeLessThan(slow.leaseDurationMs);

    const lease = await readLease("release");
    expect(lease.spec?.holderIdentity).toBe("b");
    expect(lease.spec?.leaseTransitions).toBe(1);
    expect(ledger.violations).toEqual([]);
    // a held it, released it (empty holder), then b took it.
    expect(history.holders).toEqual(["a", "", "b"]);
    history.stop();
  });

  it("writes an empty holder and a one-second duration on release", async () => {
    const ledger = new LeadershipLog();
    const a = elector("released-lease", "a", fast, ledger);
    void a.run();
    await eventually("a leads", () => a.isLeader());
    await a.stop({ release: true });
    const lease = await readLease("released-lease");
    expect(lease.spec?.holderIdentity).toBe("");
    expect(lease.spec?.leaseDurationSeconds).toBe(1);
    expect(ledger.stops.map((s) => s.identity)).toEqual(["a"]);
  });

  it("lets a standby take over a killed leader only after the lease duration", async () => {
    const ledger = new LeadershipLog();
    const history = await watchHolders("killed");
    const a = elector("killed", "a", fast, ledger);
    void a.run();
    await eventually("a leads", () => a.isLeader());
    const b = elector("killed", "b", fast, ledger);
    void b.run();
    await eventually("b sees a lead", () => b.leader() === "a");
    await sleep(1_000); // a few renewals, which b observes

    // Killed: a stops renewing and does not release. Its callback marks the end of its leadership.
    const killedAt = Date.now();
    await a.stop({ release: false });
    expect((await readLease("killed")).spec?.holderIdentity).toBe("a");
    await eventually("b leads", () => b.isLeader(), 30_000);

    const tookOver = ledger.starts.find((s) => s.identity === "b")!.at;
    // b measured the lease from its own observation of a's last renewal, at most one retry
    // period (plus the time of one request) before the kill.
    expect(tookOver - killedAt).toBeGreaterThanOrEqual(fast.leaseDurationMs - fast.retryPeriodMs - 500);
    const lease = await readLease("killed");
    expect(lease.spec?.holderIdentity).toBe("b");
    expect(lease.spec?.leaseTransitions).toBe(1);
    expect(ledger.violations).toEqual([]);
    expect(history.holders).toEqual(["a", "b"]);
    history.stop();
  });

  it("never has two leaders through a run of kills and releases, and the Lease agrees", async () => {
    const ledger = new LeadershipLog();
    const history = await watchHolders("churn");
    const live: LeaderElector[] = [];
    let next = 0;
    const spawn = () => {
      const e = elector("churn", `candidate-${next++}`, fast, ledger);
      live.push(e);
      void e.run();
    };
    spawn();
    spawn();
    spawn();
    for (let round = 0; round < 6; round++) {
      const leader = await eventually("a leader", () => live.find((e) => e.isLeader()), 30_000);
      expect(live.filter((e) => e.isLeader())).toEqual([leader]);
      live.splice(live.indexOf(leader), 1);
      await leader.stop({ release: round % 2 === 0 }); // alternately released and killed
      spawn();
    }
    await eventually("a last leader", () => live.find((e) => e.isLeader()), 30_000);

    expect(ledger.violations).toEqual([]);
    expect(ledger.starts).toHaveLength(7);
    // The holders the watch saw, releases left out, are exactly the leaders in callback order.
    await eventually(
      "the watch to catch up",
      () => history.holders.at(-1) === ledger.starts.at(-1)!.identity,
    );
    expect(history.holders.filter((h) => h !== "")).toEqual(ledger.starts.map((s) => s.identity));
    history.stop();
  });

  it("stops leading within the renew deadline when it cannot renew, and never campaigns again", async () => {
    const ledger = new LeadershipLog();
    const a = elector("stolen", "a", fast, ledger);
    const done = a.run();
    await eventually("a leads", () => a.isLeader());

    // Someone else takes the lease by force (as after a partition healed): a's renewals now fail.
    const lease = await readLease("stolen");
    await client.coordination.replaceNamespacedLease({
      name: "stolen",
      namespace,
      body: {
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: "intruder",
          leaseDurationSeconds: 3600,
          renewTime: new k8s.V1MicroTime(Date.now()),
        },
      },
    });
    await done;
    expect(a.isLeader()).toBe(false);
    expect(ledger.stops.map((s) => s.identity)).toEqual(["a"]);
    expect((await readLease("stolen")).spec?.holderIdentity).toBe("intruder");
  });

  it("refuses timings that could let two leaders overlap", () => {
    expect(
      () =>
        new LeaderElector({
          client,
          namespace,
          name: "x",
          identity: "a",
          leaseDurationMs: 5_000,
          renewDeadlineMs: 5_000,
          retryPeriodMs: 1_000,
        }),
    ).toThrow(/lease duration must be greater than the renew deadline/);
  });
});
