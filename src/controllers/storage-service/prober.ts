// The operator's own probe of each storage service's head: GET http://<podIP>:<port>/healthz every
// probePeriodMilliseconds with a timeout. Like an informer cache, it is a source of observations: it
// keeps the consecutive failures per service in memory, the reconciler reads them through
// ctx.probes, and crossing the threshold enqueues the service at once. The answer must name the
// pod probed (service UID, pod, role head, epoch): a pod IP can be reused while an old process still
// holds it, and that process's 200 says nothing about the head.
import type * as k8s from "@kubernetes/client-node";
import { Agent, request } from "undici";
import {
  judgeProbeAnswer,
  recordProbe,
  type ProbeOutcome,
  type ProbeRecord,
} from "../../decisions/head-health.ts";
import { IDENTITY_HEADER, identityFromBody, parseIdentity, type Identity } from "../../dataplane/identity.ts";
import { objectKey } from "../../operator/keys.ts";
import type { ObservedState } from "../context.ts";
import { parsedStorageService } from "../indexes.ts";
import { labels } from "../labels.ts";

/** A probe record of one head pod: the reconciler uses it only while that pod is the head. */
export interface HeadProbeRecord extends ProbeRecord {
  pod: string;
  /** The head has answered as itself at least once: only then do plain failures count. */
  answered: boolean;
}

export interface ProbeTarget {
  /** `namespace/name` of the StorageService. */
  key: string;
  /** The StorageService's UID, which the head must name. */
  serviceUid: string;
  pod: string;
  /** The head pod's epoch (its label), which the head must name; undefined when the pod has none. */
  epoch?: number;
  ip: string;
  port: number;
  /** The head port speaks TLS (spec.tls.mode Permissive or Required). */
  tls: boolean;
  periodMs: number;
  timeoutMs: number;
  failureThreshold: number;
}

export interface HeadProberOptions {
  now?: () => number;
}

/** A probe whose deadline passed while the operator's event loop was blocked. */
const STALLED = Symbol("stalled");

/** How late a probe's timer may fire before its timeout says more about this process than the head. */
const stallTolerance = (timeoutMs: number) => Math.max(100, timeoutMs / 2);

type ProbeAnswer = { status: number; identity: Identity | undefined };

/** The most of a /healthz answer read; a longer one is cut there (its identity is in the header). */
const MAX_ANSWER_BYTES = 4096;

interface Entry {
  target: ProbeTarget;
  record: HeadProbeRecord;
  timer: NodeJS.Timeout | undefined;
  inFlight: boolean;
}

/** The heads to probe: every parsable service whose recorded head pod has an IP. */
export function probeTargets(cache: Pick<ObservedState, "services" | "pods">): ProbeTarget[] {
  return cache.services.list().flatMap((raw) => {
    const parsed = parsedStorageService(raw);
    if (!parsed.ok) return [];
    const service = parsed.value;
    const podName = service.status?.head?.pod;
    if (!podName) return [];
    const pod: k8s.V1Pod | undefined = cache.pods.get(podName, service.metadata.namespace);
    const ip = pod?.status?.podIP;
    if (!ip || pod?.metadata?.deletionTimestamp) return [];
    const detection = service.spec.failureDetection;
    const epoch = Number(pod.metadata?.labels?.[labels.epoch]);
    return [
      {
        key: objectKey(raw),
        serviceUid: service.metadata.uid ?? "",
        pod: podName,
        ...(Number.isInteger(epoch) && pod.metadata?.labels?.[labels.epoch] ? { epoch } : {}),
        ip,
        port: service.spec.head.port,
        tls: service.spec.tls.mode !== "Disabled",
        periodMs: detection.probePeriodMilliseconds,
        timeoutMs: detection.probeTimeoutMilliseconds,
        failureThreshold: detection.failureThreshold,
      },
    ];
  });
}

const sameTarget = (a: ProbeTarget, b: ProbeTarget) =>
  a.serviceUid === b.serviceUid &&
  a.pod === b.pod &&
  a.epoch === b.epoch &&
  a.ip === b.ip &&
  a.port === b.port &&
  a.tls === b.tls &&
  a.periodMs === b.periodMs &&
  a.timeoutMs === b.timeoutMs &&
  a.failureThreshold === b.failureThreshold;

export const healthzUrl = (target: Pick<ProbeTarget, "ip" | "port" | "tls">) =>
  `${target.tls ? "https" : "http"}://${target.ip.includes(":") ? `[${target.ip}]` : target.ip}:${target.port}/healthz`;

/**
 * Probes heads and counts consecutive failures (the rules are recordProbe's): plain failures count
 * once the head has answered as itself; an answer from another process always counts.
 */
export class HeadProber {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<(key: string) => void>();
  private readonly now: () => number;
  private stopped = false;
  /**
   * One kept-alive connection per head, through undici's request API (at a thousand heads probed
   * every second, fetch's streams and Response objects cost several times the CPU). TLS to heads
   * without checking their certificate, as the kubelet probes: the probe asks whether the head
   * lives and names itself, sends nothing secret, and is judged by the identity it answers.
   */
  private readonly agent = new Agent({ connect: { rejectUnauthorized: false } });

  constructor(options: HeadProberOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Calls `listener` with a service's key when its head's failures reach the threshold, as an
   * informer calls a watch handler.
   */
  onThreshold(listener: (key: string) => void): void {
    this.listeners.add(listener);
  }

  /** The probe record of a service's head, if it is being probed. */
  record(namespace: string, name: string): HeadProbeRecord | undefined {
    const entry = this.entries.get(`${namespace}/${name}`);
    return entry ? { ...entry.record } : undefined;
  }

  /** Probes exactly these targets: new ones start, changed ones start over, missing ones stop. */
  update(targets: readonly ProbeTarget[]): void {
    if (this.stopped) return;
    const wanted = new Map(targets.map((t) => [t.key, t]));
    for (const [key, entry] of this.entries) {
      const target = wanted.get(key);
      if (!target || !sameTarget(entry.target, target)) {
        clearTimeout(entry.timer);
        this.entries.delete(key);
      }
    }
    for (const target of wanted.values()) {
      if (this.entries.has(target.key)) continue;
      const entry: Entry = {
        target,
        record: {
          pod: target.pod,
          answered: false,
          consecutiveFailures: 0,
          failureThreshold: target.failureThreshold,
        },
        timer: undefined,
        inFlight: false,
      };
      this.entries.set(target.key, entry);
      this.schedule(entry, 0);
    }
  }

  stop(): void {
    this.stopped = true;
    void this.agent.destroy().catch(() => undefined);
    for (const entry of this.entries.values()) clearTimeout(entry.timer);
    this.entries.clear();
  }

  private schedule(entry: Entry, delayMs: number): void {
    entry.timer = setTimeout(() => void this.probe(entry), delayMs);
    entry.timer.unref();
  }

  private async probe(entry: Entry): Promise<void> {
    if (this.entries.get(entry.target.key) !== entry || entry.inFlight) return;
    entry.inFlight = true;
    const started = this.now();
    const { target } = entry;
    const answer = await this.ask(target);
    if (answer === STALLED) {
      // Judges nothing: a busy operator must not fail a head that may well have answered.
      entry.inFlight = false;
      if (this.entries.get(target.key) === entry) this.schedule(entry, 0);
      return;
    }
    const outcome = judgeProbeAnswer(
      {
        service: target.serviceUid,
        pod: target.pod,
        ...(target.epoch !== undefined ? { epoch: target.epoch } : {}),
      },
      answer,
    );
    entry.inFlight = false;
    if (this.entries.get(target.key) !== entry) return; // replaced or stopped meanwhile
    this.observe(entry, outcome, started);
    this.schedule(entry, Math.max(0, target.periodMs - (this.now() - started)));
  }

  /**
   * One GET /healthz: its status and whom it names (header, else body); undefined if none came in
   * time; STALLED if the deadline passed while this process was too busy to read an answer.
   */
  private async ask(target: ProbeTarget): Promise<ProbeAnswer | undefined | typeof STALLED> {
    const controller = new AbortController();
    const deadline = performance.now() + target.timeoutMs;
    let stalled = false;
    const timer = setTimeout(() => {
      // The timer fired late: the event loop was blocked, and an answer may be waiting unread.
      stalled = performance.now() - deadline > stallTolerance(target.timeoutMs);
      controller.abort();
    }, target.timeoutMs);
    try {
      const response = await request(healthzUrl(target), {
        dispatcher: this.agent,
        signal: controller.signal,
      });
      const header = response.headers[IDENTITY_HEADER];
      const named = parseIdentity(typeof header === "string" ? header : undefined);
      const text = await readAtMost(response.body, MAX_ANSWER_BYTES);
      return { status: response.statusCode, identity: named ?? identityFromBody(parseJson(text)) };
    } catch {
      return stalled ? STALLED : undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  private observe(entry: Entry, outcome: ProbeOutcome, at: number): void {
    const before = entry.record.consecutiveFailures;
    const { pod, ...probe } = entry.record;
    const next = recordProbe(probe, outcome, at);
    entry.record = { ...next, pod, answered: next.answered === true };
    if (
      before < entry.record.failureThreshold &&
      entry.record.consecutiveFailures >= entry.record.failureThreshold
    )
      for (const listener of this.listeners) listener(entry.target.key);
  }
}

/** The first `limit` bytes of a body as text; the rest is not read (the connection is dropped). */
async function readAtMost(
  body: AsyncIterable<Buffer> & { destroy(): unknown },
  limit: number,
): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    length += chunk.length;
    if (length >= limit) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, limit).toString("utf8");
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
