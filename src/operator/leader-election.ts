// Leader election on a coordination.k8s.io/v1 Lease: a port of client-go's leaderelection package.
//
// - A candidate reads the Lease. Another holder's lease counts as expired only once
//   leaseDurationSeconds have passed on OUR clock since we last saw the record change (client-go's
//   observedTime); the renewTime written in the Lease is never compared with our clock, so skew
//   between machines does not matter, only their clock rates.
// - Every write is an update carrying the resourceVersion read: a compare-and-swap. Two candidates
//   racing for an expired lease cannot both win.
// - The leader renews every retryPeriod. If it cannot renew for renewDeadline (< leaseDuration)
//   since the start of its last successful renewal, it stops leading — before any other candidate
//   can consider the lease expired, since they measure from a later observation.
// - release() (on a graceful stop) empties holderIdentity and sets leaseDurationSeconds to 1, so
//   a standby takes over at its next retry instead of waiting out the lease.
import * as k8s from "@kubernetes/client-node";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { KubeClient } from "../kube/client.ts";
import { errorMessage, isConflict, isNotFound } from "../kube/errors.ts";
import { createLogger, type Logger } from "./logger.ts";

/** client-go's JitterFactor: a candidate waits retryPeriod × [1, 1.2) between attempts. */
const JITTER = 1.2;

export interface LeaderElectionTiming {
  /** How long a standby waits after last seeing the lease change before taking it. */
  leaseDurationMs: number;
  /** How long the leader keeps trying to renew before it gives up leading. */
  renewDeadlineMs: number;
  /** The interval between attempts to acquire or renew. */
  retryPeriodMs: number;
}

/** controller-runtime's defaults. */
const DEFAULT_LEADER_ELECTION_TIMING: LeaderElectionTiming = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

export interface LeaderElectionOptions extends Partial<LeaderElectionTiming> {
  client: KubeClient;
  namespace: string;
  /** The Lease's name. */
  name: string;
  /** This candidate's identity, unique among candidates (e.g. pod name + random suffix). */
  identity: string;
  /** Called when this candidate becomes the leader; not awaited. */
  onStartedLeading?: () => void | Promise<void>;
  /** Called when this candidate stops leading, lost or stopped; awaited before a release. */
  onStoppedLeading?: () => void | Promise<void>;
  /** Called when the observed holder changes (including to this candidate). */
  onNewLeader?: (identity: string) => void;
  log?: Logger;
  /** A monotonic clock in milliseconds. */
  clock?: () => number;
}

/** The checks client-go's NewLeaderElector makes; returns what is wrong, or undefined. */
export function leaderElectionTimingProblem(t: LeaderElectionTiming): string | undefined {
  if (!(t.retryPeriodMs > 0)) return "retry period must be greater than zero";
  if (!(t.leaseDurationMs >= 1000))
    return "lease duration must be at least 1s (a Lease counts whole seconds)";
  if (!(t.leaseDurationMs > t.renewDeadlineMs))
    return "lease duration must be greater than the renew deadline";
  if (!(t.renewDeadlineMs > JITTER * t.retryPeriodMs))
    return `renew deadline must be greater than ${JITTER} × retry period`;
  return undefined;
}

interface Observed {
  holder: string;
  leaseDurationMs: number;
  resourceVersion: string | undefined;
  /** When (our clock) we saw this record first. */
  at: number;
}

export class LeaderElector {
  readonly identity: string;
  readonly namespace: string;
  readonly name: string;
  readonly timing: LeaderElectionTiming;
  private readonly client: KubeClient;
  private readonly options: LeaderElectionOptions;
  private readonly log: Logger;
  private readonly clock: () => number;
  private observed: Observed | undefined;
  /** The lease as we last wrote it while leading: the fast path of a renewal. */
  private ours: k8s.V1Lease | undefined;
  private leading = false;
  private stopped = false;
  private releaseOnStop = false;
  private readonly wake = new AbortController();
  private running: Promise<void> | undefined;
  private lastContact: number | undefined;
  private lastRenewal: number | undefined;

  constructor(options: LeaderElectionOptions) {
    this.timing = {
      leaseDurationMs: options.leaseDurationMs ?? DEFAULT_LEADER_ELECTION_TIMING.leaseDurationMs,
      renewDeadlineMs: options.renewDeadlineMs ?? DEFAULT_LEADER_ELECTION_TIMING.renewDeadlineMs,
      retryPeriodMs: options.retryPeriodMs ?? DEFAULT_LEADER_ELECTION_TIMING.retryPeriodMs,
    };
    const problem = leaderElectionTimingProblem(this.timing);
    if (problem) throw new Error(`leader election: ${problem}`);
    if (!options.identity) throw new Error("leader election: identity must not be empty");
    this.identity = options.identity;
    this.namespace = options.namespace;
    this.name = options.name;
    this.client = options.client;
    this.options = options;
    this.clock = options.clock ?? (() => performance.now());
    this.log = (options.log ?? createLogger()).child({
      lease: `${options.namespace}/${options.name}`,
      identity: options.identity,
    });
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** The holder we last observed ("" when the lease was released). */
  leader(): string | undefined {
    return this.observed?.holder;
  }

  /**
   * Healthy when leading and renewing in time, or standing by with the API server reachable within
   * the last lease duration (a standby that cannot see the lease could not take over).
   */
  healthy(): boolean {
    if (this.stopped || !this.running) return false;
    const now = this.clock();
    if (this.leading)
      return this.lastRenewal !== undefined && now - this.lastRenewal < this.timing.renewDeadlineMs;
    return this.lastContact !== undefined && now - this.lastContact < this.timing.leaseDurationMs;
  }

  /**
   * Campaigns until leading, then renews until leadership is lost or stop() is called. Resolves when
   * this candidate is done (it never campaigns again: a process that lost leadership should exit).
   */
  run(): Promise<void> {
    this.running ??= this.campaign();
    return this.running;
  }

  /**
   * Stops campaigning or renewing. When leading, onStoppedLeading runs first; with `release`, the
   * lease is then handed back so a standby takes over at once. Without it (a crash, as far as the
   * others can tell) they wait for the lease to expire.
   */
  async stop(options: { release?: boolean } = {}): Promise<void> {
    this.releaseOnStop = options.release ?? false;
    this.stopped = true;
    this.wake.abort();
    if (this.running) await this.running;
  }

  private async campaign(): Promise<void> {
    try {
      this.log.info("campaigning for leadership");
      while (!this.stopped) {
        const attempt = this.clock();
        if (await this.tryAcquireOrRenew()) {
          this.lastRenewal = attempt;
          break;
        }
        await this.pause(this.timing.retryPeriodMs * (1 + Math.random() * (JITTER - 1)));
      }
      if (this.stopped) return;
      this.leading = true;
      this.log.info("started leading");
      void this.callback("onStartedLeading", this.options.onStartedLeading);
      await this.renewUntilLost();
    } finally {
      if (this.leading) {
        this.leading = false;
        if (this.stopped) this.log.info("stopped leading");
        else this.log.warn("lost leadership");
        await this.callback("onStoppedLeading", this.options.onStoppedLeading);
      }
      if (this.releaseOnStop) await this.release();
    }
  }

  private async renewUntilLost(): Promise<void> {
    while (!this.stopped) {
      await this.pause(this.timing.retryPeriodMs);
      if (this.stopped) return;
      const attempt = this.clock();
      const left = this.lastRenewal! + this.timing.renewDeadlineMs - attempt;
      // An attempt still hanging at the deadline counts as failed: we must stop leading in time.
      if (left > 0 && (await this.within(left, this.tryAcquireOrRenew()))) {
        this.lastRenewal = attempt;
        continue;
      }
      if (this.clock() - this.lastRenewal! >= this.timing.renewDeadlineMs) {
        this.log.error({ renewDeadlineMs: this.timing.renewDeadlineMs }, "failed to renew the lease in time");
        return;
      }
    }
  }

  /** One round of client-go's tryAcquireOrRenew: true when we hold the lease after it. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.clock();
    const spec = (lease: k8s.V1Lease | undefined, renewing: boolean): k8s.V1LeaseSpec => {
      const wall = new k8s.V1MicroTime(Date.now());
      return {
        holderIdentity: this.identity,
        leaseDurationSeconds: Math.ceil(this.timing.leaseDurationMs / 1000),
        acquireTime: renewing ? (microTime(lease?.spec?.acquireTime) ?? wall) : wall,
        renewTime: wall,
        leaseTransitions: (lease?.spec?.leaseTransitions ?? 0) + (renewing ? 0 : 1),
      };
    };

    // Fast path: the leader updates the lease it last wrote; a conflict means someone else wrote.
    if (this.leading && this.ours) {
      try {
        const renewed = await this.client.coordination.replaceNamespacedLease({
          name: this.name,
          namespace: this.namespace,
          body: { ...this.ours, spec: spec(this.ours, true) },
        });
        this.record(renewed);
        return true;
      } catch (err) {
        if (!isConflict(err)) {
          this.log.warn({ error: errorMessage(err) }, "renewing the lease failed");
          return false;
        }
        this.ours = undefined; // read it again below
      }
    }

    let lease: k8s.V1Lease;
    try {
      lease = await this.client.coordination.readNamespacedLease({
        name: this.name,
        namespace: this.namespace,
      });
    } catch (err) {
      if (!isNotFound(err)) {
        this.log.warn({ error: errorMessage(err) }, "reading the lease failed");
        return false;
      }
      try {
        const created = await this.client.coordination.createNamespacedLease({
          namespace: this.namespace,
          body: {
            metadata: { name: this.name, namespace: this.namespace },
            spec: { ...spec(undefined, false), leaseTransitions: 0 },
          },
        });
        this.record(created);
        return true;
      } catch (createErr) {
        this.log.info({ error: errorMessage(createErr) }, "creating the lease failed");
        return false;
      }
    }
    this.observe(lease);

    const holder = lease.spec?.holderIdentity ?? "";
    if (holder !== "" && holder !== this.identity && this.observedValid(now)) return false;

    try {
      const written = await this.client.coordination.replaceNamespacedLease({
        name: this.name,
        namespace: this.namespace,
        // The resourceVersion read travels in metadata: the update is a compare-and-swap.
        body: { ...lease, spec: spec(lease, holder === this.identity) },
      });
      this.record(written);
      if (holder !== this.identity) this.log.info({ previous: holder || undefined }, "acquired the lease");
      return true;
    } catch (err) {
      this.log.info({ error: errorMessage(err) }, "updating the lease failed");
      return false;
    }
  }

  /** Hands the lease back: no holder, and a one-second duration so a standby need not wait. */
  private async release(): Promise<void> {
    try {
      const lease = await this.client.coordination.readNamespacedLease({
        name: this.name,
        namespace: this.namespace,
      });
      if (lease.spec?.holderIdentity !== this.identity) return;
      const now = new k8s.V1MicroTime(Date.now());
      await this.client.coordination.replaceNamespacedLease({
        name: this.name,
        namespace: this.namespace,
        body: {
          ...lease,
          spec: {
            holderIdentity: "",
            leaseDurationSeconds: 1,
            acquireTime: now,
            renewTime: now,
            leaseTransitions: lease.spec?.leaseTransitions ?? 0,
          },
        },
      });
      this.log.info("released the lease");
    } catch (err) {
      this.log.warn({ error: errorMessage(err) }, "releasing the lease failed; others wait for it to expire");
    }
  }

  /** A lease we just wrote: we observed it now, and renew it next from this copy. */
  private record(lease: k8s.V1Lease): void {
    this.observe(lease);
    this.ours = lease;
  }

  private observe(lease: k8s.V1Lease): void {
    this.lastContact = this.clock();
    const resourceVersion = lease.metadata?.resourceVersion;
    if (this.observed && this.observed.resourceVersion === resourceVersion) return;
    const holder = lease.spec?.holderIdentity ?? "";
    const previous = this.observed?.holder;
    this.observed = {
      holder,
      leaseDurationMs: (lease.spec?.leaseDurationSeconds ?? 0) * 1000,
      resourceVersion,
      at: this.clock(),
    };
    if (holder !== previous && holder !== "") this.options.onNewLeader?.(holder);
  }

  private observedValid(now: number): boolean {
    return !!this.observed && this.observed.at + this.observed.leaseDurationMs > now;
  }

  private async within(ms: number, attempt: Promise<boolean>): Promise<boolean> {
    const timer = new AbortController();
    const timeout = sleep(ms, false, { signal: timer.signal }).catch(() => false);
    try {
      return await Promise.race([attempt, timeout]);
    } finally {
      timer.abort();
    }
  }

  private async pause(ms: number): Promise<void> {
    try {
      await sleep(ms, undefined, { signal: this.wake.signal });
    } catch {
      // woken by stop()
    }
  }

  private async callback(name: string, fn: (() => void | Promise<void>) | undefined): Promise<void> {
    try {
      await fn?.();
    } catch (err) {
      this.log.error({ err }, `${name} callback failed`);
    }
  }
}

function microTime(value: unknown): k8s.V1MicroTime | undefined {
  if (value === undefined || value === null) return undefined;
  const ms = value instanceof Date ? value.getTime() : Date.parse(String(value));
  return Number.isNaN(ms) ? undefined : new k8s.V1MicroTime(ms);
}
