// StorageService reconciler: observe, decide, apply, record.
// - A service with no head yet gets its owned objects and a head scheduled in its primary zone.
// - A failover in progress, or a head found failed (pod, node, node lease or probe), or a switchover
//   asked for, is driven by the failover step machine (failover.ts).
// - A failback in progress, or one due, is driven by failback.ts.
// - Otherwise: keep the owned objects as specified, release slots the service holds for nothing, and
//   report servers, head, conditions and phase.
import type * as k8s from "@kubernetes/client-node";
import {
  CONDITION_VALID,
  REASON_INVALID_SPEC,
  type ServerZoneStatus,
  type StorageService,
  serviceAnnotations,
  storageServiceResource,
} from "../../api/index.ts";
import { headPodName, parseHolderIdentity } from "../../decisions/names.ts";
import type { ReconcileResult } from "../context.ts";
import { labels, roles } from "../labels.ts";
import { contingencyChoice, contingencyCondition } from "./contingency.ts";
import {
  createPod,
  forgetSlotChoice,
  forgetStatusWrites,
  readService,
  swapSlot,
  writeStatus,
} from "./effects.ts";
import { driveFailback } from "./failback.ts";
import { driveFailover, type SwitchoverWait } from "./failover.ts";
import { headPod } from "./manifests.ts";
import { primaryZoneOf, serviceIdentity, serviceRef } from "./names.ts";
import {
  Known,
  allNodes,
  isPodReady,
  pauseOf,
  type HeadAssessment,
  type StorageServiceContext,
} from "./observe.ts";
import type { FailoverPause } from "../../decisions/failover-pause.ts";
import { ensureResources, forgetApplied, serverPods } from "./resources.ts";
import { phaseOf, replacement, serversReady, withConditions, type ConditionInput } from "./status.ts";
import { isNotFound } from "../../kube/errors.ts";
import { parsedStorageService, podsOfService, slotLeasesHeldBy } from "../indexes.ts";
import { sameJson } from "../json-equal.ts";

export async function reconcileStorageService(
  ctx: StorageServiceContext,
  namespace: string,
  name: string,
): Promise<ReconcileResult> {
  const raw = ctx.cache.services.get(name, namespace);
  if (!raw || raw.metadata?.deletionTimestamp) return releaseSlots(ctx, namespace, name, raw?.metadata?.uid);
  const parsed = parsedStorageService(raw);
  if (!parsed.ok) {
    const service = raw as unknown as StorageService;
    const current = service.status?.conditions?.find((c) => c.type === CONDITION_VALID);
    if (current?.status !== "False" || current.message !== parsed.message) {
      const condition = {
        type: CONDITION_VALID,
        status: "False" as const,
        reason: REASON_INVALID_SPEC,
        message: parsed.message,
      };
      try {
        await ctx.client.patchCustomStatus(storageServiceResource, name, namespace, {
          conditions: withConditions(
            service.status?.conditions,
            [condition],
            service.metadata?.generation,
            ctx.now(),
          ),
        });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      ctx.events.warning(raw, REASON_INVALID_SPEC, parsed.message);
    }
    return {};
  }
  const service = parsed.value;
  // Another operator's pool (its --pool-selector): that operator runs this service.
  if (!ctx.managesPool(service.spec.pool)) return {};

  if (service.status?.failback) {
    const known = new Known(ctx);
    const outcome = await driveFailback(ctx, { service, nodes: allNodes(ctx), known, headServing: false });
    return outcome.kind === "done" && outcome.requeueAfterMs !== undefined
      ? { requeueAfterMs: outcome.requeueAfterMs }
      : {};
  }
  if (!service.status?.head?.pod && !service.status?.failover) return bootstrap(ctx, service);

  const failover = await driveFailover(ctx, service);
  if (failover.kind === "done") return failover.result;
  return steady(ctx, failover.service, failover);
}

/** A new service: its objects, then a head of epoch 1 scheduled in the primary zone, then its record. */
async function bootstrap(ctx: StorageServiceContext, service: StorageService): Promise<ReconcileResult> {
  const known = new Known(ctx);
  await ensureResources(ctx, service, known);
  const ref = serviceRef(service);
  const epoch = Math.max(service.status?.epoch ?? 1, 1);
  const podName = headPodName(ref.name, epoch);
  const zone = primaryZoneOf(service);
  const pod = known.pod(ref.namespace, podName);
  if (!pod) {
    await createPod(ctx, known, headPod(service, epoch, { kind: "zone", zone }));
    ctx.events.normal(service, "HeadCreated", `head pod ${podName} (epoch ${epoch}) scheduled in ${zone}`);
    return { requeueAfterMs: 1000 };
  }
  // Recorded only once the pod is in the cache, so the next reconcile cannot take it for deleted.
  if (!ctx.cache.pods.get(podName, ref.namespace)) return { requeueAfterMs: 100 };
  // `since` waits until the head is first seen Ready: until then it is starting, not failing.
  const head: Record<string, unknown> = { pod: podName, epoch, zone };
  if (pod.spec?.nodeName) head.node = pod.spec.nodeName;
  const patch: Record<string, unknown> = {
    epoch,
    head,
    phase: "Pending",
    observedGeneration: service.metadata.generation,
  };
  // Annotations present at creation are not requests: nothing to switch over from yet.
  const switchover = service.metadata.annotations?.[serviceAnnotations.switchover];
  const failback = service.metadata.annotations?.[serviceAnnotations.failback];
  if (switchover) patch.handledSwitchover = switchover;
  if (failback) patch.handledFailback = failback;
  const write = await writeStatus(ctx, service, patch);
  if (!write.ok) return write.reason === "Conflict" ? { requeueAfterMs: 0 } : {};
  return { requeueAfterMs: 0 };
}

async function steady(
  ctx: StorageServiceContext,
  initial: StorageService,
  observed: Extract<Awaited<ReturnType<typeof driveFailover>>, { kind: "idle" }>,
): Promise<ReconcileResult> {
  let service = initial;
  const { known, nodes, pool, assessment, switchoverWait } = observed;
  await ensureResources(ctx, service, known);
  const status = service.status ?? {};
  const epoch = status.epoch ?? 0;
  const headServing = isServing(assessment, known.routedEpoch, epoch);

  const pause = pauseOf(service, pool);
  const failback = await driveFailback(ctx, { service, nodes, known, headServing, paused: !!pause });
  if (failback.kind === "done")
    return failback.requeueAfterMs !== undefined ? { requeueAfterMs: failback.requeueAfterMs } : {};

  const released = await releaseStraySlots(ctx, service, known);
  if (released === "requeue") return { requeueAfterMs: 0 };
  if (released) service = released;

  const now = ctx.now();
  const servers = serverStatus(service, serverPods(ctx, service));
  const choice = contingencyChoice(service, pool, nodes);
  const contingency = contingencyCondition(service, choice);
  const headCondition = headAvailability(assessment, known.routedEpoch, epoch);
  const ready = headServing && serversReady(servers, service.spec.zones);
  const conditions: ConditionInput[] = [
    {
      type: "Ready",
      status: ready ? "True" : "False",
      reason: ready ? "Serving" : headServing ? "ServersNotReady" : "HeadUnavailable",
      message: ready
        ? "the head serves and every zone's servers are Ready"
        : serversMessage(servers, headServing),
    },
    headCondition,
    contingency,
    { type: "FailingOver", status: "False", reason: "NoFailover", message: "no failover in progress" },
    {
      type: CONDITION_VALID,
      status: "True",
      reason: "SpecValid",
      message: "the spec passed the operator's checks",
    },
  ];
  const switchoverCondition = switchoverPending(status.conditions, switchoverWait);
  if (switchoverCondition) conditions.push(switchoverCondition);
  const pausedCondition = failoverPaused(status.conditions, pause);
  if (pausedCondition) conditions.push(pausedCondition);
  const patch: Record<string, unknown> = {
    observedGeneration: service.metadata.generation,
    servers,
    phase: phaseOf({
      failingOver: false,
      hasHead: !!status.head?.pod,
      headAvailable: headServing,
      serversReady: serversReady(servers, service.spec.zones),
      contingencyAvailable: contingency.status === "True",
    }),
    message: ready
      ? "serving"
      : headCondition.status === "True"
        ? conditions[0]!.message
        : headCondition.message,
    conditions: withConditions(status.conditions, conditions, service.metadata.generation, now),
  };
  // Where the head runs, once the scheduler has placed a head created before it had a node, and
  // since when it serves, once it is first seen Ready.
  const pod = assessment.pod;
  if (status.head && pod) {
    const head = { ...status.head };
    if (pod.spec?.nodeName && head.node !== pod.spec.nodeName) {
      head.node = pod.spec.nodeName;
      const zone = nodes.find((n) => n.name === pod.spec!.nodeName)?.zone;
      if (zone) head.zone = zone;
    }
    if (!head.since && isPodReady(pod)) head.since = new Date(now).toISOString();
    if (!sameJson(head, status.head)) patch.head = replacement(status.head, head);
  }
  const changed = Object.entries(patch).some(([key, value]) =>
    key === "conditions"
      ? !sameJson(stripTimes(value), stripTimes(status.conditions))
      : key === "head"
        ? true
        : !sameJson(value, (status as Record<string, unknown>)[key]),
  );
  if (changed) {
    const write = await writeStatus(ctx, service, patch);
    if (!write.ok) return write.reason === "Conflict" ? { requeueAfterMs: 0 } : {};
    const waiting = status.conditions?.find((c) => c.type === "SwitchoverPending");
    if (switchoverWait && (waiting?.status !== "True" || waiting.message !== switchoverWait.message))
      ctx.events.normal(service, "SwitchoverDelayed", switchoverWait.message);
    const before = status.conditions?.find((c) => c.type === "ContingencyAvailable");
    if (before?.status !== contingency.status) {
      if (contingency.status === "False")
        ctx.events.warning(
          service,
          "NoContingencyCapacity",
          `a failover would find no slot: ${contingency.message}`,
        );
      else if (before) ctx.events.normal(service, "ContingencyAvailable", contingency.message);
    }
  }
  const recheck = [assessment.recheckAfterMs, failback.recheckAfterMs, switchoverWait?.waitMs].filter(
    (ms): ms is number => ms !== undefined,
  );
  return recheck.length ? { requeueAfterMs: Math.min(...recheck) } : {};
}

/**
 * A condition that is present only once it has been True: True with `active`'s reason and message
 * while it holds, then False with `cleared` (a service that never had it carries none).
 */
function occasionalCondition(
  current: readonly { type: string; status: string }[] | undefined,
  type: string,
  active: { reason: string; message: string } | undefined,
  cleared: { reason: string; message: string },
): ConditionInput | undefined {
  if (active) return { type, status: "True", ...active };
  if (!current?.some((c) => c.type === type && c.status === "True")) return undefined;
  return { type, status: "False", ...cleared };
}

/** SwitchoverPending: True while a requested switchover (or a rollout) waits. */
const switchoverPending = (
  current: readonly { type: string; status: string }[] | undefined,
  wait: SwitchoverWait | undefined,
) =>
  occasionalCondition(
    current,
    "SwitchoverPending",
    wait && { reason: wait.reason ?? "Cooldown", message: wait.message },
    { reason: "NoSwitchoverWaiting", message: "no requested switchover waits" },
  );

/** FailoverPaused: True while automatic failover is paused (the service's or its pool's spec). */
const failoverPaused = (
  current: readonly { type: string; status: string }[] | undefined,
  pause: FailoverPause | undefined,
) =>
  occasionalCondition(current, "FailoverPaused", pause && { reason: pause.reason, message: pause.message }, {
    reason: "Resumed",
    message: "automatic failover is not paused",
  });

function stripTimes(conditions: unknown): unknown {
  return Array.isArray(conditions)
    ? conditions.map((c: Record<string, unknown>) => ({ ...c, lastTransitionTime: undefined }))
    : conditions;
}

function isServing(assessment: HeadAssessment, routedEpoch: number | undefined, epoch: number): boolean {
  return assessment.health.healthy && isPodReady(assessment.pod) && routedEpoch === epoch;
}

function headAvailability(
  assessment: HeadAssessment,
  routedEpoch: number | undefined,
  epoch: number,
): ConditionInput {
  const type = "HeadAvailable";
  const { health, pod } = assessment;
  if (!health.healthy) return { type, status: "False", reason: health.reason, message: health.message };
  if (!pod || pod.status?.phase !== "Running")
    return {
      type,
      status: "False",
      reason: "HeadStarting",
      message: `head pod ${pod?.metadata?.name ?? "?"} is starting`,
    };
  if (!isPodReady(pod))
    return {
      type,
      status: "False",
      reason: "HeadNotReady",
      message: `head pod ${pod.metadata?.name} is not Ready`,
    };
  if (routedEpoch !== epoch)
    return {
      type,
      status: "False",
      reason: "NotRouted",
      message: `the head Service selects epoch ${routedEpoch ?? "none"}, not ${epoch}`,
    };
  return {
    type,
    status: "True",
    reason: "HeadServing",
    message: `head pod ${pod.metadata?.name} (epoch ${epoch}) serves`,
  };
}

function serverStatus(service: StorageService, pods: readonly k8s.V1Pod[]): ServerZoneStatus[] {
  return service.spec.zones.map((zone) => {
    const inZone = pods.filter(
      (p) => p.metadata?.labels?.[labels.zone] === zone && !p.metadata?.deletionTimestamp,
    );
    return { zone, replicas: inZone.length, ready: inZone.filter(isPodReady).length };
  });
}

function serversMessage(servers: readonly ServerZoneStatus[], headServing: boolean): string {
  const missing = servers.filter((s) => (s.ready ?? 0) < (s.replicas ?? 0) || !s.replicas);
  const parts = missing.map((s) => `${s.zone}: ${s.ready ?? 0}/${s.replicas ?? 0} Ready`);
  return `${headServing ? "" : "the head is not serving; "}servers not Ready: ${parts.join(", ") || "none"}`;
}

/**
 * Slots the service holds besides its head's go back to the pool (after a failover or failback was
 * cut short in an unusual place). Decided only on a service status read fresh from the API server:
 * a stale status could name an older slot as the head's.
 */
async function releaseStraySlots(
  ctx: StorageServiceContext,
  service: StorageService,
  known: Known,
): Promise<StorageService | "requeue" | undefined> {
  const identity = serviceIdentity(serviceRef(service));
  const held = slotLeasesHeldBy(ctx, identity);
  // A slot some head pod of this service still runs on is never stray, whatever status says: status
  // can lag the head a resumed failover started.
  const headSlots = new Set(
    podsOfService(ctx, service.metadata.namespace!, service.metadata.name!)
      .filter((p) => p.metadata?.labels?.[labels.role] === roles.head && !p.metadata?.deletionTimestamp)
      .map((p) => p.metadata?.labels?.[labels.slot]),
  );
  const stray = held.filter(
    (l) => l.metadata?.name !== service.status?.head?.leaseName && !headSlots.has(l.metadata?.name),
  );
  if (stray.length === 0) return undefined;
  const fresh = await readService(ctx, service.metadata.namespace!, service.metadata.name!);
  if (!fresh || fresh.metadata.resourceVersion !== service.metadata.resourceVersion) return "requeue";
  if (fresh.status?.failover || fresh.status?.failback) return "requeue";
  for (const lease of stray) {
    const swapped = await swapSlot(ctx, known, lease.metadata!.name!, lease.metadata!.resourceVersion!, {
      kind: "free",
    });
    if (swapped)
      ctx.events.normal(
        service,
        "SlotReleased",
        `slot ${lease.metadata!.name} was held without a head on it`,
      );
  }
  return fresh;
}

/** A deleted service gives back every slot it holds (its pods go with it: they are owned). */
async function releaseSlots(
  ctx: StorageServiceContext,
  namespace: string,
  name: string,
  uid: string | undefined,
): Promise<ReconcileResult> {
  const identity = serviceIdentity({ namespace, name });
  const held = slotLeasesHeldBy(ctx, identity);
  if (held.length === 0) {
    forgetApplied(ctx, uid);
    forgetStatusWrites(ctx, namespace, name);
    forgetSlotChoice(ctx, { namespace, name });
    await ctx.failoverMetrics?.forget(namespace, name);
    return {};
  }
  const fresh = await readService(ctx, namespace, name);
  if (fresh && !fresh.metadata.deletionTimestamp) return { requeueAfterMs: 100 }; // the cache lags a creation
  const known = new Known(ctx);
  let lost = false;
  for (const lease of held) {
    const holder = parseHolderIdentity(lease.spec?.holderIdentity);
    if (holder?.kind !== "service") continue;
    const ok = await swapSlot(ctx, known, lease.metadata!.name!, lease.metadata!.resourceVersion!, {
      kind: "free",
    });
    if (!ok) lost = true;
    else
      ctx.log.info(
        { service: `${namespace}/${name}`, slot: lease.metadata!.name },
        "slot released by deleted service",
      );
  }
  return lost ? { requeueAfterMs: 100 } : {};
}
