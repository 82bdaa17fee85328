// Drives a failback (see src/decisions/failback-steps.ts): observe, decide one action, apply, again, until the
// decision waits or there is nothing to do. Same discipline as the failover: the record is written
// under an optimistic lock before its effects, the slot goes back by compare-and-swap.
import { serviceAnnotations, type StorageService } from "../../api/index.ts";
import { headMisfit, type HeadPlacementRule } from "../../decisions/head-placement.ts";
import { headPodName } from "../../decisions/names.ts";
import type { NodeView, PodPhase } from "../../decisions/types.ts";
import {
  createPod,
  deletePod,
  readRoutedEpoch,
  currentService,
  swapSlot,
  switchHeadService,
  writeStatus,
} from "./effects.ts";
import {
  nextFailbackAction,
  type FailbackAction,
  type FailbackObserved,
  type FailbackOptions,
} from "../../decisions/failback-steps.ts";
import { headPod } from "./manifests.ts";
import { primaryZoneOf, serviceIdentity, serviceRef } from "./names.ts";
import {
  headStartDeadlineMs,
  isPodReady,
  presenceOf,
  type Known,
  type StorageServiceContext,
} from "./observe.ts";
import { headStatusOf, replacement, withConditions } from "./status.ts";
import { runStepMachine, type StepApplied } from "../step-machine.ts";
import { toHeadPlacementRule } from "../views.ts";

/** Actions applied in one reconcile before handing back to the queue. */
const MAX_ACTIONS = 20;
const CONTINUE = { kind: "continue" } as const;

export type FailbackOutcome =
  { kind: "done"; requeueAfterMs?: number } | { kind: "idle"; recheckAfterMs?: number };

/** The value of the failback annotation when it asks for a failback not handled yet. */
function pendingFailback(service: StorageService): string | undefined {
  const value = service.metadata.annotations?.[serviceAnnotations.failback];
  return value !== undefined && value !== "" && value !== service.status?.handledFailback ? value : undefined;
}

/**
 * Since when some Ready, schedulable node of the zone where the head may run (its nodeSelector and
 * tolerations) has been Ready; undefined when none is.
 */
function zoneReadySince(
  nodes: readonly NodeView[],
  zone: string,
  rule: HeadPlacementRule,
): number | undefined {
  const ready = nodes.filter(
    (n) => n.zone === zone && n.ready && !n.unschedulable && headMisfit(n, rule) === undefined,
  );
  if (ready.length === 0) return undefined;
  return Math.min(...ready.map((n) => n.readyTransitionAt ?? 0));
}

export interface FailbackInput {
  service: StorageService;
  nodes: readonly NodeView[];
  known: Known;
  /** The current head is healthy, Ready and routed (the steady path's verdict). */
  headServing: boolean;
  /** Automatic failover and failback are paused (the service's or its pool's spec). */
  paused?: boolean;
}

function observe(
  ctx: StorageServiceContext,
  input: FailbackInput,
  service: StorageService,
): FailbackObserved {
  const { nodes, known } = input;
  const ref = serviceRef(service);
  const status = service.status ?? {};
  const record = status.failback;
  const head = status.head;
  const observed: FailbackObserved = {
    now: ctx.now(),
    service: ref,
    epoch: status.epoch ?? 0,
    headServing: input.headServing,
    // Paused for maintenance: an Automatic failback waits like a Manual one.
    policy: input.paused ? "Manual" : service.spec.failback.policy,
    stableMs: service.spec.failback.stableSeconds * 1000,
    primaryZone: primaryZoneOf(service),
    newHead: { presence: "absent", ready: false },
    oldHead: { presence: "absent", nodeReady: false },
  };
  if (head?.pod) {
    observed.head = { pod: head.pod };
    if (head.node !== undefined) observed.head.node = head.node;
    if (head.zone !== undefined) observed.head.zone = head.zone;
    if (head.leaseName !== undefined) observed.head.slot = head.leaseName;
  }
  const request = pendingFailback(service);
  if (request !== undefined) observed.manualRequest = request;
  if (status.lastFailover?.finishedAt)
    observed.lastFailoverFinishedAt = Date.parse(status.lastFailover.finishedAt);
  if (status.lastFailback?.outcome === "Abandoned" && status.lastFailback.finishedAt)
    observed.lastAbandonedAt = Date.parse(status.lastFailback.finishedAt);
  const since = zoneReadySince(nodes, observed.primaryZone, toHeadPlacementRule(service));
  if (since !== undefined) observed.primaryReadySince = since;
  if (known.routedKnown && known.routedEpoch !== undefined) observed.routedEpoch = known.routedEpoch;
  if (!record) return observed;

  if (record.epoch !== undefined) {
    const pod = known.pod(ref.namespace, record.headPod ?? headPodName(ref.name, record.epoch));
    observed.newHead = { presence: presenceOf(pod), ready: isPodReady(pod) };
    if (pod?.status?.phase) observed.newHead.phase = pod.status.phase as PodPhase;
    if (pod?.spec?.nodeName) observed.newHead.node = pod.spec.nodeName;
  }
  if (record.fromPod) {
    const pod = known.pod(ref.namespace, record.fromPod);
    const nodeName = pod?.spec?.nodeName ?? record.fromNode;
    observed.oldHead = {
      presence: presenceOf(pod),
      nodeReady: nodes.find((n) => n.name === nodeName)?.ready ?? false,
    };
  }
  if (record.fromSlot) {
    const lease = known.lease(record.fromSlot);
    if (lease?.spec?.holderIdentity === serviceIdentity(ref))
      observed.heldSlot = { leaseName: record.fromSlot, resourceVersion: lease.metadata!.resourceVersion! };
  }
  return observed;
}

export async function driveFailback(
  ctx: StorageServiceContext,
  input: FailbackInput,
  options: Partial<FailbackOptions> = {},
): Promise<FailbackOutcome> {
  const known = input.known;
  return runStepMachine<StorageService, FailbackStep, FailbackOutcome>(
    {
      maxActions: MAX_ACTIONS,
      decide: async (service) => {
        const record = service.status?.failback;
        if (record && record.step === "Started" && !known.routedKnown)
          await readRoutedEpoch(ctx, known, service);
        const action = nextFailbackAction(record, observe(ctx, input, service), {
          startTimeoutMs: headStartDeadlineMs(service),
          ...options,
        });
        if (action.kind === "idle")
          return {
            kind: "stop",
            outcome:
              action.recheckAfterMs === undefined
                ? { kind: "idle" }
                : { kind: "idle", recheckAfterMs: action.recheckAfterMs },
          };
        if (action.kind === "wait")
          return { kind: "stop", outcome: { kind: "done", requeueAfterMs: action.requeueAfterMs } };
        return { kind: "act", action, ...(record ? { crashPoint: `Failback${record.step}` } : {}) };
      },
      readFresh: (service) => currentService(ctx, service),
      apply: (service, action) => apply(ctx, service, action, known),
      crashPoint: ctx.crashPoint,
      done: (requeueAfterMs) =>
        requeueAfterMs === undefined ? { kind: "done" } : { kind: "done", requeueAfterMs },
    },
    input.service,
  );
}

type FailbackStep = Exclude<FailbackAction, { kind: "idle" } | { kind: "wait" }>;

async function apply(
  ctx: StorageServiceContext,
  service: StorageService,
  action: FailbackStep,
  known: Known,
): Promise<StepApplied<StorageService>> {
  const ref = serviceRef(service);
  const status = service.status ?? {};
  const now = ctx.now();
  const write = async (patch: Record<string, unknown>): Promise<StepApplied<StorageService>> => {
    const result = await writeStatus(ctx, service, patch);
    if (!result.ok) return result.reason === "Conflict" ? { kind: "requeue", afterMs: 0 } : { kind: "gone" };
    return { kind: "written", subject: result.service };
  };
  switch (action.kind) {
    case "refuse": {
      const result = await write({ handledFailback: action.request });
      if (result.kind === "written")
        ctx.events.warning(
          service,
          "FailbackRefused",
          `failback ${JSON.stringify(action.request)} refused: ${action.message}`,
        );
      return result;
    }
    case "start": {
      const patch: Record<string, unknown> = { failback: action.record };
      if (action.handledRequest !== undefined) patch.handledFailback = action.handledRequest;
      const result = await write(patch);
      if (result.kind === "written")
        ctx.events.normal(
          service,
          "FailbackStarted",
          `${action.record.reason} failback: head of epoch ${action.record.epoch} starts in ${action.record.toZone}; slot ${action.record.fromSlot} goes back to the pool`,
        );
      return result;
    }
    case "createHead":
      await createPod(ctx, known, headPod(service, action.epoch, { kind: "zone", zone: action.zone }));
      return CONTINUE;
    case "deleteNewHead":
      await deletePod(ctx, known, ref.namespace, action.podName, 0);
      return CONTINUE;
    case "switchService":
      await switchHeadService(ctx, known, service, action.epoch);
      return CONTINUE;
    case "recordSwitched": {
      const result = await write({
        failback: replacement(status.failback, action.record),
        epoch: action.epoch,
        head: replacement(status.head, headStatusOf(action.head, action.epoch, now)),
      });
      if (result.kind === "written") {
        ctx.events.normal(
          service,
          "FailbackRoutingSwitched",
          `head Service selects epoch ${action.epoch} in ${action.head.zone}`,
        );
      }
      return result;
    }
    case "deleteOldHead":
      await deletePod(ctx, known, ref.namespace, action.podName, action.force ? 0 : undefined);
      return CONTINUE;
    case "releaseSlot": {
      const swapped = await swapSlot(ctx, known, action.leaseName, action.expectedResourceVersion, {
        kind: "free",
      });
      return swapped ? CONTINUE : { kind: "requeue", afterMs: 0 };
    }
    case "finish": {
      const result = await write({
        failback: null,
        lastFailback: replacement(status.lastFailback, action.last),
        conditions: withConditions(
          status.conditions,
          [
            {
              type: "FailingOver",
              status: "False",
              reason: action.last.outcome === "Succeeded" ? "FailbackDone" : "FailbackAbandoned",
              message:
                action.last.outcome === "Succeeded"
                  ? `the head is back in ${action.last.toZone}`
                  : `the head of epoch ${action.last.epoch} did not become Ready in time; the head stays on slot ${action.last.fromSlot}`,
            },
          ],
          service.metadata.generation,
          now,
        ),
      });
      if (result.kind === "written") {
        if (action.last.outcome === "Succeeded")
          ctx.events.normal(
            service,
            "FailbackDone",
            `head back in ${action.last.toZone}; slot ${action.last.fromSlot} returned to the pool`,
          );
        else
          ctx.events.warning(
            service,
            "FailbackAbandoned",
            `head of epoch ${action.last.epoch} did not become Ready in time`,
          );
      }
      return result;
    }
  }
}
