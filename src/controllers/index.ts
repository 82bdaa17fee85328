// Every controller the operator runs, wired to the manager's shared informers.
import type * as k8s from "@kubernetes/client-node";
import { poolResource, claimResource, storageServiceResource } from "../api/index.ts";
import type { Informer } from "../kube/informer.ts";
import { core } from "../kube/resources.ts";
import { crashPointAt } from "../operator/crash-point.ts";
import type { Manager } from "../operator/manager.ts";
import {
  ignoredUpdates,
  type ControllerContext,
  type ControllerSpec,
  type ObservedState,
  newWriteMemory,
} from "./context.ts";
import { nodeAsRead, podAsRead, withoutManagedFields } from "./cache-transforms.ts";
import { labels, roles } from "./labels.ts";
import { parseLabelSelector } from "../kube/label-selector.ts";
import { ledgerMetrics } from "./metrics.ts";
import { claimControllerSpec, poolControllerSpec } from "./specs.ts";
import { HeadProber, storageServiceControllerSpec, failoverMetrics } from "./storage-service/index.ts";
import { parsedStorageService } from "./indexes.ts";
import type { StorageService } from "../api/index.ts";

const controllerSpecs: ControllerSpec[] = [
  poolControllerSpec,
  claimControllerSpec,
  storageServiceControllerSpec,
];

/**
 * The caches every reconciler reads: one shared informer per kind, each scoped to the operator's own
 * objects where a selector can say so (slot Leases, head Services) and holding only the fields the
 * controllers read (cache-transforms.ts).
 */
function observedState(manager: Manager): ObservedState {
  return {
    pools: manager.informer(poolResource, {}, withoutManagedFields),
    claims: manager.informer(claimResource, {}, withoutManagedFields),
    services: manager.informer(storageServiceResource, {}, withoutManagedFields),
    slotLeases: manager.informer(
      core.leases,
      { namespace: manager.settings.namespace, labelSelector: labels.pool },
      withoutManagedFields,
    ),
    nodes: manager.informer(core.nodes, {}, nodeAsRead),
    nodeLeases: manager.informer(core.leases, { namespace: "kube-node-lease" }, withoutManagedFields),
    pods: manager.informer(core.pods, {}, podAsRead),
    headServices: manager.informer(
      core.services,
      { labelSelector: `${labels.role}=${roles.head}` },
      withoutManagedFields,
    ),
  };
}

export function registerControllers(
  manager: Manager,
  specs: ControllerSpec[] = controllerSpecs,
): ControllerContext {
  const cache = observedState(manager);
  const selected = parseLabelSelector(manager.settings.poolSelector);
  const ctx: ControllerContext = {
    client: manager.client,
    namespace: manager.settings.namespace,
    cache,
    events: manager.events,
    log: manager.log,
    now: Date.now,
    // A pool that exists anywhere is ours when it matches; one that exists nowhere, every operator
    // reports as missing, identically.
    managesPool: (name) => {
      const pool = cache.pools.get(name);
      return !pool || selected(pool.metadata?.labels ?? {});
    },
    metrics: ledgerMetrics(manager.metrics),
    placeholderImage: manager.settings.placeholderImage,
    writes: newWriteMemory(),
    crashPoint: crashPointAt(manager.settings.crashAt, (step) => {
      manager.log.fatal({ step }, "crash point reached: exiting as if killed");
      manager.log.flush();
    }),
    // Read at scrape time, when ctx is long built.
    failoverMetrics: failoverMetrics(manager.metrics.registry, {
      services: () => managedServices(ctx),
      now: Date.now,
    }),
    probes: new HeadProber(),
  };
  for (const spec of specs) {
    const urgent = spec.urgent && ((key: string) => spec.urgent!(ctx, key));
    const controller = manager.controller({
      name: spec.name,
      reconcile: (key, run) => {
        const reconcile = () => spec.reconcile({ ...ctx, log: run.log }, key);
        return urgent?.(key) ? manager.urgent(reconcile) : reconcile();
      },
      ...(urgent ? { urgent } : {}),
    });
    for (const [kind, map] of Object.entries(spec.watches) as [
      keyof ObservedState,
      (o: unknown, c: ControllerContext) => string[],
    ][]) {
      controller.watch(
        cache[kind] as unknown as Informer<k8s.KubernetesObject>,
        (object) => map(object, ctx),
        ignoredUpdates(spec, kind),
      );
    }
    spec.start?.(ctx, (key) => controller.enqueue(key));
  }
  return ctx;
}

/** The storage services this operator runs (valid, of a pool it manages, not being deleted), as cached. */
function managedServices(ctx: ControllerContext): StorageService[] {
  return ctx.cache.services.list().flatMap((raw) => {
    if (raw.metadata?.deletionTimestamp) return [];
    const parsed = parsedStorageService(raw);
    return parsed.ok && ctx.managesPool(parsed.value.spec.pool) ? [parsed.value] : [];
  });
}
