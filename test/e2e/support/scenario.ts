// One failure scenario run: a fresh storage service, clients writing, reading and compare-and-setting
// through it, a fault injected, the operator's failover awaited, then the recorded history checked
// for linearizability (no acknowledged write lost, no stale read) and the figures written down: the
// failover timeline from status.lastFailover and the write unavailability the clients saw.
import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { GROUP, STORAGE_SERVICE_PLURAL, VERSION } from "../../../src/api/index.ts";
import { IDENTITY_HEADER, parseIdentity, type Identity } from "../../../src/dataplane/identity.ts";
import type { CheckResult } from "../../../src/dataplane/linearizability.ts";
import { eventually } from "../../support/kube.ts";
import { slotLeases } from "../../support/pools.ts";
import { E2E_DIR, LONG, type Stage } from "./stage.ts";
import {
  HeadDirectory,
  Traffic,
  wallClock,
  writeUnavailability,
  type ClientSpec,
  type LastFailoverRecord,
  type ServiceObject,
} from "./traffic.ts";

export interface FaultContext {
  stage: Stage;
  service: string;
  before: ServiceObject;
  headPod: string;
  headNode: string;
  headZone: string;
  /** http://<pod IP>:<port> of the head before the fault. */
  headUrl: string;
  directory: HeadDirectory;
}

export interface Fault {
  name: string;
  /** The clients; by default three find the head through status, three through the head Service's endpoints. */
  clients?(ctx: FaultContext): ClientSpec[];
  /** Injects the failure; resolves once it is in effect. */
  inject(ctx: FaultContext): Promise<void>;
  /** Runs while the failover is under way (for instance: kill the operator). */
  duringFailover?(ctx: FaultContext): Promise<void>;
}

export interface ScenarioReport {
  scenario: string;
  run: number;
  service: string;
  /** The StorageService's metadata.uid (what its heads name in their answers). */
  serviceUid: string;
  oldHeadPod: string;
  oldHeadNode: string;
  verdict: CheckResult;
  operations: number;
  acknowledgedWrites: number;
  unknownOutcomes: number;
  outcomes: Record<string, number>;
  /** Longest stretch without an acknowledged write, among those ending after the fault (ms). */
  writeUnavailabilityMs: number;
  /** Fault to status.lastFailover.startedAt (ms; the clocks are this machine's). */
  detectionMs: number;
  /** status.lastFailover.durationMilliseconds: detection to Done. */
  failoverMs: number | undefined;
  /** Fault to the first write acknowledged after the fault (ms). */
  faultToFirstWriteMs: number;
  /** Fault to the new head answering /readyz 200, i.e. done fencing (ms, polled every 20 ms). */
  newHeadReadyMs: number;
  /** performance.now() when the new head was first seen ready. */
  newHeadReadyAt: number;
  /** The old head at the moment the new head was first seen ready (split brain: still serving). */
  oldHeadAtNewHeadReady: OldHeadSighting | undefined;
  /** performance.now() of the fault. */
  faultAt: number;
  writeAcks: { label: string; call: number; ret: number }[];
  acknowledgedAfterFailover: number;
  fromEpoch: number | undefined;
  toEpoch: number | undefined;
  lastFailover: LastFailoverRecord;
  /** Timeline steps as offsets from the fault (ms). */
  timeline: { step: string; atMs: number }[];
  /** The pool's slot Leases the service held at the end, read before the service is deleted. */
  heldSlots: string[];
}

const WARMUP_MS = LONG ? 5_000 : 1_500;
const AFTER_MS = LONG ? 5_000 : 1_500;
export const RUNS = LONG ? Number(process.env.UNDERSTUDY_E2E_RUNS ?? 3) : 1;

export function defaultClients(ctx: FaultContext): ClientSpec[] {
  return [
    ...Array.from({ length: 3 }, () => ({ resolve: ctx.directory.resolver("status"), label: "status" })),
    ...Array.from({ length: 3 }, () => ({
      resolve: ctx.directory.resolver("endpoints"),
      label: "endpoints",
    })),
  ];
}

async function deleteService(stage: Stage, name: string): Promise<void> {
  await stage.client.custom
    .deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: STORAGE_SERVICE_PLURAL,
      namespace: stage.serviceNs,
      name,
    })
    .catch(() => undefined);
}

export async function runScenario(stage: Stage, fault: Fault, run: number): Promise<ScenarioReport> {
  const service = `${fault.name}-${run}`;
  const before = await stage.createService(service);
  const directory = await new HeadDirectory(stage.kc, stage.serviceNs, service).start();
  const head = before.status!.head!;
  const headPodObject = await stage.client.core.readNamespacedPod({
    name: head.pod!,
    namespace: stage.serviceNs,
  });
  const ctx: FaultContext = {
    stage,
    service,
    before,
    headPod: head.pod!,
    headNode: headPodObject.spec!.nodeName!,
    headZone: head.zone ?? "",
    headUrl: `http://${headPodObject.status!.podIP}:${before.spec.head.port}`,
    directory,
  };
  await eventually("the head Service's endpoint", () => directory.fromEndpoints(), 30_000);
  const security = await stage.security(service);
  const traffic = new Traffic({
    clients: (fault.clients ?? defaultClients)(ctx),
    seed: run + 1,
    ...(security ? { security } : {}),
  }).start();
  try {
    await sleep(WARMUP_MS);
    const countBefore = before.status?.failoverCount ?? 0;
    const faultAt = performance.now();
    const newHeadReady = watchNewHead(ctx);
    await fault.inject(ctx);
    const during = fault.duringFailover?.(ctx);
    const after = await stage.waitForFailover(service, countBefore);
    await during;
    const finishedAt = Date.parse(after.status!.lastFailover!.finishedAt!) - performance.timeOrigin;
    // Keep going until the new head has acknowledged a fair number of writes, and a while more.
    await eventually(
      "writes acknowledged after the failover",
      () => traffic.writeAcks.filter((a) => a.call > finishedAt).length >= 20,
      60_000,
      50,
    );
    await sleep(AFTER_MS);
    const newHeadReadyAt = await newHeadReady.result();
    await traffic.stop();
    await traffic.finalReads(directory.resolver("status"));

    const verdict = traffic.check();
    // Read now: the cleanup below deletes the service, and the operator then frees its slots.
    const heldSlots = (await slotLeases(stage.client, stage.operatorNs, stage.pool))
      .filter((l) => l.spec?.holderIdentity === `service:${stage.serviceNs}/${service}`)
      .map((l) => l.metadata!.name!);
    const last = after.status!.lastFailover!;
    const faultWall = wallClock(faultAt);
    const firstNewAck = traffic.writeAcks
      .filter((a) => a.call > faultAt)
      .map((a) => a.ret)
      .sort((a, b) => a - b)[0];
    const report: ScenarioReport = {
      scenario: fault.name,
      run,
      service,
      serviceUid: before.metadata!.uid!,
      oldHeadPod: ctx.headPod,
      oldHeadNode: ctx.headNode,
      verdict,
      operations: traffic.history.length,
      acknowledgedWrites: traffic.writeAcks.length,
      unknownOutcomes: traffic.history.filter((o) => o.output === undefined).length,
      outcomes: Object.fromEntries(traffic.outcomes),
      writeUnavailabilityMs: Math.round(writeUnavailability(traffic.writeAcks, faultAt).gapMs),
      detectionMs: Date.parse(last.startedAt) - Math.round(faultWall),
      failoverMs: last.durationMilliseconds,
      faultToFirstWriteMs: firstNewAck === undefined ? NaN : Math.round(firstNewAck - faultAt),
      newHeadReadyMs: Math.round(newHeadReadyAt.at - faultAt),
      newHeadReadyAt: newHeadReadyAt.at,
      oldHeadAtNewHeadReady: newHeadReadyAt.oldHead,
      faultAt,
      writeAcks: traffic.writeAcks.map(({ label, call, ret }) => ({ label, call, ret })),
      acknowledgedAfterFailover: traffic.writeAcks.filter((a) => a.call > finishedAt).length,
      fromEpoch: before.status?.epoch,
      toEpoch: after.status?.epoch,
      lastFailover: last,
      timeline: (last.timeline ?? []).map((t) => ({
        step: t.step,
        atMs: Date.parse(t.at) - Math.round(faultWall),
      })),
      heldSlots,
    };
    print(report);
    return report;
  } finally {
    await traffic.stop();
    directory.stop();
    await stage.restoreNodes();
    await deleteService(stage, service);
  }
}

interface OldHeadSighting {
  /** The old head's process was running. */
  running: boolean;
  /** Its /healthz status, when it answered. */
  status?: number;
  /** Whom the answer named. */
  identity?: Identity;
}

/** What answers at the old head's address now: its process, and its /healthz answer. */
async function sightOldHead(ctx: FaultContext): Promise<OldHeadSighting> {
  const running = ctx.stage.runner.process(ctx.headPod, ctx.stage.serviceNs)?.running === true;
  try {
    const probe = ctx.stage.probeUrl(`${ctx.headUrl}/healthz`);
    const res = await fetch(probe.url, { ...probe.init, signal: AbortSignal.timeout(500) });
    await res.text();
    const identity = parseIdentity(res.headers.get(IDENTITY_HEADER));
    return identity ? { running, status: res.status, identity } : { running, status: res.status };
  } catch {
    return { running };
  }
}

/**
 * Polls the head named in status once it is no longer the old one, until it answers /readyz as
 * itself; then looks at once at what the old head's address answers.
 */
function watchNewHead(ctx: FaultContext): {
  result(): Promise<{ at: number; oldHead: OldHeadSighting | undefined }>;
} {
  let stop = false;
  const found = (async () => {
    const deadline = performance.now() + 180_000;
    while (!stop && performance.now() < deadline) {
      const target = ctx.directory.targetFromStatus();
      if (target && target.pod !== ctx.headPod) {
        try {
          const probe = ctx.stage.probeUrl(`${target.url}/readyz`);
          const res = await fetch(probe.url, { ...probe.init, signal: AbortSignal.timeout(200) });
          await res.text();
          const identity = parseIdentity(res.headers.get(IDENTITY_HEADER));
          if (res.status === 200 && identity?.pod === target.pod) {
            const at = performance.now();
            return { at, oldHead: await sightOldHead(ctx) };
          }
        } catch {
          // not listening yet
        }
      }
      await sleep(20);
    }
    return { at: NaN, oldHead: undefined };
  })();
  return {
    result: async () => {
      const value = await Promise.race([found, sleep(10_000).then(() => ({ at: NaN, oldHead: undefined }))]);
      stop = true;
      return value;
    },
  };
}

function print(r: ScenarioReport): void {
  const timeline = r.timeline.map((t) => `${t.step} +${t.atMs}ms`).join(", ");
  const lines = [
    `[e2e] ${r.scenario} run ${r.run}: ${r.verdict.result === "ok" ? "linearizable" : `NOT linearizable (${r.verdict.result})`} over ${r.operations} operations (${r.acknowledgedWrites} acknowledged writes, ${r.unknownOutcomes} outcomes unknown)`,
    `[e2e]   write unavailability ${r.writeUnavailabilityMs} ms; new head ready ${r.newHeadReadyMs} ms after the fault; detection ${r.detectionMs} ms; failover (detected to Done) ${r.failoverMs} ms; epoch ${r.fromEpoch} -> ${r.toEpoch}`,
    `[e2e]   lastFailover: reason ${r.lastFailover.reason}, ${r.lastFailover.fromZone} -> ${r.lastFailover.toZone} (${r.lastFailover.toNode}), revoked ${r.lastFailover.revokedClaim ?? "none"}`,
    `[e2e]   timeline from the fault: ${timeline}`,
    `[e2e]   outcomes: ${JSON.stringify(r.outcomes)}`,
  ];
  console.log(lines.join("\n"));
  mkdirSync(E2E_DIR, { recursive: true });
  const { verdict, writeAcks: _acks, ...rest } = r;
  appendFileSync(
    join(E2E_DIR, "reports.jsonl"),
    JSON.stringify({ ...rest, verdict: verdict.result, at: new Date().toISOString() }) + "\n",
  );
}

/** Why the checker refused a history, for the assertion message. */
function explain(r: ScenarioReport): string {
  return r.verdict.result === "illegal"
    ? r.verdict.operations.slice(0, 200).join("\n")
    : r.verdict.result === "unknown"
      ? r.verdict.reason
      : "";
}

/**
 * What every scenario must show: a linearizable history, a new epoch, writes served again, and the
 * service on exactly one contingency slot (the one its new head runs on).
 */
export function commonFailures(r: ScenarioReport): string[] {
  const problems: string[] = [];
  if (r.verdict.result !== "ok") problems.push(`history not linearizable:\n${explain(r)}`);
  if (!(r.toEpoch !== undefined && r.fromEpoch !== undefined && r.toEpoch === r.fromEpoch + 1))
    problems.push(`epoch went ${r.fromEpoch} -> ${r.toEpoch}, not up by one`);
  if (r.acknowledgedAfterFailover < 20)
    problems.push(`only ${r.acknowledgedAfterFailover} writes after the failover`);
  if (!r.lastFailover.finishedAt) problems.push("lastFailover has no finishedAt");
  if (r.heldSlots.length !== 1)
    problems.push(`the service holds ${r.heldSlots.length} slots (${r.heldSlots.join(", ")}), not one`);
  return problems;
}
