// The head role: stateless router. Fences older epochs, then serves get/put/delete/cas
// by quorum over the servers that own each key's partition.
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Admission, HEAD_SERVING_LIMITS, type ServingLimits } from "./admission.ts";
import { OP_PATH, opRequestSchema, precheckOp, type FailureOutcome, type OpRequest } from "./api.ts";
import type { ClientTokens } from "./client-auth.ts";
import { checkExpected, HttpError, sendError, sendJson, stampIdentity } from "./http-util.ts";
import type { Identity } from "./identity.ts";
import { KeyedMutex } from "./key-lock.ts";
import type { ServingListener } from "./listener.ts";
import { createLogger, type Logger } from "./log.ts";
import { listenForMetrics, type MetricsListener } from "./metrics-listener.ts";
import { Counter, createRegistry, Gauge, Histogram, type Registry } from "./metrics.ts";
import { partitionOfKey, placePartitions, type ServerAddress } from "./placement.ts";
import {
  minimumReadQuorum,
  stillPossible,
  writeOutcome,
  writeQuorum,
  type ReplicaReply,
  type WriteOutcome,
} from "./quorum.ts";
import {
  compareSequence,
  exists,
  LIMITS,
  MAX_COUNTER,
  MAX_EPOCH,
  newestRecord,
  versionOf,
  type KvRecord,
  type Sequence,
} from "./record.ts";
import { ServerBatcher, ServerRpc } from "./server-client.ts";
import { Dialer, type TlsMaterial, type TlsMode } from "./tls.ts";
import { epochStateSchema, PATHS } from "./wire.ts";

export interface HeadOptions {
  /** host:port to listen on; port 0 picks a free one. */
  readonly listen: string;
  readonly token: string;
  readonly servers: readonly ServerAddress[];
  /** This head's epoch; must be higher than every earlier head's (the operator raises it at each failover). */
  readonly epoch: number;
  /**
   * Who this head is: its StorageService's UID and its pod's name. Named on every reply and in
   * /healthz, so a probe or client that reached another process at this address can tell; also
   * what the head expects of its servers (their replies must name the same service).
   */
  readonly identity?: { readonly service?: string; readonly pod?: string };
  readonly partitions?: number;
  readonly replicationFactor?: number;
  /** Replies a read waits for; default R - W + 1, the smallest that meets every write quorum. */
  readonly readQuorum?: number;
  readonly serverTimeoutMs?: number;
  readonly fenceRetryMs?: number;
  /** Keys whose latest record the head remembers, to skip the read before a compare-and-set. */
  readonly cacheSize?: number;
  /** Caps on what clients may hold; each unset field keeps its HEAD_SERVING_LIMITS default. */
  readonly limits?: Partial<ServingLimits>;
  /** host:port of a listener serving only GET /metrics (for a NetworkPolicy that lets scrapers reach only it). */
  readonly metricsListen?: string;
  readonly logger?: Logger;
  readonly processMetrics?: boolean;
  /**
   * TLS: the head serves `material`'s certificate to clients (and, in permissive mode, plain HTTP
   * beside it) and dials its servers over TLS, trusting `material`'s CA. Unset or disabled: plain.
   */
  readonly tls?: { readonly mode: TlsMode; readonly material: TlsMaterial };
  /** Clients allowed to operate (by their tokens' digests); unset: any client that reaches the head. */
  readonly clientTokens?: ClientTokens;
}

export interface HeadHandle {
  readonly url: string;
  readonly address: string;
  readonly epoch: number;
  /** This process's identity; its epoch belongs to it alone. */
  readonly headId: string;
  /** What this head says it is on every reply. */
  readonly identity: Identity;
  /** Resolves once a write quorum of every partition has taken this epoch; rejects if a newer head exists. */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

export const HEAD_DEFAULTS = {
  partitions: 64,
  replicationFactor: 3,
  serverTimeoutMs: 2000,
  fenceRetryMs: 250,
  cacheSize: 100_000,
} as const;

/** What the head remembers of a key's latest record: enough to check a compare-and-set. */
interface KeyState extends Sequence {
  readonly version: number;
  readonly exists: boolean;
}

class OpFailure extends HttpError {
  constructor(status: number, code: string, message: string, outcome: FailureOutcome) {
    super(status, code, message, { outcome });
  }
}

function keyState(record: KvRecord | null): KeyState | null {
  return record === null
    ? null
    : { epoch: record.epoch, n: record.n, version: record.version, exists: exists(record) };
}

/** Starts a head: listens at once, and is ready (`ready`) once it has fenced older epochs. */
export function startHead(options: HeadOptions): Promise<HeadHandle> {
  return Head.start(options);
}

/**
 * One head process's router: the quorum logic and request handlers as methods over the state they
 * share (the sequence counter, the key cache, readiness and fencing).
 */
class Head implements HeadHandle {
  readonly epoch: number;
  readonly headId = randomUUID();
  readonly identity: Identity;
  readonly ready: Promise<void>;
  #address = "";

  readonly #options: HeadOptions;
  readonly #log: Logger;
  readonly #partitions: number;
  readonly #w: number;
  readonly #readQuorum: number;
  readonly #placement: readonly (readonly string[])[];
  readonly #rpc: ServerRpc;
  readonly #batcher: ServerBatcher;
  readonly #locks = new KeyedMutex();
  readonly #cache = new Map<string, KeyState>();
  readonly #cacheSize: number;
  readonly #registry: Registry;
  readonly #ops: Counter<"op" | "result">;
  readonly #opSeconds: Histogram<"op">;
  readonly #repairs: Counter;
  readonly #admission: Admission;
  readonly #http: ServingListener;
  readonly #dialer: Dialer;
  #metricsListener: MetricsListener | null = null;
  /**
   * The counter of this epoch's last write. It starts at 0 in every head process: an epoch
   * belongs to one head process (servers refuse it from any other), so no record of this epoch
   * exists before this head's first write.
   */
  #n = 0;
  /** Every write this epoch can number has been numbered. */
  #exhausted = false;
  #isReady = false;
  #superseded: string | null = null;
  #closing = false;
  #closed: Promise<void> | null = null;
  #inflight = 0;
  #inflightDone: (() => void) | null = null;
  #fencing: Promise<unknown> = Promise.resolve();
  readonly #fenced = new Set<string>();
  readonly #warned = new Set<string>();
  #resolveReady!: () => void;
  #rejectReady!: (e: Error) => void;

  get address(): string {
    return this.#address;
  }

  /** The head's base URL: https when it serves TLS (in permissive mode it takes plain HTTP too). */
  get url(): string {
    return `${this.#dialer.scheme}://${this.#address}`;
  }

  static async start(options: HeadOptions): Promise<Head> {
    const head = new Head(options);
    await head.#listen();
    head.#fencing = Promise.all(options.servers.map((s) => head.#fenceOne(s.address))).catch((err: unknown) =>
      head.#log.error({ err }, "fencing stopped"),
    );
    return head;
  }

  private constructor(options: HeadOptions) {
    this.#options = options;
    this.#log = options.logger ?? createLogger("understudy-head");
    this.#partitions = options.partitions ?? HEAD_DEFAULTS.partitions;
    const replicationFactor = options.replicationFactor ?? HEAD_DEFAULTS.replicationFactor;
    this.#w = writeQuorum(replicationFactor);
    this.#readQuorum = options.readQuorum ?? minimumReadQuorum(replicationFactor, this.#w);
    if (this.#readQuorum + this.#w <= replicationFactor || this.#readQuorum > replicationFactor) {
      throw new Error(
        `read quorum ${this.#readQuorum} must satisfy R_read + W > R (W=${this.#w}, R=${replicationFactor})`,
      );
    }
    if (!Number.isInteger(options.epoch) || options.epoch < 0 || options.epoch > MAX_EPOCH) {
      throw new Error(
        `epoch ${options.epoch} is not an integer from 0 to ${MAX_EPOCH}, the most a version can hold`,
      );
    }
    this.#placement = placePartitions(options.servers, this.#partitions, replicationFactor);
    this.epoch = options.epoch;
    this.identity = {
      service: options.identity?.service ?? "",
      role: "head",
      pod: options.identity?.pod ?? "",
      epoch: this.epoch,
    };
    const tls = options.tls?.mode === "disabled" ? undefined : options.tls;
    this.#dialer = new Dialer(tls === undefined ? {} : { material: tls.material });
    this.#rpc = new ServerRpc(
      options.token,
      options.serverTimeoutMs ?? HEAD_DEFAULTS.serverTimeoutMs,
      { service: this.identity.service, role: "server" },
      this.#dialer,
    );
    this.#batcher = new ServerBatcher(this.#rpc, this.epoch, this.headId);
    this.#cacheSize = options.cacheSize ?? HEAD_DEFAULTS.cacheSize;
    this.ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.ready.catch(() => undefined);

    this.#registry = createRegistry(options.processMetrics ?? false);
    const registers = [this.#registry];
    this.#ops = new Counter({
      name: "understudy_head_ops_total",
      help: "Client operations by operation and result.",
      labelNames: ["op", "result"],
      registers,
    });
    this.#opSeconds = new Histogram({
      name: "understudy_head_op_seconds",
      help: "Client operation latency.",
      labelNames: ["op"],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 2.5],
      registers,
    });
    this.#repairs = new Counter({
      name: "understudy_head_read_repairs_total",
      help: "Records written back to lagging replicas by reads.",
      registers,
    });
    new Gauge({ name: "understudy_head_epoch", help: "This head's epoch.", registers }).set(this.epoch);
    const serving = () => (this.#isReady && this.#superseded === null ? 1 : 0);
    new Gauge({
      name: "understudy_head_ready",
      help: "1 once fencing is done and the head serves requests.",
      registers,
      collect() {
        this.set(serving());
      },
    });

    this.#admission = new Admission("head", { ...HEAD_SERVING_LIMITS, ...options.limits });
    this.#http = this.#admission.createServer(
      (req, res) => this.#handle(req, res),
      tls === undefined ? undefined : { mode: tls.mode as "permissive" | "required", material: tls.material },
    );
  }

  async #listen(): Promise<void> {
    this.#address = await this.#http.listen(this.#options.listen);
    this.#metricsListener = await listenForMetrics(
      this.#options.metricsListen,
      this.#registry,
      this.#admission.limits,
    );
    this.#log.info(
      {
        url: this.url,
        metrics: this.#metricsListener?.address,
        epoch: this.epoch,
        headId: this.headId,
        service: this.identity.service,
        pod: this.identity.pod,
        servers: this.#options.servers.length,
        w: this.#w,
        readQuorum: this.#readQuorum,
      },
      "listening",
    );
  }

  #markSuperseded(message: string): void {
    if (this.#superseded !== null) return;
    this.#superseded = message;
    this.#log.warn(
      { epoch: this.epoch, reason: message },
      "a newer head has fenced this one; refusing all requests",
    );
  }

  #cacheSet(key: string, state: KeyState | null): void {
    this.#cache.delete(key);
    if (state === null) return;
    this.#cache.set(key, state);
    if (this.#cache.size > this.#cacheSize) this.#cache.delete(this.#cache.keys().next().value!);
  }

  #fencedError(outcome: FailureOutcome): OpFailure {
    return new OpFailure(
      409,
      "head_fenced",
      `head epoch ${this.epoch} has been superseded (${this.#superseded}); send requests to the current head`,
      outcome,
    );
  }

  #checkServing(): void {
    if (this.#superseded !== null) throw this.#fencedError("not_applied");
    if (this.#closing)
      throw new OpFailure(503, "shutting_down", "head is shutting down; nothing was applied", "not_applied");
    if (!this.#isReady) {
      throw new OpFailure(
        503,
        "not_ready",
        `head is still fencing older epochs (epoch ${this.epoch}); nothing was applied, retry shortly`,
        "not_applied",
      );
    }
  }

  /**
   * Sends `record` to `targets` and settles as soon as `needed` of them made it durable, or as
   * soon as the answers so far decide that it cannot be (never on a silent replica's timeout
   * when the others already decided the outcome).
   */
  #replicate(
    record: KvRecord,
    targets: readonly string[],
    needed: number,
  ): Promise<{ outcome: WriteOutcome; replies: ReplicaReply[]; messages: string[] }> {
    return new Promise((resolve) => {
      const replies: ReplicaReply[] = [];
      const messages: string[] = [];
      let settled = false;
      for (const address of targets) {
        void this.#batcher.apply(address, record).then((r) => {
          replies.push(r.kind);
          if (r.kind !== "ok") {
            messages.push(r.message);
            if (r.kind === "fenced") this.#markSuperseded(r.message);
          }
          if (settled) return;
          const outcome = writeOutcome(replies, needed, targets.length - replies.length);
          if (outcome !== null) {
            settled = true;
            resolve({ outcome, replies: [...replies], messages: [...messages] });
          }
        });
      }
    });
  }

  /**
   * Quorum read with write-back: the newest record among R_read replies is returned only
   * once W replicas hold it, so no later read can miss what this one returned.
   */
  async #quorumRead(key: string, partition: number): Promise<KvRecord | null> {
    const replicas = this.#placement[partition]!;
    const readQuorum = this.#readQuorum;
    const replies = await new Promise<{ address: string; record: KvRecord | null }[]>((resolve, reject) => {
      const oks: { address: string; record: KvRecord | null }[] = [];
      const messages: string[] = [];
      let answer: KvRecord | null | undefined;
      for (const address of replicas) {
        void this.#batcher.read(address, key).then((r) => {
          if (r.kind !== "ok") {
            messages.push(r.message);
            if (r.kind === "fenced") this.#markSuperseded(r.message);
            if (answer === undefined && !stillPossible(replicas.length, messages.length, readQuorum)) {
              answer = null;
              reject(
                this.#superseded !== null
                  ? this.#fencedError("not_applied")
                  : new OpFailure(
                      503,
                      "quorum_unavailable",
                      `read of partition ${partition} got ${oks.length} of the ${readQuorum} replies it needs: ${messages.join("; ")}`,
                      "not_applied",
                    ),
              );
            }
            return;
          }
          if (answer !== undefined) {
            // A late reply: bring that replica up to date in the background.
            if (answer !== null && (r.body === null || compareSequence(r.body, answer) < 0)) {
              this.#repairs.inc();
              void this.#batcher.apply(address, answer);
            }
            return;
          }
          oks.push({ address, record: r.body });
          if (oks.length === readQuorum) {
            answer = newestRecord(oks.map((o) => o.record));
            resolve(oks);
          }
        });
      }
    });
    const newest = newestRecord(replies.map((r) => r.record));
    if (newest === null) return null;
    const w = this.#w;
    const holders = replies.filter((r) => r.record !== null && compareSequence(r.record, newest) === 0);
    if (holders.length >= w) return newest;
    const lagging = replicas.filter((a) => !holders.some((h) => h.address === a));
    this.#repairs.inc(lagging.length);
    const repaired = await this.#replicate(newest, lagging, w - holders.length);
    if (repaired.outcome !== "acknowledged") {
      if (this.#superseded !== null) throw this.#fencedError("not_applied");
      throw new OpFailure(
        503,
        "quorum_unavailable",
        `read of partition ${partition} could not write the newest record back to a write quorum: ${repaired.messages.join("; ")}`,
        "not_applied",
      );
    }
    return newest;
  }

  async #get(key: string) {
    const partition = partitionOfKey(key, this.#partitions);
    return this.#locks.run(key, async () => {
      this.#checkServing();
      try {
        const record = await this.#quorumRead(key, partition);
        this.#cacheSet(key, keyState(record));
        const found = exists(record);
        return { key, found, value: found ? record!.value : null, version: found ? record!.version : 0 };
      } catch (err) {
        this.#cache.delete(key);
        throw err;
      }
    });
  }

  /** The next write's sequence and version; refuses once this head has numbered all it can. */
  #nextVersion(): { epoch: number; n: number; version: number } {
    if (this.#n >= MAX_COUNTER) {
      this.#exhausted = true;
      throw new OpFailure(
        503,
        "sequence_exhausted",
        `head epoch ${this.epoch} has numbered the ${MAX_COUNTER} writes an epoch can hold; nothing was applied, ` +
          "a head of a new epoch must take over (this head's /healthz fails so that the operator starts one)",
        "not_applied",
      );
    }
    this.#n += 1;
    const sequence = { epoch: this.epoch, n: this.#n };
    return { ...sequence, version: versionOf(sequence) };
  }

  /** A cas's condition, on the key's current record (this head's cache, or a quorum read). */
  async #checkExpected(key: string, partition: number, expectedVersion: number): Promise<void> {
    const matches = (state: KeyState | undefined) =>
      expectedVersion === 0
        ? !(state?.exists ?? false)
        : state?.exists === true && state.version === expectedVersion;
    const cached = this.#cache.get(key);
    if (cached !== undefined && matches(cached)) return; // the write itself is refused if we are superseded
    // A mismatch answers the client with a version: the cache cannot give it alone, for a superseded
    // head's cache is stale. A quorum read gives it, or refuses this head.
    let current: KeyState | undefined;
    try {
      current = keyState(await this.#quorumRead(key, partition)) ?? undefined;
    } catch (err) {
      this.#cache.delete(key);
      throw err;
    }
    if (matches(current)) return;
    const currentVersion = current?.exists === true ? current.version : 0;
    throw new HttpError(
      412,
      "version_mismatch",
      `expected version ${expectedVersion} but the key is at version ${currentVersion}; nothing was applied`,
      { currentVersion, outcome: "not_applied" },
    );
  }

  /**
   * put, delete and cas, under the key's lock: a put or a delete is numbered at once (this head
   * is the only writer of its epoch, and its sequence is above every older epoch's, so it needs
   * nothing from the key's current record); a cas first learns the current version (cache or
   * quorum read) and checks it. Then one round trip writes the record to a write quorum.
   */
  async #write(key: string, value: string | null, expectedVersion: number | undefined) {
    const partition = partitionOfKey(key, this.#partitions);
    return this.#locks.run(key, async () => {
      this.#checkServing();
      if (expectedVersion !== undefined) await this.#checkExpected(key, partition, expectedVersion);
      const record: KvRecord = { key, partition, ...this.#nextVersion(), value };
      const w = this.#w;
      const result = await this.#replicate(record, this.#placement[partition]!, w);
      if (result.outcome === "acknowledged") {
        this.#cacheSet(key, keyState(record));
        return { key, version: record.version };
      }
      this.#cache.delete(key);
      const outcome = result.outcome;
      if (this.#superseded !== null) throw this.#fencedError(outcome);
      const acks = result.replies.filter((r) => r === "ok").length;
      throw new OpFailure(
        503,
        "quorum_unavailable",
        `write reached ${acks} of the ${w} replicas it needs in partition ${partition}` +
          (outcome === "unknown"
            ? " (it may still become visible: outcome unknown)"
            : " (nothing was applied)") +
          `: ${result.messages.join("; ")}`,
        outcome,
      );
    });
  }

  async #execute(request: OpRequest): Promise<unknown> {
    switch (request.op) {
      case "get":
        return this.#get(request.key);
      case "put":
        return this.#write(request.key, request.value, undefined);
      case "delete":
        return this.#write(request.key, null, undefined);
      case "cas":
        return this.#write(request.key, request.value, request.expectedVersion);
    }
  }

  async #route(req: IncomingMessage, res: ServerResponse, path: string): Promise<[string, number]> {
    const method = req.method ?? "GET";
    const fenced = this.#superseded !== null;
    if (method === "GET" && path === "/healthz") {
      // A head that can number no more writes is replaced like a failed one: a new epoch starts over.
      const condition = fenced ? "fenced" : this.#exhausted ? "exhausted" : "ok";
      const status = condition === "ok" ? 200 : 503;
      sendJson(res, status, { status: condition, ...this.identity, ready: this.#isReady });
      return ["healthz", status];
    }
    if (method === "GET" && path === "/readyz") {
      const ok = this.#isReady && !fenced && !this.#closing;
      sendJson(res, ok ? 200 : 503, { ready: ok, ...this.identity, fenced });
      return ["readyz", ok ? 200 : 503];
    }
    if (method === "GET" && path === "/metrics") {
      const text = await this.#registry.metrics();
      res.writeHead(200, { "content-type": this.#registry.contentType });
      res.end(text);
      return ["metrics", 200];
    }
    if (path !== OP_PATH)
      throw new HttpError(404, "not_found", `no such path ${path}; operations go to POST ${OP_PATH}`);
    if (method !== "POST") throw new HttpError(405, "method_not_allowed", `${OP_PATH} takes POST`);
    this.#options.clientTokens?.authenticate(req);
    checkExpected(req, this.identity, { outcome: "not_applied" });
    const body = await this.#admission.readBody(req, res, LIMITS.maxBodyBytes);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch (err) {
      throw new HttpError(400, "invalid_json", `request body is not valid JSON: ${(err as Error).message}`);
    }
    precheckOp(parsed);
    const checked = opRequestSchema.safeParse(parsed);
    if (!checked.success) {
      const issue = checked.error.issues[0]!;
      throw new HttpError(400, "invalid_request", `${issue.path.join(".") || "body"}: ${issue.message}`);
    }
    const request = checked.data;
    const started = performance.now();
    try {
      const result = await this.#execute(request);
      sendJson(res, 200, result);
      return [request.op, 200];
    } finally {
      this.#opSeconds.observe({ op: request.op }, (performance.now() - started) / 1000);
    }
  }

  #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#inflight++;
    stampIdentity(res, this.identity);
    const path = (req.url ?? "/").split("?")[0]!;
    return this.#route(req, res, path)
      .catch((err: unknown): [string, number] => {
        const e =
          err instanceof HttpError
            ? err
            : new HttpError(500, "internal", `head error: ${(err as Error).message}`);
        if (e.status === 500) this.#log.error({ err }, "request failed");
        if (e.status === 413) res.setHeader("connection", "close");
        sendError(res, e);
        return ["other", e.status];
      })
      .then(([op, status]) => this.#ops.inc({ op, result: String(status) }))
      .finally(() => {
        this.#inflight--;
        if (this.#inflight === 0) this.#inflightDone?.();
      });
  }

  #quorumFenced(): boolean {
    return this.#placement.every((replicas) => replicas.filter((a) => this.#fenced.has(a)).length >= this.#w);
  }

  /**
   * Fencing: claims the epoch on one server, retrying until it answers; ready once each partition
   * has a write quorum fenced. Servers not reached yet keep being retried, so an old head loses
   * every server, not just a quorum.
   */
  async #fenceOne(address: string): Promise<void> {
    while (!this.#closing && this.#superseded === null) {
      const r = await this.#rpc.post(
        address,
        PATHS.fence,
        { epoch: this.epoch, head: this.headId },
        epochStateSchema,
      );
      if (r.kind === "ok") {
        this.#fenced.add(address);
        if (!this.#isReady && this.#quorumFenced()) {
          this.#isReady = true;
          this.#log.info(
            { epoch: this.epoch, fenced: this.#fenced.size },
            "fenced a write quorum of every partition; ready",
          );
          this.#resolveReady();
        }
        return;
      }
      if (r.kind === "fenced") {
        this.#markSuperseded(r.message);
        this.#rejectReady(new Error(`epoch ${this.epoch} cannot be taken: ${r.message}`));
        return;
      }
      if (!this.#warned.has(address)) {
        this.#warned.add(address);
        this.#log.warn({ server: address, reason: r.message }, "cannot fence server yet; retrying");
      }
      await new Promise((resolve) =>
        setTimeout(resolve, this.#options.fenceRetryMs ?? HEAD_DEFAULTS.fenceRetryMs),
      );
    }
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      this.#rejectReady(new Error("head closed"));
      const stopped = this.#http.close();
      this.#http.closeIdleConnections();
      if (this.#inflight > 0) await new Promise<void>((resolve) => (this.#inflightDone = resolve));
      await this.#fencing;
      this.#http.closeAllConnections();
      await stopped;
      await this.#metricsListener?.close();
      await this.#dialer.close();
      this.#log.info("closed");
    })();
    return this.#closed;
  }
}
