// The StorageService controller as the runtime runs it: reconcile by "namespace/name", what wakes
// it, and the head probing that runs beside it.
import { parseHolderIdentity } from "../../decisions/names.ts";
import { objectKey, parseKey } from "../../operator/keys.ts";
import type { ControllerContext, ControllerSpec } from "../context.ts";
import type { CustomObject } from "../../kube/client.ts";
import { perObject } from "../derived.ts";
import { parsedStorageService } from "../indexes.ts";
import { toNodeView } from "../views.ts";
import { Known, assessHead } from "./observe.ts";
import { labels } from "../labels.ts";
import { probeTargets } from "./prober.ts";
import { reconcileStorageService } from "./reconcile.ts";

export { HeadProber } from "./prober.ts";
export { failoverMetrics } from "./metrics.ts";
export { headServiceName } from "./names.ts";

interface ServiceStatusView {
  pool?: string;
  headNode?: string;
  failoverNodes: string[];
  failoverLease?: string;
  failbackLease?: string;
  automaticOnSlotIn?: string;
}

/** What the watch mappings read of a service, once per service version (every event scans them all). */
const view = perObject(viewOf);

function viewOf(service: CustomObject): ServiceStatusView {
  const spec = (service.spec ?? {}) as {
    pool?: string;
    primaryZone?: string;
    zones?: string[];
    failback?: { policy?: string };
  };
  const status = (service.status ?? {}) as {
    head?: { node?: string; leaseName?: string };
    failover?: { fromNode?: string; toNode?: string; leaseName?: string };
    failback?: { fromSlot?: string };
  };
  const out: ServiceStatusView = {
    failoverNodes: [status.failover?.fromNode, status.failover?.toNode].filter((n): n is string => !!n),
  };
  if (spec.pool) out.pool = spec.pool;
  if (status.head?.node) out.headNode = status.head.node;
  if (status.failover?.leaseName) out.failoverLease = status.failover.leaseName;
  if (status.failback?.fromSlot) out.failbackLease = status.failback.fromSlot;
  if (spec.failback?.policy === "Automatic" && status.head?.leaseName)
    out.automaticOnSlotIn = spec.primaryZone ?? spec.zones?.[0];
  return out;
}

/** Services a change of this node concerns: its head or a failover runs there, or it waits to fail back into its zone. */
function servicesOnNode(ctx: ControllerContext, nodeName: string, zone: string | undefined): string[] {
  return ctx.cache.services
    .list()
    .filter((service) => {
      const v = view(service);
      return (
        v.headNode === nodeName ||
        v.failoverNodes.includes(nodeName) ||
        (zone !== undefined && v.automaticOnSlotIn === zone)
      );
    })
    .map(objectKey);
}

/**
 * A service whose reconcile goes before routine work: one failing over, or whose head the caches
 * and the probe show failed now (the reconcile that detects it starts the failover).
 */
export function failingOver(ctx: ControllerContext, key: string): boolean {
  const { namespace, name } = parseKey(key);
  const raw = ctx.cache.services.get(name, namespace);
  const parsed = raw && parsedStorageService(raw);
  if (!parsed?.ok) return false;
  const service = parsed.value;
  if (service.status?.failover) return true;
  const head = service.status?.head?.pod;
  if (!head || service.status?.failback) return false;
  const nodeName = ctx.cache.pods.get(head, namespace)?.spec?.nodeName;
  const node = nodeName ? ctx.cache.nodes.get(nodeName) : undefined;
  const nodes = node
    ? [toNodeView(node, undefined, ctx.cache.nodeLeases.get(nodeName!, "kube-node-lease"))]
    : [];
  return !assessHead(ctx, service, nodes, new Known(ctx)).health.healthy;
}

export const storageServiceControllerSpec: ControllerSpec = {
  name: "storage-service",
  start: startProbing,
  urgent: failingOver,
  reconcile: (ctx, key) => {
    const { namespace, name } = parseKey(key);
    return reconcileStorageService(ctx, namespace!, name);
  },
  watches: {
    services: (service) => [objectKey(service)],
    pods: (pod, ctx) => {
      const service = pod.metadata?.labels?.[labels.service];
      if (service) return [`${pod.metadata!.namespace}/${service}`];
      // A tenant or placeholder pod on a slot a service is taking: the failover waits for it to go.
      const slot = pod.metadata?.labels?.[labels.slot];
      if (!slot) return [];
      const holder = parseHolderIdentity(ctx.cache.slotLeases.get(slot, ctx.namespace)?.spec?.holderIdentity);
      return holder?.kind === "service" ? [`${holder.namespace}/${holder.name}`] : [];
    },
    nodes: (node, ctx) => servicesOnNode(ctx, node.metadata!.name!, node.metadata?.labels?.[labels.nodeZone]),
    nodeLeases: (lease, ctx) => {
      const node = ctx.cache.nodes.get(lease.metadata!.name!);
      return servicesOnNode(ctx, lease.metadata!.name!, node?.metadata?.labels?.[labels.nodeZone]);
    },
    slotLeases: (lease, ctx) => {
      const keys = new Set<string>();
      const holder = parseHolderIdentity(lease.spec?.holderIdentity);
      if (holder?.kind === "service") keys.add(`${holder.namespace}/${holder.name}`);
      const name = lease.metadata?.name;
      for (const service of ctx.cache.services.list()) {
        const v = view(service);
        if (name !== undefined && (v.failoverLease === name || v.failbackLease === name))
          keys.add(objectKey(service));
      }
      return [...keys];
    },
    // The head Service changed (its selector, or it was deleted): the steady state reports and restores it.
    headServices: (svc) => {
      const service = svc.metadata?.labels?.[labels.service];
      return service ? [`${svc.metadata!.namespace}/${service}`] : [];
    },
    pools: (pool, ctx) =>
      ctx.cache.services
        .list()
        .filter((service) => view(service).pool === pool.metadata?.name)
        .map(objectKey),
  },
};

/** How often the prober's targets are taken again from the caches. */
const PROBE_TARGETS_SYNC_MS = 250;

/**
 * The head prober (ctx.probes) probes the heads of the services in the cache; a head crossing its
 * failure threshold enqueues its service at once, without waiting for any watch event.
 */
function startProbing(ctx: ControllerContext, enqueue: (key: string) => void): void {
  const prober = ctx.probes;
  prober.onThreshold(enqueue);
  const sync = () => prober.update(probeTargets(ctx.cache));
  sync();
  // Unreferenced: the probing lasts as long as the process, like the caches it reads.
  setInterval(sync, PROBE_TARGETS_SYNC_MS).unref();
}
