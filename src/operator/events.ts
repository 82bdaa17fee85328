// Records core/v1 Events about the objects the operator acts on, as client-go's EventRecorder does:
// a repeat of the same event (same object, type, reason and message) within a window increments
// the count of the existing Event instead of creating another. Recording never fails a reconcile:
// an Event is a courtesy to humans, so a failed write is logged and dropped.
import type * as k8s from "@kubernetes/client-node";
import { hostname } from "node:os";
import { mergePatchOptions, type KubeClient } from "../kube/client.ts";
import { errorMessage, isNotFound } from "../kube/errors.ts";
import { createLogger, type Logger } from "./logger.ts";

export type EventType = "Normal" | "Warning";

/** Enough of an object to name it as an Event's involvedObject. */
export interface InvolvedObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

export interface EventRecorderOptions {
  client: KubeClient;
  /** The Event's source.component and reportingComponent. */
  component?: string;
  /** The Event's reportingInstance: which replica wrote it. */
  instance?: string;
  /** Repeats within this window update the existing Event. */
  dedupWindowMs?: number;
  log?: Logger;
  now?: () => number;
  /**
   * Runs an Event's write apart from the caller's work: the manager takes it out of a failover's
   * urgent lane, so Events never take the tokens kept for the failover's own requests.
   */
  detach?: <T>(write: () => Promise<T>) => Promise<T>;
}

const MAX_MESSAGE = 1024;
const MAX_REMEMBERED = 4096;

interface Seen {
  name: string;
  namespace: string;
  count: number;
  lastSeen: number;
}

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly component: string;
  private readonly instance: string;
  private readonly windowMs: number;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly detach: <T>(write: () => Promise<T>) => Promise<T>;
  private readonly seen = new Map<string, Seen>();
  /** One write at a time per event key, so repeats count up instead of racing to create. */
  private readonly chains = new Map<string, Promise<void>>();
  private sequence = 0;

  constructor(options: EventRecorderOptions) {
    this.client = options.client;
    this.component = options.component ?? "understudy-operator";
    this.instance = options.instance ?? hostname();
    this.windowMs = options.dedupWindowMs ?? 10 * 60_000;
    this.log = options.log ?? createLogger();
    this.now = options.now ?? Date.now;
    this.detach = options.detach ?? ((write) => write());
  }

  normal(object: InvolvedObject, reason: string, message: string): void {
    void this.record(object, "Normal", reason, message);
  }

  warning(object: InvolvedObject, reason: string, message: string): void {
    void this.record(object, "Warning", reason, message);
  }

  /** Writes the Event; resolves when written or given up on, never rejects. */
  record(object: InvolvedObject, type: EventType, reason: string, message: string): Promise<void> {
    const key = eventKey(object, type, reason, message);
    const previous = this.chains.get(key) ?? Promise.resolve();
    const next = previous
      .then(() => this.detach(() => this.write(key, object, type, reason, message)))
      .catch((err: unknown) => {
        this.log.warn(
          {
            err,
            kind: object.kind,
            namespace: object.metadata?.namespace,
            name: object.metadata?.name,
            reason,
            error: errorMessage(err),
          },
          "could not record event",
        );
      });
    this.chains.set(key, next);
    void next.then(() => {
      if (this.chains.get(key) === next) this.chains.delete(key);
    });
    return next;
  }

  private async write(
    key: string,
    object: InvolvedObject,
    type: EventType,
    reason: string,
    message: string,
  ): Promise<void> {
    const now = this.now();
    const seen = this.seen.get(key);
    if (seen && now - seen.lastSeen <= this.windowMs) {
      try {
        await this.client.core.patchNamespacedEvent(
          {
            name: seen.name,
            namespace: seen.namespace,
            body: { count: seen.count + 1, lastTimestamp: new Date(now) },
          },
          mergePatchOptions,
        );
        seen.count++;
        this.remember(key, { ...seen, lastSeen: now });
        return;
      } catch (err) {
        // The Event expired (the API server keeps them an hour) or was deleted: start anew.
        if (!isNotFound(err)) throw err;
      }
    }
    const namespace = object.metadata?.namespace || "default";
    const name = `${object.metadata?.name ?? "unknown"}.${this.uniqueSuffix(now)}`;
    const event: k8s.CoreV1Event = {
      metadata: { name, namespace },
      involvedObject: {
        apiVersion: object.apiVersion,
        kind: object.kind,
        name: object.metadata?.name,
        namespace: object.metadata?.namespace,
        uid: object.metadata?.uid,
        resourceVersion: object.metadata?.resourceVersion,
      },
      type,
      reason,
      message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message,
      count: 1,
      firstTimestamp: new Date(now),
      lastTimestamp: new Date(now),
      source: { component: this.component },
      reportingComponent: this.component,
      reportingInstance: this.instance,
    };
    await this.client.core.createNamespacedEvent({ namespace, body: event });
    this.remember(key, { name, namespace, count: 1, lastSeen: now });
  }

  private remember(key: string, seen: Seen): void {
    this.seen.delete(key); // re-insert: Map order is then least recently seen first
    this.seen.set(key, seen);
    if (this.seen.size > MAX_REMEMBERED) this.seen.delete(this.seen.keys().next().value!);
  }

  /** Hex nanoseconds like client-go, made unique within this process. */
  private uniqueSuffix(now: number): string {
    return (BigInt(now) * 1_000_000n + BigInt(this.sequence++ % 1_000_000)).toString(16);
  }
}

function eventKey(object: InvolvedObject, type: EventType, reason: string, message: string): string {
  const m = object.metadata;
  return JSON.stringify([
    object.apiVersion,
    object.kind,
    m?.namespace,
    m?.name,
    m?.uid,
    type,
    reason,
    message,
  ]);
}
