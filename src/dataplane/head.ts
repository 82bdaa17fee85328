// The head role: stateless router. Fences older epochs, then serves get/put/delete/cas
// by quorum over the servers that own each key's partition.
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Admission, HEAD_SERVING_LIMITS, type ServingLimits } from "./admission.ts";
import { OP_PATH, opRequestSchema, precheckOp, type FailureOutcome, type OpRequest } from "./api.ts";
import { checkExpected, HttpError, parseHostPort, sendError, sendJson, stampIdentity } from "./http-util.ts";
import type { Identity } from "./identity.ts";
import { KeyedMutex } from "./key-lock.ts";
import { createLogger, type Logger } from "./log.ts";
import { listenForMetrics } from "./metrics-listener.ts";
import { Counter, createRegistry, Gauge, Histogram } from "./metrics.ts";
import { partitionOfKey, placePartitions, type ServerAddress } from "./placement.ts";
import { minimumReadQuorum, stillPossible, writeOutcome, writeQuorum, type ReplicaReply } from "./quorum.ts";
import { compareSequence, exists, LIMITS, newestRecord, type KvRecord, type Sequence } from "./record.ts";
import { ServerBatcher, ServerRpc } from "./server-client.ts";
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
  /** Keys whose latest record the head remembers, to skip the read before a write. */
  readonly cacheSize?: number;
  /** Caps on what clients may hold; each unset field keeps its HEAD_SERVING_LIMITS default. */
  readonly limits?: Partial<ServingLimits>;
  /** host:port of a listener serving only GET /metrics (for a NetworkPolicy that lets scrapers reach only it). */
  readonly metricsListen?: string;
  readonly logger?: Logger;
  readonly processMetrics?: boolean;
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

/** What the head remembers of a key's latest record: enough to number the next write. */
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

export async function startHead(options: HeadOptions): Promise<HeadHandle> {
  const log = options.logger ?? createLogger("understudy-head");
  const partitions = options.partitions ?? HEAD_DEFAULTS.partitions;
  const replicationFactor = options.replicationFactor ?? HEAD_DEFAULTS.replicationFactor;
  const w = writeQuorum(replicationFactor);
  const readQuorum = options.readQuorum ?? minimumReadQuorum(replicationFactor, w);
  if (readQuorum + w <= replicationFactor || readQuorum > replicationFactor) {
    throw new Error(`read quorum ${readQuorum} must satisfy R_read + W > R (W=${w}, R=${replicationFactor})`);
  }
  const placement = placePartitions(options.servers, partitions, replicationFactor);
  const epoch = options.epoch;
  const headId = randomUUID();
  const self: Identity = {
    service: options.identity?.service ?? "",
    role: "head",
    pod: options.identity?.pod ?? "",
    epoch,
  };
  const rpc = new ServerRpc(options.token, options.serverTimeoutMs ?? HEAD_DEFAULTS.serverTimeoutMs, {
    service: self.service,
    role: "server",
  });
  const batcher = new ServerBatcher(rpc, epoch, headId);
  const locks = new KeyedMutex();
  const cache = new Map<string, KeyState>();
  const cacheSize = options.cacheSize ?? HEAD_DEFAULTS.cacheSize;
  let n = 0;
  let isReady = false;
  let superseded: string | null = null;
  let closing = false;

  const registry = createRegistry(options.processMetrics ?? false);
  const ops = new Counter({
    name: "understudy_head_ops_total",
    help: "Client operations by operation and result.",
    labelNames: ["op", "result"],
    registers: [registry],
  });
  const opSeconds = new Histogram({
    name: "understudy_head_op_seconds",
    help: "Client operation latency.",
    labelNames: ["op"],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 2.5],
    registers: [registry],
  });
  const repairs = new Counter({
    name: "understudy_head_read_repairs_total",
    help: "Records written back to lagging replicas by reads.",
    registers: [registry],
  });
  new Gauge({ name: "understudy_head_epoch", help: "This head's epoch.", registers: [registry] }).set(epoch);
  new Gauge({
    name: "understudy_head_ready",
    help: "1 once fencing is done and the head serves requests.",
    registers: [registry],
    collect() {
      this.set(isReady && superseded === null ? 1 : 0);
    },
  });

  const markSuperseded = (message: string) => {
    if (superseded !== null) return;
    superseded = message;
    log.warn({ epoch, reason: message }, "a newer head has fenced this one; refusing all requests");
  };

  const cacheSet = (key: string, state: KeyState | null) => {
    cache.delete(key);
    if (state === null) return;
    cache.set(key, state);
    if (cache.size > cacheSize) cache.delete(cache.keys().next().value!);
  };

  const fencedError = (outcome: FailureOutcome) =>
    new OpFailure(
      409,
      "head_fenced",
      `head epoch ${epoch} has been superseded (${superseded}); send requests to the current head`,
      outcome,
    );

  function checkServing(): void {
    if (superseded !== null) throw fencedError("not_applied");
    if (closing)
      throw new OpFailure(503, "shutting_down", "head is shutting down; nothing was applied", "not_applied");
    if (!isReady) {
      throw new OpFailure(
        503,
        "not_ready",
        `head is still fencing older epochs (epoch ${epoch}); nothing was applied, retry shortly`,
        "not_applied",
      );
    }
  }

  /**
   * Sends `record` to `targets` and settles as soon as `needed` of them made it durable.
   * If that becomes impossible, waits for every reply so the outcome is exact.
   */
  function replicate(
    record: KvRecord,
    targets: readonly string[],
    needed: number,
  ): Promise<{ acknowledged: boolean; replies: ReplicaReply[]; messages: string[] }> {
    return new Promise((resolve) => {
      const replies: ReplicaReply[] = [];
      const messages: string[] = [];
      let acks = 0;
      let failed = 0;
      let settled = false;
      for (const address of targets) {
        void batcher.apply(address, record).then((r) => {
          replies.push(r.kind);
          if (r.kind === "ok") acks++;
          else {
            failed++;
            messages.push(r.message);
            if (r.kind === "fenced") markSuperseded(r.message);
          }
          if (settled) return;
          if (acks >= needed) {
            settled = true;
            resolve({ acknowledged: true, replies, messages });
          } else if (!stillPossible(targets.length, failed, needed) && replies.length === targets.length) {
            settled = true;
            resolve({ acknowledged: false, replies, messages });
          }
        });
      }
    });
  }

  /**
   * Quorum read with write-back: the newest record among R_read replies is returned only
   * once W replicas hold it, so no later read can miss what this one returned.
   */
  async function quorumRead(key: string, partition: number): Promise<KvRecord | null> {
    const replicas = placement[partition]!;
    const replies = await new Promise<{ address: string; record: KvRecord | null }[]>((resolve, reject) => {
      const oks: { address: string; record: KvRecord | null }[] = [];
      const messages: string[] = [];
      let answer: KvRecord | null | undefined;
      for (const address of replicas) {
        void batcher.read(address, key).then((r) => {
          if (r.kind !== "ok") {
            messages.push(r.message);
            if (r.kind === "fenced") markSuperseded(r.message);
            if (answer === undefined && !stillPossible(replicas.length, messages.length, readQuorum)) {
              answer = null;
              reject(
                superseded !== null
                  ? fencedError("not_applied")
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
              repairs.inc();
              void batcher.apply(address, answer);
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
    const holders = replies.filter((r) => r.record !== null && compareSequence(r.record, newest) === 0);
    if (holders.length >= w) return newest;
    const lagging = replicas.filter((a) => !holders.some((h) => h.address === a));
    repairs.inc(lagging.length);
    const repaired = await replicate(newest, lagging, w - holders.length);
    if (!repaired.acknowledged) {
      if (superseded !== null) throw fencedError("not_applied");
      throw new OpFailure(
        503,
        "quorum_unavailable",
        `read of partition ${partition} could not write the newest record back to a write quorum: ${repaired.messages.join("; ")}`,
        "not_applied",
      );
    }
    return newest;
  }

  async function get(key: string) {
    const partition = partitionOfKey(key, partitions);
    return locks.run(key, async () => {
      checkServing();
      try {
        const record = await quorumRead(key, partition);
        cacheSet(key, keyState(record));
        const found = exists(record);
        return { key, found, value: found ? record!.value : null, version: found ? record!.version : 0 };
      } catch (err) {
        cache.delete(key);
        throw err;
      }
    });
  }

  /**
   * put, delete and cas: under the key's lock, learn the current version (cache or
   * quorum read), decide, then write the next version with a fresh sequence.
   */
  async function write(key: string, value: string | null, expectedVersion: number | undefined) {
    const partition = partitionOfKey(key, partitions);
    return locks.run(key, async () => {
      checkServing();
      let current = cache.get(key);
      if (current === undefined) {
        try {
          current = keyState(await quorumRead(key, partition)) ?? undefined;
        } catch (err) {
          cache.delete(key);
          throw err;
        }
      }
      if (expectedVersion !== undefined) {
        const matches =
          expectedVersion === 0
            ? !(current?.exists ?? false)
            : current?.exists === true && current.version === expectedVersion;
        if (!matches) {
          const currentVersion = current?.exists === true ? current.version : 0;
          throw new HttpError(
            412,
            "version_mismatch",
            `expected version ${expectedVersion} but the key is at version ${currentVersion}; nothing was applied`,
            { currentVersion, outcome: "not_applied" },
          );
        }
      }
      n += 1;
      const record: KvRecord = { key, partition, epoch, n, version: (current?.version ?? 0) + 1, value };
      const result = await replicate(record, placement[partition]!, w);
      if (result.acknowledged) {
        cacheSet(key, keyState(record));
        return { key, version: record.version };
      }
      cache.delete(key);
      const outcome = writeOutcome(result.replies, w) === "not_applied" ? "not_applied" : "unknown";
      if (superseded !== null) throw fencedError(outcome);
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

  async function execute(request: OpRequest): Promise<unknown> {
    switch (request.op) {
      case "get":
        return get(request.key);
      case "put":
        return write(request.key, request.value, undefined);
      case "delete":
        return write(request.key, null, undefined);
      case "cas":
        return write(request.key, request.value, request.expectedVersion);
    }
  }

  let inflight = 0;
  let inflightDone: (() => void) | null = null;

  async function route(req: IncomingMessage, res: ServerResponse, path: string): Promise<[string, number]> {
    const method = req.method ?? "GET";
    if (method === "GET" && path === "/healthz") {
      const status = superseded === null ? 200 : 503;
      sendJson(res, status, { status: superseded === null ? "ok" : "fenced", ...self, ready: isReady });
      return ["healthz", status];
    }
    if (method === "GET" && path === "/readyz") {
      const ok = isReady && superseded === null && !closing;
      sendJson(res, ok ? 200 : 503, { ready: ok, ...self, fenced: superseded !== null });
      return ["readyz", ok ? 200 : 503];
    }
    if (method === "GET" && path === "/metrics") {
      const text = await registry.metrics();
      res.writeHead(200, { "content-type": registry.contentType });
      res.end(text);
      return ["metrics", 200];
    }
    if (path !== OP_PATH)
      throw new HttpError(404, "not_found", `no such path ${path}; operations go to POST ${OP_PATH}`);
    if (method !== "POST") throw new HttpError(405, "method_not_allowed", `${OP_PATH} takes POST`);
    checkExpected(req, self, { outcome: "not_applied" });
    const body = await admission.readBody(req, res, LIMITS.maxBodyBytes);
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
      const result = await execute(request);
      sendJson(res, 200, result);
      return [request.op, 200];
    } finally {
      opSeconds.observe({ op: request.op }, (performance.now() - started) / 1000);
    }
  }

  const admission = new Admission("head", { ...HEAD_SERVING_LIMITS, ...options.limits });
  const http = admission.createServer((req, res) => {
    inflight++;
    stampIdentity(res, self);
    const path = (req.url ?? "/").split("?")[0]!;
    return route(req, res, path)
      .catch((err: unknown): [string, number] => {
        const e =
          err instanceof HttpError
            ? err
            : new HttpError(500, "internal", `head error: ${(err as Error).message}`);
        if (e.status === 500) log.error({ err }, "request failed");
        if (e.status === 413) res.setHeader("connection", "close");
        sendError(res, e);
        return ["other", e.status];
      })
      .then(([op, status]) => ops.inc({ op, result: String(status) }))
      .finally(() => {
        inflight--;
        if (inflight === 0) inflightDone?.();
      });
  });
  const { host, port } = parseHostPort(options.listen);
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(port, host, () => resolve());
  });
  const address = `${host}:${(http.address() as AddressInfo).port}`;
  const url = `http://${address}`;
  const metricsListener =
    options.metricsListen === undefined
      ? null
      : await listenForMetrics(options.metricsListen, registry, admission.limits);
  log.info(
    {
      url,
      metrics: metricsListener?.address,
      epoch,
      headId,
      service: self.service,
      pod: self.pod,
      servers: options.servers.length,
      w,
      readQuorum,
    },
    "listening",
  );

  // Fencing: claim the epoch on every server; ready once each partition has a write quorum fenced.
  // Servers not reached yet keep being retried, so an old head loses every server, not just a quorum.
  let resolveReady!: () => void;
  let rejectReady!: (e: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  ready.catch(() => undefined);
  const fenced = new Set<string>();
  const warned = new Set<string>();
  const quorumFenced = () => placement.every((replicas) => replicas.filter((a) => fenced.has(a)).length >= w);
  const fenceOne = async (address: string): Promise<void> => {
    while (!closing && superseded === null) {
      const r = await rpc.post(address, PATHS.fence, { epoch, head: headId }, epochStateSchema);
      if (r.kind === "ok") {
        fenced.add(address);
        if (!isReady && quorumFenced()) {
          isReady = true;
          log.info({ epoch, fenced: fenced.size }, "fenced a write quorum of every partition; ready");
          resolveReady();
        }
        return;
      }
      if (r.kind === "fenced") {
        markSuperseded(r.message);
        rejectReady(new Error(`epoch ${epoch} cannot be taken: ${r.message}`));
        return;
      }
      if (!warned.has(address)) {
        warned.add(address);
        log.warn({ server: address, reason: r.message }, "cannot fence server yet; retrying");
      }
      await new Promise((resolve) => setTimeout(resolve, options.fenceRetryMs ?? HEAD_DEFAULTS.fenceRetryMs));
    }
  };
  const fencing = Promise.all(options.servers.map((s) => fenceOne(s.address))).catch((err: unknown) =>
    log.error({ err }, "fencing stopped"),
  );

  let closed: Promise<void> | null = null;
  const close = () => {
    closed ??= (async () => {
      closing = true;
      rejectReady(new Error("head closed"));
      const stopped = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeIdleConnections();
      if (inflight > 0) await new Promise<void>((resolve) => (inflightDone = resolve));
      await fencing;
      http.closeAllConnections();
      await stopped;
      await metricsListener?.close();
      log.info("closed");
    })();
    return closed;
  };

  return { url, address, epoch, headId, identity: self, ready, close };
}
