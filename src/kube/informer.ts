import * as k8s from "@kubernetes/client-node";
import { setTimeout as sleep } from "node:timers/promises";
import { isGone, statusCode } from "./errors.ts";
import { apiVersionOf, collectionPath, type ResourceRef } from "./resources.ts";
import { Store, type Indexer } from "./store.ts";

export type { Indexer } from "./store.ts";

export type InformerEvent<T> =
  | { type: "add"; object: T }
  | { type: "update"; object: T; old: T }
  | { type: "delete"; object: T }
  /** Periodic re-delivery of every cached object, so level-triggered reconcilers converge. */
  | { type: "resync"; object: T };

export interface InformerOptions<T = k8s.KubernetesObject> {
  resource: ResourceRef;
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Re-deliver every cached object this often; 0 turns resync off. */
  resyncMs?: number;
  /** Upper bound of the reconnect backoff. */
  maxBackoffMs?: number;
  /**
   * Applied to every object as it arrives, before it is cached or handed to anyone (controller-runtime's
   * cache TransformFunc): keeps only what readers use, so the cache holds less. Must keep the metadata
   * identifying the object (name, namespace, resourceVersion).
   */
  transform?: (object: T) => T;
  onError?: (err: unknown) => void;
}

export const objectKey = (o: k8s.KubernetesObject) =>
  o.metadata?.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : `${o.metadata?.name}`;

/**
 * A cache of one kind of object kept current by list, then watch from the list's resourceVersion.
 * It never stops on its own: a watch that ends is resumed from the last resourceVersion seen (bookmarks
 * included), 410 Gone triggers a fresh list whose difference to the cache is delivered as events, and
 * any other error (the API server went away) is retried with capped exponential backoff.
 */
export class Informer<T extends k8s.KubernetesObject> {
  private readonly cache = new Store<T>();
  private readonly handlers: ((e: InformerEvent<T>) => void)[] = [];
  private readonly objects: k8s.KubernetesObjectApi;
  private readonly watcher: k8s.Watch;
  private resourceVersion: string | undefined;
  private running = false;
  private abort: AbortController | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private syncedResolve!: () => void;
  /** Resolves after the first list has filled the cache. */
  readonly synced = new Promise<void>((resolve) => (this.syncedResolve = resolve));
  /** How many times the informer listed from scratch (after start: 410 Gone or a failed resume). */
  relists = 0;

  private readonly options: InformerOptions<T>;

  /** The transform every object goes through before it is cached (InformerOptions.transform). */
  get transform(): ((object: T) => T) | undefined {
    return this.options.transform;
  }

  constructor(kc: k8s.KubeConfig, options: InformerOptions<T>) {
    this.options = options;
    this.objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    this.watcher = new k8s.Watch(kc);
  }

  on(handler: (e: InformerEvent<T>) => void): this {
    this.handlers.push(handler);
    return this;
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  get(name: string, namespace?: string): T | undefined {
    return this.cache.get(namespace ? `${namespace}/${name}` : name);
  }

  /** The cached objects `indexer` keys as `value`, kept up to date per event (Store.byIndex). */
  byIndex(indexer: Indexer<T>, value: string): readonly T[] {
    return this.cache.byIndex(indexer, value);
  }

  async start(): Promise<void> {
    if (this.running) return this.synced;
    this.running = true;
    void this.run();
    if (this.options.resyncMs) {
      this.resyncTimer = setInterval(() => {
        for (const object of this.cache.values()) this.emit({ type: "resync", object });
      }, this.options.resyncMs);
      this.resyncTimer.unref();
    }
    return this.synced;
  }

  stop(): void {
    this.running = false;
    clearInterval(this.resyncTimer);
    this.abort?.abort();
  }

  private received(object: T): T {
    return this.options.transform ? this.options.transform(object) : object;
  }

  private emit(e: InformerEvent<T>): void {
    for (const h of this.handlers) {
      try {
        h(e);
      } catch (err) {
        this.options.onError?.(err);
      }
    }
  }

  private async run(): Promise<void> {
    let backoff = 100;
    const maxBackoff = this.options.maxBackoffMs ?? 5_000;
    while (this.running) {
      try {
        if (this.resourceVersion === undefined) await this.relist();
        await this.watchOnce();
        backoff = 100;
      } catch (err) {
        if (!this.running) return;
        if (isGone(err)) {
          this.resourceVersion = undefined;
          continue;
        }
        this.options.onError?.(err);
        await sleep(backoff);
        backoff = Math.min(backoff * 2, maxBackoff);
      }
    }
  }

  private async relist(): Promise<void> {
    const { resource, namespace, labelSelector, fieldSelector } = this.options;
    const items: T[] = [];
    let continueToken: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = await this.objects.list<T>(
        apiVersionOf(resource),
        resource.kind,
        namespace,
        undefined,
        undefined,
        undefined,
        fieldSelector,
        labelSelector,
        500,
        continueToken,
      );
      // List items carry no apiVersion/kind; restore them so handlers see whole objects.
      for (const item of page.items)
        items.push(this.received({ ...item, apiVersion: apiVersionOf(resource), kind: resource.kind }));
      continueToken = page.metadata?._continue;
      resourceVersion = page.metadata?.resourceVersion;
    } while (continueToken);

    const seen = new Set<string>();
    for (const object of items) {
      const key = objectKey(object);
      seen.add(key);
      const old = this.cache.get(key);
      // An unchanged object keeps its identity, so what was derived from it stays valid.
      if (old && old.metadata?.resourceVersion === object.metadata?.resourceVersion) continue;
      this.cache.set(key, object);
      this.emit(old ? { type: "update", object, old } : { type: "add", object });
    }
    for (const [key, object] of this.cache.entries()) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        this.emit({ type: "delete", object });
      }
    }
    this.resourceVersion = resourceVersion;
    if (this.relists++ === 0) this.syncedResolve();
  }

  private watchOnce(): Promise<void> {
    const { resource, namespace, labelSelector, fieldSelector } = this.options;
    return new Promise<void>((resolve, reject) => {
      let gone = false;
      const query = {
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        labelSelector,
        fieldSelector,
        // The server ends each watch after a while; we resume from the last resourceVersion.
        timeoutSeconds: 240 + Math.floor(Math.random() * 60),
      };
      this.watcher
        .watch(
          collectionPath(resource, namespace),
          query,
          (phase, received: T) => {
            if (phase === "ERROR") {
              if (statusCode(received) === 410 || (received as { code?: number }).code === 410) gone = true;
              return;
            }
            const rv = received.metadata?.resourceVersion;
            if (rv) this.resourceVersion = rv;
            if (phase === "BOOKMARK") return;
            const object = this.received(received);
            const key = objectKey(object);
            const old = this.cache.get(key);
            if (phase === "DELETED") {
              this.cache.delete(key);
              this.emit({ type: "delete", object });
            } else {
              this.cache.set(key, object);
              this.emit(old ? { type: "update", object, old } : { type: "add", object });
            }
          },
          (err) => {
            if (gone) reject(Object.assign(new Error("watch expired (410 Gone)"), { code: 410 }));
            else if (err && !endsQuietly(err)) reject(err);
            else resolve();
          },
        )
        .then((abort) => (this.abort = abort), reject);
    });
  }
}

/**
 * A watch we stopped, or one the client ended after 30 s without data (its inactivity timeout,
 * shorter than the server's bookmark interval): resumed from the last resourceVersion at once,
 * without an error or a backoff.
 */
function endsQuietly(err: unknown): boolean {
  const name = (err as { name?: string }).name;
  return name === "AbortError" || name === "TimeoutError";
}
