// The operator's own probe of each storage service's head: GET http://<podIP>:<port>/healthz every
// probePeriodMilliseconds with a timeout. Like an informer cache, it is a source of observations: it
// keeps the consecutive failures per service in memory, the reconciler reads them through
// ctx.probes, and crossing the threshold enqueues the service at once.
import type * as k8s from "@kubernetes/client-node";
import type { ProbeRecord } from "../../decisions/head-health.ts";
import type { ObservedState } from "../context.ts";
import { keyOf } from "../context.ts";
import { parsedStorageService } from "../indexes.ts";

/** A probe record of one head pod: the reconciler uses it only while that pod is the head. */
export interface HeadProbeRecord extends ProbeRecord {
  pod: string;
  /** The head has answered at least once: only then do failures count (see HeadProber). */
  answered: boolean;
}

export interface ProbeTarget {
  /** `namespace/name` of the StorageService. */
  key: string;
  pod: string;
  ip: string;
  port: number;
  periodMs: number;
  timeoutMs: number;
  failureThreshold: number;
}

export interface HeadProberOptions {
  /** Called with the service's key when its failures reach the threshold. */
  onChange?: (key: string) => void;
  fetch?: typeof fetch;
  now?: () => number;
}

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
    return [
      {
        key: keyOf(raw),
        pod: podName,
        ip,
        port: service.spec.head.port,
        periodMs: detection.probePeriodMilliseconds,
        timeoutMs: detection.probeTimeoutMilliseconds,
        failureThreshold: detection.failureThreshold,
      },
    ];
  });
}

const sameTarget = (a: ProbeTarget, b: ProbeTarget) =>
  a.pod === b.pod &&
  a.ip === b.ip &&
  a.port === b.port &&
  a.periodMs === b.periodMs &&
  a.timeoutMs === b.timeoutMs &&
  a.failureThreshold === b.failureThreshold;

export const healthzUrl = (target: Pick<ProbeTarget, "ip" | "port">) =>
  `http://${target.ip.includes(":") ? `[${target.ip}]` : target.ip}:${target.port}/healthz`;

/**
 * Probes heads and counts consecutive failures. A head's failures count only once it has answered
 * a probe: a head that never answered is not "failed" but not started (its pod's readiness covers
 * that), and this keeps an image without the endpoint from being failed over again and again.
 */
export class HeadProber {
  private readonly entries = new Map<string, Entry>();
  private readonly onChange: (key: string) => void;
  private readonly fetch: typeof fetch;
  private readonly now: () => number;
  private stopped = false;

  constructor(options: HeadProberOptions = {}) {
    this.onChange = options.onChange ?? (() => {});
    this.fetch = options.fetch ?? globalThis.fetch;
    this.now = options.now ?? Date.now;
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
    let ok: boolean;
    try {
      const response = await this.fetch(healthzUrl(entry.target), {
        signal: AbortSignal.timeout(entry.target.timeoutMs),
      });
      ok = response.ok;
      await response.body?.cancel();
    } catch {
      ok = false;
    }
    entry.inFlight = false;
    if (this.entries.get(entry.target.key) !== entry) return; // replaced or stopped meanwhile
    this.observe(entry, ok, started);
    this.schedule(entry, Math.max(0, entry.target.periodMs - (this.now() - started)));
  }

  private observe(entry: Entry, ok: boolean, at: number): void {
    const record = entry.record;
    if (ok) {
      record.answered = true;
      record.consecutiveFailures = 0;
      delete record.firstFailureAt;
      return;
    }
    if (!record.answered) return;
    record.consecutiveFailures++;
    record.firstFailureAt ??= at;
    if (record.consecutiveFailures === record.failureThreshold) this.onChange(entry.target.key);
  }
}
