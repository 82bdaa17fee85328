// What a reconciler is given: the client to apply with, caches of observed state, and the means to
// record what it did. Reconcilers read only from here and keep no state of their own: what they
// remember of their own writes is on the context too (WriteMemory).
import type * as k8s from "@kubernetes/client-node";
import { isDeepStrictEqual } from "node:util";
import type { Logger } from "pino";
import type { ServiceRef } from "../decisions/types.ts";
import type { CustomObject, KubeClient } from "../kube/client.ts";
import type { Indexer } from "../kube/informer.ts";
import type { ReconcileResult } from "../operator/controller.ts";
import type { InvolvedObject } from "../operator/events.ts";
import type { CrashPoint } from "../operator/crash-point.ts";
import { CacheExpectations } from "./cache-expectations.ts";
import type { FailoverMetrics } from "./storage-service/metrics.ts";
import type { HeadProber } from "./storage-service/prober.ts";
import type { LedgerMetrics } from "./metrics.ts";

export type { ReconcileResult };

/**
 * Memos of the controllers' own writes: expectations the caches have not met yet, and writes
 * already made that need not be made again. They save writes; no decision rests on them.
 */
export interface WriteMemory {
  /** The pools' grants the slot Lease cache does not show yet (see cache-expectations.ts). */
  grants: CacheExpectations;
  /** The placeholder PriorityClass exists (created, or found). */
  priorityClassEnsured: boolean;
  /** Objects a storage service owns, as last applied (hash and time) by owner uid, kind and name. */
  applied: Map<string, { hash: string; at: number }>;
  /**
   * Slot Leases a failover swapped, by name, until the cache shows them: the next reconcile (another
   * service's failover) reads the swap instead of the version it replaced, so it counts that head.
   */
  slotSwaps: Map<string, { replaced: string; lease: k8s.V1Lease; at: number }>;
  /**
   * The resourceVersion the last status write of each storage service (by `namespace/name`)
   * returned: a cached service at that version shows every write this operator made to it.
   */
  serviceStatusWrites: Map<string, string>;
  /**
   * Slots failovers of this operator chose, by Lease name: the storage service and when. Failovers
   * running at once choose from the same ledger; another failover whose best slot is named here
   * takes an as-good slot instead, if there is one, rather than race for the Lease and choose again
   * (the Lease's compare-and-swap still decides). Kept until the cache shows the slot held by a
   * service, or for a short while.
   */
  slotChoices: Map<string, { service: ServiceRef; at: number }>;
}

export const newWriteMemory = (): WriteMemory => ({
  grants: new CacheExpectations(),
  priorityClassEnsured: false,
  applied: new Map(),
  slotSwaps: new Map(),
  serviceStatusWrites: new Map(),
  slotChoices: new Map(),
});

export interface Cache<T> {
  list(): T[];
  get(name: string, namespace?: string): T | undefined;
  /** The objects an index keys as `value`, kept up to date per event (an informer's; see indexes.ts). */
  byIndex?(indexer: Indexer<T>, value: string): readonly T[];
}

export interface ObservedState {
  pools: Cache<CustomObject>;
  claims: Cache<CustomObject>;
  services: Cache<CustomObject>;
  /** Slot Leases, in the operator's namespace. */
  slotLeases: Cache<k8s.V1Lease>;
  nodes: Cache<k8s.V1Node>;
  /** Node heartbeat Leases, in kube-node-lease. */
  nodeLeases: Cache<k8s.V1Lease>;
  pods: Cache<k8s.V1Pod>;
  /** Storage services' head Services (labelled with the head role), in every namespace. */
  headServices: Cache<k8s.V1Service>;
}

interface Recorder {
  normal(object: InvolvedObject, reason: string, message: string): void;
  warning(object: InvolvedObject, reason: string, message: string): void;
}

export interface ControllerContext {
  client: KubeClient;
  /** The operator's namespace: slot Leases and placeholder pods live here. */
  namespace: string;
  cache: ObservedState;
  events: Recorder;
  log: Logger;
  now(): number;
  /**
   * Whether this operator manages the named pool (the settings' pool selector, like an ingress
   * class). Claims and services of another operator's pool are left alone; a pool that does not
   * exist is everyone's to report.
   */
  managesPool(name: string): boolean;
  /** What the controllers remember of their own writes, shared by every reconcile of this operator. */
  writes: WriteMemory;
  /** Called before each effect of a recorded failover or failback step (fault injection in tests). */
  crashPoint: CrashPoint;
  /** The image of placeholder pods for pools that name none (the operator's --placeholder-image). */
  placeholderImage?: string;
  /** Failover metrics; absent in tests that do not scrape them. */
  failoverMetrics?: FailoverMetrics;
  /** Pool and ledger metrics; absent in tests that do not scrape them. */
  metrics?: LedgerMetrics;
  /**
   * The operator's active probe of storage service heads (storage-service/prober.ts), an observation
   * source like the caches: consecutive failures of the head pod `pod`. It probes what the storage
   * service controller's start hook gives it.
   */
  probes: HeadProber;
}

/**
 * A controller as the runtime needs it: its reconcile function over one key ("name" or
 * "namespace/name"), and for each kind of observed object, the keys an event on it enqueues.
 */
export interface ControllerSpec {
  name: string;
  reconcile(ctx: ControllerContext, key: string): Promise<ReconcileResult>;
  watches: { [K in keyof ObservedState]?: (object: ObservedObject<K>, ctx: ControllerContext) => string[] };
  /**
   * Work beside the reconciles, started by the runtime once the context is built and the watches
   * are wired (on every replica, like the caches): an observation source that is not an informer
   * enqueues keys through `enqueue`. It lasts as long as the process.
   */
  start?(ctx: ControllerContext, enqueue: (key: string) => void): void;
  /**
   * Whether a key needs its reconcile before routine work (a storage service failing over): it waits
   * in the work queue's urgent lane, and its reconcile's API requests in the rate limit's urgent lane.
   */
  urgent?(ctx: ControllerContext, key: string): boolean;
  /**
   * Kinds whose status-only updates (statusOnlyUpdate) concern this controller not at all: they
   * enqueue nothing. A pool's status changes with every grant; its claims only read its spec.
   */
  ignoreStatusUpdates?: readonly (keyof ObservedState)[];
}

/**
 * Whether an update changed nothing but status (and other fields no controller reads): the same
 * generation (the API server bumps it on every spec change), labels and deletion mark.
 */
export function statusOnlyUpdate(
  old: { metadata?: k8s.V1ObjectMeta },
  object: { metadata?: k8s.V1ObjectMeta },
): boolean {
  const a = old.metadata ?? {};
  const b = object.metadata ?? {};
  return (
    a.generation !== undefined &&
    a.generation === b.generation &&
    String(a.deletionTimestamp ?? "") === String(b.deletionTimestamp ?? "") &&
    isDeepStrictEqual(a.labels ?? {}, b.labels ?? {})
  );
}

/** The updates of `kind` that wake `spec` for nothing (see ignoreStatusUpdates); undefined: none. */
export function ignoredUpdates(
  spec: ControllerSpec,
  kind: keyof ObservedState,
): ((old: { metadata?: k8s.V1ObjectMeta }, object: { metadata?: k8s.V1ObjectMeta }) => boolean) | undefined {
  return spec.ignoreStatusUpdates?.includes(kind) ? statusOnlyUpdate : undefined;
}

type ObservedObject<K extends keyof ObservedState> = ObservedState[K] extends Cache<infer T> ? T : never;
