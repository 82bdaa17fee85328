// The server role: stores its partitions' records durably and applies what heads send.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Admission, SERVER_SERVING_LIMITS, type ServingLimits } from "./admission.ts";
import { pullFromPeer, peersToSync, type PeerShare } from "./anti-entropy.ts";
import { admit } from "./epoch.ts";
import {
  checkBearer,
  checkExpected,
  HttpError,
  parseHostPort,
  parseJson,
  sendError,
  sendJson,
  stampIdentity,
} from "./http-util.ts";
import type { Identity } from "./identity.ts";
import { createLogger, type Logger } from "./log.ts";
import { listenForMetrics } from "./metrics-listener.ts";
import { Counter, createRegistry, Gauge, Histogram } from "./metrics.ts";
import { partitionOfKey, type ServerAddress } from "./placement.ts";
import { GroupCommitter } from "./group-commit.ts";
import { LIMITS } from "./record.ts";
import { ServerStore, type StoreOp, type StoreResult } from "./server-store.ts";
import { applyRequestSchema, fenceRequestSchema, PATHS, readRequestSchema } from "./wire.ts";

export interface ServerOptions {
  /** host:port to listen on; port 0 picks a free one. */
  readonly listen: string;
  readonly dataDir: string;
  readonly zone: string;
  /**
   * Who this server is: its StorageService's UID and its pod's name, named on every reply; requests
   * meant for another service are refused, and peers must name the same service.
   */
  readonly identity?: { readonly service?: string; readonly pod?: string };
  /** Shared secret every head-to-server and server-to-server request must carry. */
  readonly token: string;
  /** The service's servers (needed for anti-entropy; without it the server only serves). */
  readonly servers?: readonly ServerAddress[];
  /** This server's address as it appears in `servers` (default: the listen address). */
  readonly advertise?: string;
  readonly partitions?: number;
  readonly replicationFactor?: number;
  /** Epoch floor: requests from heads with a lower epoch are refused even before any head fenced. */
  readonly epoch?: number;
  readonly groupCommitWindowMs?: number;
  readonly maxBatch?: number;
  readonly antiEntropyIntervalMs?: number;
  /** Caps on what clients may hold; each unset field keeps its SERVER_SERVING_LIMITS default. */
  readonly limits?: Partial<ServingLimits>;
  /** host:port of a listener serving only GET /metrics (for a NetworkPolicy that lets scrapers reach only it). */
  readonly metricsListen?: string;
  readonly logger?: Logger;
  readonly processMetrics?: boolean;
}

export interface ServerHandle {
  /** http://host:port */
  readonly url: string;
  /** host:port actually bound. */
  readonly address: string;
  /** What this server says it is on every reply. */
  readonly identity: Identity;
  /** Resolves once the first anti-entropy round has been attempted with every peer. */
  readonly ready: Promise<void>;
  /** Runs one anti-entropy round now; resolves with the number of records it took from peers. */
  syncNow(): Promise<number>;
  /** Stops accepting requests, finishes in-flight commits, closes the database. */
  close(): Promise<void>;
}

export const SERVER_DEFAULTS = {
  partitions: 64,
  replicationFactor: 3,
  groupCommitWindowMs: 0,
  maxBatch: 512,
  antiEntropyIntervalMs: 5000,
  peerTimeoutMs: 5000,
  changesPageSize: 500,
  changesPageBytes: 4 * 1024 * 1024,
  drainGraceMs: 300,
} as const;

function staleEpoch(reason: string, result: StoreResult): HttpError {
  return new HttpError(409, "stale_epoch", reason, {
    epoch: result.epoch.epoch,
    holder: result.epoch.holder,
  });
}

export async function startServer(options: ServerOptions): Promise<ServerHandle> {
  const log = options.logger ?? createLogger("understudy-server");
  const partitions = options.partitions ?? SERVER_DEFAULTS.partitions;
  const replicationFactor = options.replicationFactor ?? SERVER_DEFAULTS.replicationFactor;
  const identity: Identity = {
    service: options.identity?.service ?? "",
    role: "server",
    pod: options.identity?.pod ?? "",
  };
  const store = new ServerStore(options.dataDir);
  if (options.epoch !== undefined) store.raiseFloor(options.epoch);

  const registry = createRegistry(options.processMetrics ?? false);
  const requests = new Counter({
    name: "understudy_server_requests_total",
    help: "Requests by route and HTTP status.",
    labelNames: ["route", "status"],
    registers: [registry],
  });
  const batchSize = new Histogram({
    name: "understudy_server_commit_batch_size",
    help: "Requests (writes, fences, anti-entropy pages) per group-commit transaction.",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers: [registry],
  });
  const batchRecords = new Histogram({
    name: "understudy_server_commit_records",
    help: "Records written per group-commit transaction (a head sends several per request under load).",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [registry],
  });
  const commitSeconds = new Histogram({
    name: "understudy_server_commit_seconds",
    help: "Time to run and durably commit one group-commit transaction.",
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
    registers: [registry],
  });
  const applied = new Counter({
    name: "understudy_server_records_applied_total",
    help: "Records that replaced the stored one, by source.",
    labelNames: ["source"],
    registers: [registry],
  });
  new Gauge({
    name: "understudy_server_epoch",
    help: "Highest head epoch this server has seen (requests with a lower one are refused).",
    registers: [registry],
    collect() {
      this.set(store.epoch.epoch);
    },
  });
  const antiEntropyRounds = new Counter({
    name: "understudy_server_anti_entropy_pulls_total",
    help: "Anti-entropy pulls from peers, by result.",
    labelNames: ["result"],
    registers: [registry],
  });

  const committer = new GroupCommitter<StoreOp, StoreResult>({
    commit: (ops) => store.commit(ops),
    windowMs: options.groupCommitWindowMs ?? SERVER_DEFAULTS.groupCommitWindowMs,
    maxBatch: options.maxBatch ?? SERVER_DEFAULTS.maxBatch,
    onBatch: (ops, seconds) => {
      batchSize.observe(ops.length);
      batchRecords.observe(ops.reduce((sum, op) => sum + (op.kind === "fence" ? 0 : op.records.length), 0));
      commitSeconds.observe(seconds);
    },
  });

  let draining = false;
  let isReady = false;
  let inflight = 0;
  let inflightDone: (() => void) | null = null;

  async function route(req: IncomingMessage, res: ServerResponse, path: string): Promise<number> {
    const method = req.method ?? "GET";
    if (method === "GET" && path === "/healthz") {
      sendJson(res, 200, { status: "ok", ...identity, zone: options.zone, ...store.epoch });
      return 200;
    }
    if (method === "GET" && path === "/readyz") {
      const status = isReady && !draining ? 200 : 503;
      sendJson(res, status, { ready: status === 200, ...identity, draining });
      return status;
    }
    if (method === "GET" && path === "/metrics") {
      const text = await registry.metrics();
      res.writeHead(200, { "content-type": registry.contentType });
      res.end(text);
      return 200;
    }
    if (!Object.values(PATHS).includes(path as never)) {
      throw new HttpError(404, "not_found", `no such path ${path}`);
    }
    if (draining) throw new HttpError(503, "shutting_down", "server is shutting down; nothing was applied");
    checkBearer(req, options.token);
    checkExpected(req, identity);

    if (path === PATHS.changes) {
      if (method !== "GET") throw new HttpError(405, "method_not_allowed", `${path} takes GET`);
      const url = new URL(req.url ?? "/", "http://server");
      const since = Number(url.searchParams.get("since") ?? "0");
      const limit = Number(url.searchParams.get("limit") ?? SERVER_DEFAULTS.changesPageSize);
      const parts = (url.searchParams.get("partitions") ?? "")
        .split(",")
        .filter((s) => s !== "")
        .map(Number);
      if (!Number.isInteger(since) || since < 0 || !Number.isInteger(limit) || limit < 1 || limit > 10_000) {
        throw new HttpError(
          400,
          "invalid_request",
          "since must be an integer >= 0 and limit an integer in 1..10000",
        );
      }
      if (parts.some((p) => !Number.isInteger(p) || p < 0 || p >= partitions)) {
        throw new HttpError(400, "invalid_request", `partitions must be integers in 0..${partitions - 1}`);
      }
      const page = store.changesSince(since, parts, limit, SERVER_DEFAULTS.changesPageBytes);
      sendJson(res, 200, { incarnation: store.incarnation, ...store.epoch, ...page });
      return 200;
    }

    if (method !== "POST") throw new HttpError(405, "method_not_allowed", `${path} takes POST`);
    const body = await admission.readBody(req, res, LIMITS.maxServerBodyBytes);

    if (path === PATHS.apply) {
      const request = parseJson(body, applyRequestSchema);
      for (const r of request.records) {
        if (r.partition >= partitions || partitionOfKey(r.key, partitions) !== r.partition) {
          throw new HttpError(
            400,
            "wrong_partition",
            `key ${JSON.stringify(r.key)} is not in partition ${r.partition}`,
          );
        }
      }
      const result = await committer.submit({ kind: "apply", ...request });
      if (result.kind === "refused") throw staleEpoch(result.reason, result);
      applied.inc({ source: "head" }, result.applied.filter(Boolean).length);
      sendJson(res, 200, { ...result.epoch, applied: result.applied });
      return 200;
    }
    if (path === PATHS.read) {
      const request = parseJson(body, readRequestSchema);
      const decision = admit(store.epoch, request.epoch, request.head);
      if (decision.kind === "refuse")
        throw staleEpoch(decision.reason, { kind: "refused", reason: "", epoch: store.epoch });
      if (decision.kind === "raise") {
        // A newer epoch must be durable before we answer it, or a crash could let an older head back in.
        const raised = await committer.submit({ kind: "fence", epoch: request.epoch, head: request.head });
        if (raised.kind === "refused") throw staleEpoch(raised.reason, raised);
      }
      sendJson(res, 200, { ...store.epoch, records: request.keys.map((k) => store.get(k)) });
      return 200;
    }
    // fence
    const request = parseJson(body, fenceRequestSchema);
    const result = await committer.submit({ kind: "fence", ...request });
    if (result.kind === "refused") throw staleEpoch(result.reason, result);
    sendJson(res, 200, result.epoch);
    return 200;
  }

  const admission = new Admission("server", { ...SERVER_SERVING_LIMITS, ...options.limits });
  const http = admission.createServer((req, res) => {
    inflight++;
    stampIdentity(res, identity);
    const path = (req.url ?? "/").split("?")[0]!;
    return route(req, res, path)
      .catch((err: unknown) => {
        const httpError =
          err instanceof HttpError
            ? err
            : new HttpError(500, "internal", `server error: ${(err as Error).message}`);
        if (httpError.status === 500) log.error({ err }, "request failed");
        if (httpError.status === 413 || draining) res.setHeader("connection", "close");
        sendError(res, httpError);
        return httpError.status;
      })
      .then((status) => requests.inc({ route: path.startsWith("/v1/") ? path : "other", status }))
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
  const bound = (http.address() as AddressInfo).port;
  const address = `${host}:${bound}`;
  const url = `http://${address}`;
  const self = options.advertise ?? address;

  // Anti-entropy with every peer that shares partitions with this server.
  let shares: PeerShare[] = [];
  if (options.servers !== undefined && options.servers.length > 0) {
    if (options.servers.some((s) => s.address === self)) {
      shares = peersToSync(options.servers, self, partitions, replicationFactor);
    } else {
      log.warn({ self }, "this server's address is not in the server list; anti-entropy is off");
    }
  }
  let round: Promise<number> | null = null;
  const syncNow = (): Promise<number> => {
    round ??= (async () => {
      let total = 0;
      for (const share of shares) {
        try {
          const n = await pullFromPeer(
            {
              store,
              submit: (op) => committer.submit(op),
              token: options.token,
              expected: { service: identity.service, role: "server" },
              pageSize: SERVER_DEFAULTS.changesPageSize,
              pageBytes: SERVER_DEFAULTS.changesPageBytes,
              timeoutMs: SERVER_DEFAULTS.peerTimeoutMs,
            },
            share,
          );
          total += n;
          applied.inc({ source: "anti_entropy" }, n);
          antiEntropyRounds.inc({ result: "ok" });
        } catch (err) {
          antiEntropyRounds.inc({ result: "error" });
          log.debug({ peer: share.peer, err: (err as Error).message }, "anti-entropy pull failed");
        }
      }
      if (total > 0) log.info({ records: total }, "anti-entropy caught up records from peers");
      return total;
    })().finally(() => {
      round = null;
    });
    return round;
  };
  const ready = syncNow().then(() => {
    isReady = true;
  });
  let timer: NodeJS.Timeout | null = null;
  const interval = options.antiEntropyIntervalMs ?? SERVER_DEFAULTS.antiEntropyIntervalMs;
  const schedule = () => {
    if (draining || shares.length === 0 || interval <= 0) return;
    timer = setTimeout(() => void syncNow().finally(schedule), interval);
    timer.unref();
  };
  void ready.then(schedule);
  const metricsListener =
    options.metricsListen === undefined
      ? null
      : await listenForMetrics(options.metricsListen, registry, admission.limits);
  log.info(
    {
      url,
      metrics: metricsListener?.address,
      zone: options.zone,
      epoch: store.epoch.epoch,
      peers: shares.length,
    },
    "listening",
  );

  // Graceful stop: refuse new requests with 503 + Connection: close (so clients learn nothing was
  // applied instead of finding a dead socket), let in-flight commits finish, give keep-alive
  // clients a moment to hang up, then close everything and the database.
  const sockets = new Set<import("node:net").Socket>();
  http.on("connection", (socket: import("node:net").Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= (async () => {
      draining = true;
      if (timer !== null) clearTimeout(timer);
      if (inflight > 0) await new Promise<void>((resolve) => (inflightDone = resolve));
      await round?.catch(() => undefined);
      await committer.drained();
      const graceEnds = Date.now() + SERVER_DEFAULTS.drainGraceMs;
      while (sockets.size > 0 && Date.now() < graceEnds) await new Promise((r) => setTimeout(r, 10));
      const stopped = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      await stopped;
      await committer.drained();
      store.close();
      await metricsListener?.close();
      log.info("closed");
    })();
    return closing;
  };

  return { url, address, identity, ready, syncNow, close };
}
