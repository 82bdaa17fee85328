// Runs ControllerSpecs against the real test cluster the way the operator runtime does: informers fill
// the ObservedState caches, each informer event enqueues the keys a spec's watches give, and one
// reconcile per key runs at a time, with requeue-after and retry on error. Test tooling only.
//
// Other engineers share the cluster: a driver sees only the pools, claims and storage services that
// carry the label `understudy.dev/test-scope=<scope>`, and keeps slot Leases in its own namespace.
import { newWriteMemory } from "../../src/controllers/context.ts";
import { poolResource, claimResource, storageServiceResource } from "../../src/api/index.ts";
import type * as k8s from "@kubernetes/client-node";
import { pino, type Logger } from "pino";
import type { CustomObject } from "../../src/kube/client.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { Informer } from "../../src/kube/informer.ts";
import { core, type ResourceRef } from "../../src/kube/resources.ts";
import {
  ignoredUpdates,
  type ControllerContext,
  type ControllerSpec,
  type InvolvedObject,
  type ObservedState,
  type Recorder,
} from "../../src/controllers/context.ts";
import { labels, roles } from "../../src/controllers/labels.ts";
import { testKubeConfig } from "./kube.ts";

export const SCOPE_LABEL = "understudy.dev/test-scope";

export interface DriverOptions {
  specs: ControllerSpec[];
  /** The operator's namespace: slot Leases and placeholder pods. */
  namespace: string;
  /** Only pools, claims and services labelled `understudy.dev/test-scope=<scope>` are seen. */
  scope: string;
  kubeconfig?: k8s.KubeConfig;
  log?: Logger;
  /** Starts beside the controllers, e.g. startStorageServiceSupport; stopped with the driver. */
  support?: (ctx: ControllerContext, enqueue: (spec: string, key: string) => void) => { stop(): void };
}

export interface Driver {
  ctx: ControllerContext;
  enqueue(spec: string, key: string): void;
  /** Reconciles run so far, by spec name; errors thrown by reconciles, for the test to assert on. */
  stats: { reconciles: Map<string, number>; errors: unknown[] };
  stop(): Promise<void>;
}

/** Events as core/v1 Events, named like client-go's (object name + unique suffix). */
export class EventWriter implements Recorder {
  private readonly client: KubeClient;
  private readonly log: Logger;
  private sequence = 0;

  constructor(client: KubeClient, log: Logger) {
    this.client = client;
    this.log = log;
  }

  normal(object: InvolvedObject, reason: string, message: string): void {
    this.write(object, "Normal", reason, message);
  }

  warning(object: InvolvedObject, reason: string, message: string): void {
    this.write(object, "Warning", reason, message);
  }

  private write(object: InvolvedObject, type: string, reason: string, message: string): void {
    const namespace = object.metadata?.namespace ?? "default";
    const now = new Date();
    const body: k8s.CoreV1Event = {
      metadata: {
        name: `${object.metadata?.name}.${now.getTime().toString(16)}${(this.sequence++).toString(16)}`,
        namespace,
      },
      involvedObject: {
        apiVersion: object.apiVersion,
        kind: object.kind,
        name: object.metadata?.name,
        namespace: object.metadata?.namespace,
        uid: object.metadata?.uid,
      },
      type,
      reason,
      message: message.slice(0, 1024),
      source: { component: "understudy-operator" },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    this.client.core.createNamespacedEvent({ namespace, body }).catch((err: unknown) => {
      this.log.debug({ err: String(err), reason }, "event not written");
    });
  }
}

interface KeyState {
  running: boolean;
  dirty: boolean;
  timer: NodeJS.Timeout | undefined;
  failures: number;
}

/** A per-spec queue: a key is reconciled by one run at a time; events during a run schedule one more. */
class KeyQueue {
  private readonly keys = new Map<string, KeyState>();
  private stopped = false;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly run: (key: string) => Promise<{ requeueAfterMs?: number }>;
  private readonly onError: (key: string, err: unknown) => void;

  constructor(
    run: (key: string) => Promise<{ requeueAfterMs?: number }>,
    onError: (key: string, err: unknown) => void,
  ) {
    this.run = run;
    this.onError = onError;
  }

  add(key: string): void {
    if (this.stopped) return;
    let state = this.keys.get(key);
    if (!state) {
      state = { running: false, dirty: false, timer: undefined, failures: 0 };
      this.keys.set(key, state);
    }
    if (state.running) {
      state.dirty = true;
      return;
    }
    clearTimeout(state.timer);
    state.timer = undefined;
    const work = this.process(key, state);
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  private addAfter(key: string, state: KeyState, ms: number): void {
    if (this.stopped) return;
    clearTimeout(state.timer);
    state.timer = setTimeout(() => this.add(key), ms);
  }

  private async process(key: string, state: KeyState): Promise<void> {
    state.running = true;
    let requeueAfterMs: number | undefined;
    try {
      const result = await this.run(key);
      requeueAfterMs = result.requeueAfterMs;
      state.failures = 0;
    } catch (err) {
      state.failures++;
      requeueAfterMs = Math.min(5000, 50 * 2 ** Math.min(state.failures, 7));
      this.onError(key, err);
    }
    state.running = false;
    if (this.stopped) return;
    if (state.dirty) {
      state.dirty = false;
      this.add(key);
    } else if (requeueAfterMs !== undefined) {
      this.addAfter(key, state, requeueAfterMs);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const state of this.keys.values()) clearTimeout(state.timer);
    await Promise.allSettled([...this.inFlight]);
  }
}

function customInformer(kc: k8s.KubeConfig, resource: ResourceRef, scope: string, log: Logger) {
  return new Informer<CustomObject>(kc, {
    resource,
    labelSelector: `${SCOPE_LABEL}=${scope}`,
    maxBackoffMs: 1000,
    onError: (err) => log.debug({ err: String(err), resource: resource.plural }, "informer error"),
  });
}

export async function startDriver(options: DriverOptions): Promise<Driver> {
  const kc = options.kubeconfig ?? testKubeConfig();
  const log = options.log ?? pino({ level: process.env.UNDERSTUDY_LOG_LEVEL ?? "silent" });
  const client = new KubeClient(kc, "understudy");
  const onError = (err: unknown) => log.debug({ err: String(err) }, "informer error");
  const informers = {
    pools: customInformer(kc, poolResource, options.scope, log),
    claims: customInformer(kc, claimResource, options.scope, log),
    services: customInformer(kc, storageServiceResource, options.scope, log),
    slotLeases: new Informer<k8s.V1Lease>(kc, {
      resource: core.leases,
      namespace: options.namespace,
      maxBackoffMs: 1000,
      onError,
    }),
    nodes: new Informer<k8s.V1Node>(kc, { resource: core.nodes, maxBackoffMs: 1000, onError }),
    nodeLeases: new Informer<k8s.V1Lease>(kc, {
      resource: core.leases,
      namespace: "kube-node-lease",
      maxBackoffMs: 1000,
      onError,
    }),
    pods: new Informer<k8s.V1Pod>(kc, { resource: core.pods, maxBackoffMs: 1000, onError }),
    headServices: new Informer<k8s.V1Service>(kc, {
      resource: core.services,
      labelSelector: `${labels.role}=${roles.head}`,
      maxBackoffMs: 1000,
      onError,
    }),
  };

  const cache: ObservedState = informers;
  const ctx: ControllerContext = {
    client,
    namespace: options.namespace,
    cache,
    events: new EventWriter(client, log),
    log,
    now: () => Date.now(),
    managesPool: () => true,
    writes: newWriteMemory(),
    crashPoint: () => {},
  };
  const stats = { reconciles: new Map<string, number>(), errors: [] as unknown[] };
  const queues = new Map<string, KeyQueue>();
  for (const spec of options.specs) {
    queues.set(
      spec.name,
      new KeyQueue(
        async (key) => {
          stats.reconciles.set(spec.name, (stats.reconciles.get(spec.name) ?? 0) + 1);
          return spec.reconcile(ctx, key);
        },
        (key, err) => {
          stats.errors.push(err);
          log.warn(
            { controller: spec.name, key, err: String(err), stack: (err as Error)?.stack },
            "reconcile failed",
          );
        },
      ),
    );
  }
  // Nothing runs before every cache is filled: a reconcile on half-filled caches would take a head
  // pod not yet listed for a deleted one.
  let synced = false;
  const early: [string, string][] = [];
  const enqueue = (spec: string, key: string) => {
    if (!synced) early.push([spec, key]);
    else queues.get(spec)?.add(key);
  };

  for (const kind of Object.keys(informers) as (keyof ObservedState)[]) {
    const informer = informers[kind] as Informer<k8s.KubernetesObject>;
    informer.on((event) => {
      for (const spec of options.specs) {
        const map = spec.watches[kind] as
          ((object: k8s.KubernetesObject, ctx: ControllerContext) => string[]) | undefined;
        if (!map) continue;
        if (event.type === "update" && ignoredUpdates(spec, kind)?.(event.old, event.object)) continue;
        const objects = event.type === "update" ? [event.object, event.old] : [event.object];
        for (const object of objects) {
          let keys: string[] = [];
          try {
            keys = map(object, ctx);
          } catch (err) {
            log.warn({ err: String(err), kind }, "watch mapping failed");
          }
          for (const key of keys) enqueue(spec.name, key);
        }
      }
    });
  }
  // Handlers are in place before the first list, so every listed object arrives as an add event.
  await Promise.all(Object.values(informers).map((informer) => informer.start()));
  synced = true;
  for (const [spec, key] of early) queues.get(spec)?.add(key);
  const support = options.support?.(ctx, enqueue);

  return {
    ctx,
    enqueue,
    stats,
    async stop() {
      support?.stop();
      await Promise.all([...queues.values()].map((queue) => queue.stop()));
      for (const informer of Object.values(informers)) informer.stop();
    },
  };
}
