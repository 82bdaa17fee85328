// Drives a failover: observe, ask nextFailoverAction for one action, apply it, and ask again, until
// the decision waits or the service is healthy. Nothing is kept between reconciles: the record in
// status and the cluster are the whole state. Every status write is guarded by the resourceVersion
// it was decided on, every slot change is a compare-and-swap, and every other effect is idempotent,
// so an operator killed anywhere resumes from status and does nothing twice.
import { serviceAnnotations, type SlotAbandonReason, type StorageService } from "../../api/index.ts";
import {
  DEFAULT_FAILOVER_OPTIONS,
  beginFailover,
  nextFailoverAction,
  startFailover,
  type FailoverAction,
  type FailoverOptions,
  type FailoverRecord,
} from "../../decisions/failover-steps.ts";
import { fromFailoverStatus, toFailoverStatus } from "../../decisions/failover-record.ts";
import { switchoverCooldown } from "../../decisions/switchover-cooldown.ts";
import { IMAGE_ROLLOUT_REASON, headImageRollout } from "../../decisions/head-image-rollout.ts";
import type { NodeView } from "../../decisions/types.ts";
import { annotations } from "../labels.ts";
import { runStepMachine, type StepApplied, type StepDecision } from "../step-machine.ts";
import { placeholderName, tenantPodName } from "../pods.ts";
import { noticeRevocation } from "../revocation.ts";
import { evictPod } from "../workload.ts";
import { contingencyChoice, contingencyCondition } from "./contingency.ts";
import {
  createPod,
  currentService,
  deletePod,
  rememberDeletion,
  rememberSlotChoice,
  swapSlot,
  switchHeadService,
  writeStatus,
} from "./effects.ts";
import { HEAD_CONTAINER, headPod } from "./manifests.ts";
import { serviceLabels } from "./metrics.ts";
import { serviceIdentity, serviceRef } from "./names.ts";
import {
  Known,
  allNodes,
  assessHead,
  observeFailover,
  observePool,
  pauseOf,
  type HeadAssessment,
  tenantOverdue,
  victimPod,
  type PoolSnapshot,
  type StorageServiceContext,
} from "./observe.ts";
import {
  MANUAL_REASON,
  headStatusOf,
  lastFailoverOf,
  replacement,
  withConditions,
  type ConditionInput,
} from "./status.ts";

/** Actions applied in one reconcile before handing back to the queue. */
const MAX_ACTIONS = 40;
/** After a lost race (409) look again at once; the watch event of the winner follows. */
const CONFLICT_REQUEUE_MS = 0;
const STALE_REQUEUE_MS = 20;

export type FailoverOutcome =
  | { kind: "done"; result: { requeueAfterMs?: number } }
  /** No failover in progress and the head is healthy: the steady path takes over with these observations. */
  | {
      kind: "idle";
      service: StorageService;
      assessment: HeadAssessment;
      pool: PoolSnapshot | undefined;
      nodes: NodeView[];
      known: Known;
      /** A requested switchover that waits for the cooldown (the steady path reports it and looks again). */
      switchoverWait?: SwitchoverWait;
    };

export interface SwitchoverWait {
  request: string;
  /** The SwitchoverPending reason: Cooldown (the default), or NoSlot for a rollout waiting for capacity. */
  reason?: string;
  /** When it may start, ms since the epoch. */
  notBefore: number;
  waitMs: number;
  message: string;
}

const ROLLOUT_RECHECK_MS = 10_000;

/** The new spec.head.image to roll out, when the serving head runs another one. */
function pendingRollout(
  service: StorageService,
  assessment: HeadAssessment,
  pool: PoolSnapshot | undefined,
): string | undefined {
  const pod = assessment.pod;
  return headImageRollout({
    running: pod?.metadata?.deletionTimestamp
      ? undefined
      : pod?.spec?.containers.find((c) => c.name === HEAD_CONTAINER)?.image,
    wanted: service.spec.head.image,
    healthy: assessment.health.healthy,
    paused: pauseOf(service, pool) !== undefined,
  });
}

/** The value of the switchover annotation when it asks for a switchover not handled yet. */
function pendingSwitchover(service: StorageService): string | undefined {
  const value = service.metadata.annotations?.[serviceAnnotations.switchover];
  return value !== undefined && value !== "" && value !== service.status?.handledSwitchover
    ? value
    : undefined;
}

export async function driveFailover(
  ctx: StorageServiceContext,
  initial: StorageService,
  options: Partial<FailoverOptions> = {},
): Promise<FailoverOutcome> {
  const opts = { ...DEFAULT_FAILOVER_OPTIONS, ...options };
  const known = new Known(ctx);
  const nodes = allNodes(ctx);
  return runStepMachine<StorageService, ActionToApply, FailoverOutcome>(
    {
      maxActions: MAX_ACTIONS,
      decide: (service) => decide(ctx, service, known, nodes, opts),
      readFresh: (service) => currentService(ctx, service),
      apply: (service, step) => apply(ctx, service, step, known),
      crashPoint: ctx.crashPoint,
      done: requeued,
    },
    initial,
  );
}

/** One action to apply, with what it was decided on. */
interface ActionToApply {
  action:
    | Exclude<FailoverAction, { kind: "idle" } | { kind: "wait" }>
    /** Refused rather than waited for: the head serves, and a switchover nobody can do should not linger. */
    | { kind: "refuseSwitchover"; request: string; message: string };
  record: FailoverRecord | undefined;
  pool: PoolSnapshot | undefined;
  switchover: string | undefined;
}

async function decide(
  ctx: StorageServiceContext,
  service: StorageService,
  known: Known,
  nodes: NodeView[],
  opts: FailoverOptions,
): Promise<StepDecision<ActionToApply, FailoverOutcome>> {
  const stored = service.status?.failover;
  const record = stored ? fromFailoverStatus(stored) : undefined;
  const pool = observePool(ctx, service, nodes, known);
  const assessment = assessHead(ctx, service, nodes, known);
  const switchover = record ? undefined : pendingSwitchover(service);
  const rollout = record || switchover !== undefined ? undefined : pendingRollout(service, assessment, pool);
  const request = switchover ?? (rollout !== undefined ? `image ${rollout}` : undefined);
  const observed = observeFailover(ctx, { service, record, health: assessment.health, pool, nodes, known });
  const stop = (outcome: FailoverOutcome) => ({ kind: "stop" as const, outcome });
  let action: FailoverAction;
  let switchoverWait: SwitchoverWait | undefined;

  if (request !== undefined && assessment.health.healthy) {
    const choice = contingencyChoice(service, pool, nodes);
    if ((!choice || choice.kind === "none") && rollout === undefined) {
      const message = `switchover ${JSON.stringify(switchover)} refused: ${contingencyCondition(service, choice).message}`;
      return {
        kind: "act",
        action: {
          action: { kind: "refuseSwitchover", request: switchover!, message },
          record,
          pool,
          switchover,
        },
      };
    }
    if (!choice || choice.kind === "none") {
      // A rollout is the spec's, not a request: it waits for a slot instead of being refused.
      switchoverWait = {
        request,
        reason: "NoSlot",
        notBefore: observed.now + ROLLOUT_RECHECK_MS,
        waitMs: ROLLOUT_RECHECK_MS,
        message: `the head image rollout to ${rollout} waits for a slot: ${contingencyCondition(service, choice).message}`,
      };
      action = nextFailoverAction(record, observed, opts);
    } else {
      const lastEnd = service.status?.lastFailover?.finishedAt;
      const cooldown = switchoverCooldown({
        now: observed.now,
        ...(lastEnd !== undefined ? { lastFailoverFinishedAt: Date.parse(lastEnd) } : {}),
        cooldownMs: service.spec.failover.switchoverCooldownSeconds * 1000,
        revokesTenant: choice.victim !== undefined,
      });
      const what =
        rollout !== undefined
          ? `the head image rollout to ${rollout}`
          : `switchover ${JSON.stringify(switchover)}`;
      if (cooldown.kind === "wait") {
        const victim = choice.victim!;
        switchoverWait = {
          request,
          notBefore: cooldown.notBefore,
          waitMs: cooldown.waitMs,
          message:
            `${what} would revoke claim ${victim.namespace}/${victim.name}; ` +
            `it starts at ${new Date(cooldown.notBefore).toISOString()}, ` +
            `${service.spec.failover.switchoverCooldownSeconds}s (spec.failover.switchoverCooldownSeconds) after the last failover ended at ${lastEnd}`,
        };
        action = nextFailoverAction(record, observed, opts);
      } else {
        // A planned move: the same run as a failover, started by hand or by a new head image.
        action = startFailover(
          beginFailover({
            now: observed.now,
            epoch: observed.epoch,
            reason: rollout !== undefined ? IMAGE_ROLLOUT_REASON : MANUAL_REASON,
            message:
              rollout !== undefined
                ? `head image rollout: spec.head.image is ${rollout}`
                : `switchover requested (${serviceAnnotations.switchover}=${switchover})`,
            ...(observed.head ? { head: observed.head } : {}),
          }),
          observed,
          opts,
        );
      }
    }
  } else {
    action = nextFailoverAction(record, observed, opts);
  }

  if (action.kind === "idle")
    return stop({
      kind: "idle",
      service,
      assessment,
      pool,
      nodes,
      known,
      ...(switchoverWait ? { switchoverWait } : {}),
    });
  if (action.kind === "wait") {
    if (action.reason === "NoSlotAvailable" || action.reason === "NoPool") {
      const written = await noteNoCapacity(ctx, service, pool, nodes, action.message);
      if (written === "Conflict") return stop(requeued(CONFLICT_REQUEUE_MS));
    }
    return stop(requeued(action.requeueAfterMs));
  }
  // Noted as decided, before any await: other workers deciding meanwhile pass over this slot.
  if (action.kind === "recordStep" && action.step === "SlotChosen" && action.record.slot)
    rememberSlotChoice(ctx, serviceRef(service), action.record.slot.leaseName);
  return {
    kind: "act",
    action: { action, record, pool, switchover },
    ...(record ? { crashPoint: record.step } : {}),
  };
}

function requeued(requeueAfterMs?: number): FailoverOutcome {
  return { kind: "done", result: requeueAfterMs === undefined ? {} : { requeueAfterMs } };
}

type Applied = StepApplied<StorageService>;

async function apply(
  ctx: StorageServiceContext,
  service: StorageService,
  { action, record, pool, switchover }: ActionToApply,
  known: Known,
): Promise<Applied> {
  const ref = serviceRef(service);
  switch (action.kind) {
    case "refuseSwitchover": {
      const write = await writeStatus(ctx, service, { handledSwitchover: action.request });
      if (!write.ok)
        return write.reason === "Conflict"
          ? { kind: "requeue", afterMs: CONFLICT_REQUEUE_MS }
          : { kind: "gone" };
      ctx.events.warning(service, "SwitchoverRefused", action.message);
      return { kind: "written", subject: write.service };
    }
    case "recordStep":
      return recordStep(ctx, service, action, switchover, known);
    case "finish":
      return finish(ctx, service, action);
    case "casLease": {
      const from = action.from;
      const extra =
        from.kind === "claim" && action.to.kind === "service"
          ? // The reason rides on the ledger: whoever tells the tenant first (this run or the claim
            // controller) tells it the same.
            {
              [annotations.revokedClaim]: `${from.namespace}/${from.name}`,
              [annotations.revocationReason]: "Failover",
            }
          : {};
      const swapped = await swapSlot(
        ctx,
        known,
        action.leaseName,
        action.expectedResourceVersion,
        action.to,
        extra,
      );
      if (!swapped) return { kind: "requeue", afterMs: STALE_REQUEUE_MS };
      if (from.kind === "claim" && action.to.kind === "service")
        ctx.metrics?.revoked(service.spec.pool, "Failover");
      ctx.log.info(
        { service: `${ref.namespace}/${ref.name}`, slot: action.leaseName, from: action.from, to: action.to },
        "slot holder swapped",
      );
      return { kind: "continue" };
    }
    case "revokeClaim": {
      const reason = record?.reason ?? "Failover";
      const stopped = await noticeRevocation(ctx, {
        claim: action.claim,
        reason: "Failover",
        message: `storage service ${ref.namespace}/${ref.name} took slot ${action.leaseName} for its head (${reason})`,
        graceSeconds: action.graceSeconds,
        by: serviceIdentity(ref),
        phase: "Revoking",
      });
      // Again with the emergency grace: a deletion begun earlier with a longer one is shortened; a
      // pod past its deadline (its node never confirmed) is removed at once. A workload's own pod
      // is evicted (marked DisruptionTarget), so its controller makes a new one that waits gated.
      const tenant = victimPod(known, action.claim, action.leaseName);
      const grace = tenantOverdue(tenant, ctx.now()) ? 0 : action.graceSeconds;
      const podName = tenant?.metadata?.name ?? tenantPodName(action.claim.name);
      const evicted = tenant !== undefined && podName !== tenantPodName(action.claim.name);
      if (evicted) await evictPod(ctx, tenant, "Failover", grace);
      // The deletion is what this run remembers the pod by: the notice's own when it deleted the
      // claim's pod with this grace, else one more (for an evicted pod, or to shorten the grace).
      if (!evicted && stopped !== undefined && grace === action.graceSeconds)
        rememberDeletion(known, action.claim.namespace, podName, stopped, grace);
      else await deletePod(ctx, known, action.claim.namespace, podName, grace);
      known.notified.add(`${action.claim.namespace}/${action.claim.name}`);
      return { kind: "continue" };
    }
    case "deletePlaceholder":
      await deletePod(ctx, known, ctx.namespace, placeholderName(action.leaseName), 0);
      return { kind: "continue" };
    case "createHead": {
      if (!pool) return { kind: "requeue", afterMs: STALE_REQUEUE_MS };
      const size = pool.pool.spec.slotSize;
      await createPod(
        ctx,
        known,
        headPod(service, action.epoch, {
          kind: "slot",
          zone: action.zone,
          node: action.node,
          leaseName: action.slot,
          pool: service.spec.pool,
          slotSize: { cpu: String(size.cpu), memory: String(size.memory) },
          ...(pool.pool.spec.tolerations ? { tolerations: pool.pool.spec.tolerations } : {}),
        }),
      );
      return { kind: "continue" };
    }
    case "deleteNewHead":
      await deletePod(ctx, known, ref.namespace, action.podName, action.force ? 0 : undefined, action.uid);
      return { kind: "continue" };
    case "switchService":
      await switchHeadService(ctx, known, service, action.epoch);
      return { kind: "continue" };
    case "deleteOldHead":
      await deletePod(ctx, known, ref.namespace, action.podName, action.force ? 0 : undefined);
      return { kind: "continue" };
  }
}

function stepCondition(step: string, message: string): ConditionInput {
  return { type: "FailingOver", status: "True", reason: `Failover${step}`, message };
}

async function recordStep(
  ctx: StorageServiceContext,
  service: StorageService,
  action: Extract<FailoverAction, { kind: "recordStep" }>,
  switchover: string | undefined,
  known: Known,
): Promise<Applied> {
  const now = ctx.now();
  const status = service.status ?? {};
  const record = action.record;
  const conditions: ConditionInput[] = [stepCondition(action.step, describeStep(record))];
  const patch: Record<string, unknown> = {
    failover: replacement(status.failover, toFailoverStatus(record, service.metadata.name!)),
    phase: "FailingOver",
  };
  // The run's first write: Detected, or SlotChosen when the slot was chosen at detection.
  const begins = !status.failover;
  if (begins) {
    conditions.push({
      type: "HeadAvailable",
      status: "False",
      reason: record.reason,
      message: record.message ?? "the head failed",
    });
    if (switchover !== undefined) {
      patch.handledSwitchover = switchover;
      if (status.conditions?.some((c) => c.type === "SwitchoverPending" && c.status === "True"))
        conditions.push({
          type: "SwitchoverPending",
          status: "False",
          reason: record.reason === MANUAL_REASON ? "SwitchoverStarted" : "FailoverStarted",
          message: `switchover ${JSON.stringify(switchover)} is handled by the failover started at ${new Date(record.startedAt).toISOString()}`,
        });
    }
  }
  if (action.epoch !== undefined && action.head) {
    patch.epoch = action.epoch;
    patch.head = replacement(status.head, headStatusOf(action.head, action.epoch, now, record.slot?.index));
    conditions.push({
      type: "HeadAvailable",
      status: "True",
      reason: "HeadServing",
      message: `head pod ${action.head.pod} (epoch ${action.epoch}) serves on slot ${action.head.slot}`,
    });
  }
  patch.conditions = withConditions(status.conditions, conditions, service.metadata.generation, now);
  // The Service switch and the record in flight together. A record that lands without its switch
  // is told (Event, log) as recorded; then the reconcile fails, and RoutingSwitched switches again.
  const [written, switched] = await Promise.allSettled([
    writeStatus(ctx, service, patch),
    action.switchService && action.epoch !== undefined
      ? switchHeadService(ctx, known, service, action.epoch)
      : Promise.resolve(),
  ]);
  if (written.status === "rejected") throw written.reason;
  const write = written.value;
  if (!write.ok)
    return write.reason === "Conflict" ? { kind: "requeue", afterMs: CONFLICT_REQUEUE_MS } : { kind: "gone" };

  const ref = serviceRef(service);
  const metrics = ctx.failoverMetrics;
  if (begins) {
    if (record.reason === IMAGE_ROLLOUT_REASON)
      ctx.events.normal(service, "HeadImageRollout", describeDetection(record));
    else if (record.reason === MANUAL_REASON)
      ctx.events.normal(service, "SwitchoverStarted", describeDetection(record));
    else ctx.events.warning(service, "HeadFailed", describeDetection(record));
    if (action.step !== "Detected")
      ctx.events.normal(service, `Failover${action.step}`, describeStep(record));
  } else if (action.step === "Detected" && record.timeline.at(-1)?.abandonedSlot !== undefined) {
    ctx.events.warning(service, "FailoverSlotAbandoned", describeStep(record));
    metrics?.failover(serviceLabels(service), record.reason, "SlotAbandoned");
  } else {
    const warn = action.step === "Detected" || (action.step === "Replenished" && record.replenishDeferred);
    (warn ? ctx.events.warning : ctx.events.normal).call(
      ctx.events,
      service,
      `Failover${action.step}`,
      describeStep(record),
    );
  }
  if (action.step === "RoutingSwitched" && action.epoch !== undefined && switched.status === "fulfilled")
    metrics?.switched(
      serviceLabels(service),
      record.reason,
      Math.max(0, ctx.now() - record.startedAt) / 1000,
    );
  ctx.log.info(
    {
      service: `${ref.namespace}/${ref.name}`,
      step: action.step,
      failover: toFailoverStatus(record, ref.name),
    },
    "failover step recorded",
  );
  if (switched.status === "rejected") throw switched.reason;
  return { kind: "written", subject: write.service };
}

async function finish(
  ctx: StorageServiceContext,
  service: StorageService,
  action: Extract<FailoverAction, { kind: "finish" }>,
): Promise<Applied> {
  const now = ctx.now();
  const status = service.status ?? {};
  const last = lastFailoverOf(action.record, action.summary, service.metadata.name!);
  const patch: Record<string, unknown> = {
    failover: null,
    lastFailover: replacement(status.lastFailover, last),
    failoverCount: (status.failoverCount ?? 0) + 1,
    conditions: withConditions(
      status.conditions,
      [
        {
          type: "FailingOver",
          status: "False",
          reason: "FailoverDone",
          message: `the last failover took ${last.durationMilliseconds}ms`,
        },
      ],
      service.metadata.generation,
      now,
    ),
  };
  const write = await writeStatus(ctx, service, patch);
  if (!write.ok)
    return write.reason === "Conflict" ? { kind: "requeue", afterMs: CONFLICT_REQUEUE_MS } : { kind: "gone" };
  ctx.crashPoint("Done");
  const outcome = action.record.replenishDeferred ? "ReplenishDeferred" : "Succeeded";
  ctx.failoverMetrics?.failover(serviceLabels(service), action.record.reason, outcome);
  ctx.events.normal(
    service,
    "FailoverDone",
    `head moved from ${last.fromZone ?? "?"} to ${last.toZone ?? "?"} on slot ${last.slot ?? "?"}` +
      `${last.revokedClaim ? ` (revoked claim ${last.revokedClaim})` : ""} in ${last.durationMilliseconds}ms; epoch ${last.epoch}`,
  );
  return { kind: "written", subject: write.service };
}

function describeDetection(record: FailoverRecord): string {
  return `${record.reason}: ${record.message ?? "the head failed"}; failing over from epoch ${record.epochAtDetection}`;
}

function describeStep(record: FailoverRecord): string {
  switch (record.step) {
    case "Detected": {
      const last = record.timeline.at(-1);
      return last?.abandonedSlot !== undefined
        ? `gave up slot ${last.abandonedSlot} (${abandonReasonText(last.reason, record.targetEpoch)}); choosing again`
        : describeDetection(record);
    }
    case "SlotChosen":
      return (
        `chose slot ${record.slot?.leaseName} on node ${record.slot?.node} in ${record.slot?.zone}` +
        (record.victim ? `, revoking claim ${record.victim.namespace}/${record.victim.name}` : " (free)") +
        `; new head epoch ${record.targetEpoch}`
      );
    case "Revoked":
      return `slot ${record.slot?.leaseName} is held by the service and vacated`;
    case "HeadStarted":
      return `slot ${record.slot?.leaseName} vacated; head pod of epoch ${record.targetEpoch} started on node ${record.slot?.node}`;
    case "RoutingSwitched":
      return `head Service selects epoch ${record.targetEpoch}`;
    case "OldHeadFenced":
      return record.oldHead ? `old head pod ${record.oldHead.pod} removed` : "no old head to remove";
    case "Replenished":
      return record.replenishDeferred
        ? "the pool did not replace the slot in time; it keeps trying on its own"
        : "the pool replaced the slot";
    case "Done":
      return "failover done";
  }
}

function abandonReasonText(reason: SlotAbandonReason | undefined, epoch: number | undefined): string {
  switch (reason) {
    case "HeadNotReady":
      return `the head of epoch ${epoch} was not Ready within spec.failover.headStartDeadlineSeconds`;
    case "NodeNotReady":
      return "its node failed";
    case "LeaseLost":
      return "its Lease was no longer the service's";
    default:
      return "its node failed or the lease was lost";
  }
}

/** ContingencyAvailable=False (and a Warning) while a failover waits for capacity. */
async function noteNoCapacity(
  ctx: StorageServiceContext,
  service: StorageService,
  pool: PoolSnapshot | undefined,
  nodes: readonly NodeView[],
  message: string,
): Promise<"Conflict" | undefined> {
  const current = service.status?.conditions?.find((c) => c.type === "ContingencyAvailable");
  const choice = contingencyChoice(service, pool, nodes);
  const condition =
    choice && choice.kind === "none"
      ? { type: "ContingencyAvailable", status: "False" as const, reason: choice.reason, message }
      : { ...contingencyCondition(service, choice), status: "False" as const, message };
  if (
    current?.status === "False" &&
    current.reason === condition.reason &&
    current.message === condition.message
  )
    return undefined;
  const write = await writeStatus(ctx, service, {
    conditions: withConditions(
      service.status?.conditions,
      [condition],
      service.metadata.generation,
      ctx.now(),
    ),
  });
  if (!write.ok) return write.reason === "Conflict" ? "Conflict" : undefined;
  ctx.events.warning(service, "NoContingencyCapacity", `failover waits: ${message}`);
  return undefined;
}
