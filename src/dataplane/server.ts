// The server role: stores its partitions' records durably and applies what heads send.
import type { IncomingMessage, ServerResponse } from "node:http";
import { Admission, SERVER_SERVING_LIMITS, type ServingLimits } from "./admission.ts";
import { heldEverywhere, pullFromPeer, peersToSync, type PeerShare } from "./anti-entropy.ts";
import { admit } from "./epoch.ts";
import {
  checkBearer,
  checkExpected,
  HttpError,
  parseJson,
  sendError,
  sendJson,
  stampIdentity,
} from "./http-util.ts";
import type { Identity } from "./identity.ts";
import type { ServingListener } from "./listener.ts";
import { createLogger, type Logger } from "./log.ts";
import { listenForMetrics, type MetricsListener } from "./metrics-listener.ts";
import { Counter, createRegistry, Gauge, Histogram, type Registry } from "./metrics.ts";
import { partitionOfKey, type ServerAddress } from "./placement.ts";
import { GroupCommitter } from "./group-commit.ts";
import { LIMITS } from "./record.ts";
import { ServerStore, type StoreOp, type StoreResult } from "./server-store.ts";
import { Dialer, type TlsMaterial, type TlsMode } from "./tls.ts";
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
  /**
   * TLS: the server serves `material`'s certificate (and, in permissive mode, plain HTTP beside it)
   * and pulls from its peers over TLS, trusting `material`'s CA. Unset or disabled: plain.
   */
  readonly tls?: { readonly mode: TlsMode; readonly material: TlsMaterial };
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

/** Starts a server: opens its store, listens, and runs anti-entropy with its peers. */
export function startServer(options: ServerOptions): Promise<ServerHandle> {
  return Server.start(options);
}

/**
 * One server process: its store, group committer and request handlers as methods over the state
 * they share (draining, readiness, requests in flight, the anti-entropy round).
 */
class Server implements ServerHandle {
  readonly identity: Identity;
  readonly #options: ServerOptions;
  readonly #log: Logger;
  readonly #partitions: number;
  readonly #replicationFactor: number;
  readonly #store: ServerStore;
  readonly #registry: Registry;
  readonly #requests: Counter<"route" | "status">;
  readonly #applied: Counter<"source">;
  readonly #antiEntropyRounds: Counter<"result">;
  readonly #tombstonesCollected: Counter;
  readonly #committer: GroupCommitter<StoreOp, StoreResult>;
  readonly #admission: Admission;
  readonly #http: ServingListener;
  readonly #dialer: Dialer;
  #metricsListener: MetricsListener | null = null;
  #address = "";
  #shares: PeerShare[] = [];
  /** This server's address as the server list names it. */
  #self = "";
  #draining = false;
  #isReady = false;
  #inflight = 0;
  #inflightDone: (() => void) | null = null;
  #round: Promise<number> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #closing: Promise<void> | null = null;
  #ready: Promise<void> = Promise.resolve();

  static async start(options: ServerOptions): Promise<Server> {
    const server = new Server(options);
    await server.#listen();
    server.#ready = server.syncNow().then(() => {
      server.#isReady = true;
    });
    void server.#ready.then(() => server.#schedule());
    await server.#listenForMetrics();
    return server;
  }

  private constructor(options: ServerOptions) {
    this.#options = options;
    this.#log = options.logger ?? createLogger("understudy-server");
    this.#partitions = options.partitions ?? SERVER_DEFAULTS.partitions;
    this.#replicationFactor = options.replicationFactor ?? SERVER_DEFAULTS.replicationFactor;
    this.identity = {
      service: options.identity?.service ?? "",
      role: "server",
      pod: options.identity?.pod ?? "",
    };
    const store = new ServerStore(options.dataDir);
    this.#store = store;
    if (options.epoch !== undefined) store.raiseFloor(options.epoch);

    this.#registry = createRegistry(options.processMetrics ?? false);
    const registers = [this.#registry];
    this.#requests = new Counter({
      name: "understudy_server_requests_total",
      help: "Requests by route and HTTP status.",
      labelNames: ["route", "status"],
      registers,
    });
    const batchSize = new Histogram({
      name: "understudy_server_commit_batch_size",
      help: "Requests (writes, fences, anti-entropy pages) per group-commit transaction.",
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers,
    });
    const batchRecords = new Histogram({
      name: "understudy_server_commit_records",
      help: "Records written per group-commit transaction (a head sends several per request under load).",
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
      registers,
    });
    const commitSeconds = new Histogram({
      name: "understudy_server_commit_seconds",
      help: "Time to run and durably commit one group-commit transaction.",
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
      registers,
    });
    this.#applied = new Counter({
      name: "understudy_server_records_applied_total",
      help: "Records that replaced the stored one, by source.",
      labelNames: ["source"],
      registers,
    });
    new Gauge({
      name: "understudy_server_epoch",
      help: "Highest head epoch this server has seen (requests with a lower one are refused).",
      registers,
      collect() {
        this.set(store.epoch.epoch);
      },
    });
    this.#antiEntropyRounds = new Counter({
      name: "understudy_server_anti_entropy_pulls_total",
      help: "Anti-entropy pulls from peers, by result.",
      labelNames: ["result"],
      registers,
    });
    this.#tombstonesCollected = new Counter({
      name: "understudy_server_tombstones_collected_total",
      help: "Tombstones removed once every replica of their partition held them.",
      registers,
    });

    this.#committer = new GroupCommitter<StoreOp, StoreResult>({
      commit: (ops) => store.commit(ops),
      windowMs: options.groupCommitWindowMs ?? SERVER_DEFAULTS.groupCommitWindowMs,
      maxBatch: options.maxBatch ?? SERVER_DEFAULTS.maxBatch,
      onBatch: (ops, seconds) => {
        batchSize.observe(ops.length);
        batchRecords.observe(ops.reduce((sum, op) => sum + ("records" in op ? op.records.length : 0), 0));
        commitSeconds.observe(seconds);
      },
    });

    this.#admission = new Admission("server", { ...SERVER_SERVING_LIMITS, ...options.limits });
    const tls = options.tls?.mode === "disabled" ? undefined : options.tls;
    this.#dialer = new Dialer(tls === undefined ? {} : { material: tls.material });
    this.#http = this.#admission.createServer(
      (req, res) => this.#handle(req, res),
      tls === undefined ? undefined : { mode: tls.mode as "permissive" | "required", material: tls.material },
    );
  }

  /** host:port actually bound. */
  get address(): string {
    return this.#address;
  }

  /** The server's base URL: https when it serves TLS (in permissive mode it takes plain HTTP too). */
  get url(): string {
    return `${this.#dialer.scheme}://${this.#address}`;
  }

  get ready(): Promise<void> {
    return this.#ready;
  }

  async #listen(): Promise<void> {
    this.#address = await this.#http.listen(this.#options.listen);
    // Anti-entropy with every peer that shares partitions with this server.
    const self = this.#options.advertise ?? this.#address;
    this.#self = self;
    const servers = this.#options.servers;
    if (servers !== undefined && servers.length > 0) {
      if (servers.some((s) => s.address === self)) {
        this.#shares = peersToSync(servers, self, this.#partitions, this.#replicationFactor);
      } else {
        this.#log.warn({ self }, "this server's address is not in the server list; anti-entropy is off");
      }
    }
  }

  async #listenForMetrics(): Promise<void> {
    this.#metricsListener = await listenForMetrics(
      this.#options.metricsListen,
      this.#registry,
      this.#admission.limits,
    );
    this.#log.info(
      {
        url: this.url,
        metrics: this.#metricsListener?.address,
        zone: this.#options.zone,
        epoch: this.#store.epoch.epoch,
        peers: this.#shares.length,
      },
      "listening",
    );
  }

  async #route(req: IncomingMessage, res: ServerResponse, path: string): Promise<number> {
    const method = req.method ?? "GET";
    const store = this.#store;
    if (method === "GET" && path === "/healthz") {
      sendJson(res, 200, { status: "ok", ...this.identity, zone: this.#options.zone, ...store.epoch });
      return 200;
    }
    if (method === "GET" && path === "/readyz") {
      const status = this.#isReady && !this.#draining ? 200 : 503;
      sendJson(res, status, { ready: status === 200, ...this.identity, draining: this.#draining });
      return status;
    }
    if (method === "GET" && path === "/metrics") {
      const text = await this.#registry.metrics();
      res.writeHead(200, { "content-type": this.#registry.contentType });
      res.end(text);
      return 200;
    }
    if (!Object.values(PATHS).includes(path as never)) {
      throw new HttpError(404, "not_found", `no such path ${path}`);
    }
    if (this.#draining)
      throw new HttpError(503, "shutting_down", "server is shutting down; nothing was applied");
    checkBearer(req, this.#options.token);
    checkExpected(req, this.identity);

    if (path === PATHS.changes) {
      if (method !== "GET") throw new HttpError(405, "method_not_allowed", `${path} takes GET`);
      return this.#changes(req, res);
    }
    if (method !== "POST") throw new HttpError(405, "method_not_allowed", `${path} takes POST`);
    const body = await this.#admission.readBody(req, res, LIMITS.maxServerBodyBytes);
    if (path === PATHS.apply) return this.#apply(body, res);
    if (path === PATHS.read) return this.#read(body, res);
    return this.#fence(body, res);
  }

  #changes(req: IncomingMessage, res: ServerResponse): number {
    const partitions = this.#partitions;
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
    const page = this.#store.changesSince(since, parts, limit, SERVER_DEFAULTS.changesPageBytes);
    sendJson(res, 200, {
      incarnation: this.#store.incarnation,
      ...this.#store.epoch,
      ...page,
      positions: this.#store.cursors(),
    });
    return 200;
  }

  async #apply(body: Buffer, res: ServerResponse): Promise<number> {
    const request = parseJson(body, applyRequestSchema);
    for (const r of request.records) {
      if (r.partition >= this.#partitions || partitionOfKey(r.key, this.#partitions) !== r.partition) {
        throw new HttpError(
          400,
          "wrong_partition",
          `key ${JSON.stringify(r.key)} is not in partition ${r.partition}`,
        );
      }
    }
    const result = await this.#committer.submit({ kind: "apply", ...request });
    if (result.kind === "refused") throw staleEpoch(result.reason, result);
    this.#applied.inc({ source: "head" }, result.applied.filter(Boolean).length);
    sendJson(res, 200, { ...result.epoch, applied: result.applied });
    return 200;
  }

  async #read(body: Buffer, res: ServerResponse): Promise<number> {
    const store = this.#store;
    const request = parseJson(body, readRequestSchema);
    const decision = admit(store.epoch, request.epoch, request.head);
    if (decision.kind === "refuse")
      throw staleEpoch(decision.reason, { kind: "refused", reason: "", epoch: store.epoch });
    if (decision.kind === "raise") {
      // A newer epoch must be durable before we answer it, or a crash could let an older head back in.
      const raised = await this.#committer.submit({
        kind: "fence",
        epoch: request.epoch,
        head: request.head,
      });
      if (raised.kind === "refused") throw staleEpoch(raised.reason, raised);
    }
    sendJson(res, 200, { ...store.epoch, records: request.keys.map((k) => store.get(k)) });
    return 200;
  }

  async #fence(body: Buffer, res: ServerResponse): Promise<number> {
    const request = parseJson(body, fenceRequestSchema);
    const result = await this.#committer.submit({ kind: "fence", ...request });
    if (result.kind === "refused") throw staleEpoch(result.reason, result);
    sendJson(res, 200, result.epoch);
    return 200;
  }

  #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#inflight++;
    stampIdentity(res, this.identity);
    const path = (req.url ?? "/").split("?")[0]!;
    return this.#route(req, res, path)
      .catch((err: unknown) => {
        const httpError =
          err instanceof HttpError
            ? err
            : new HttpError(500, "internal", `server error: ${(err as Error).message}`);
        if (httpError.status === 500) this.#log.error({ err }, "request failed");
        if (httpError.status === 413 || this.#draining) res.setHeader("connection", "close");
        sendError(res, httpError);
        return httpError.status;
      })
      .then((status) => this.#requests.inc({ route: path.startsWith("/v1/") ? path : "other", status }))
      .finally(() => {
        this.#inflight--;
        if (this.#inflight === 0) this.#inflightDone?.();
      });
  }

  syncNow(): Promise<number> {
    this.#round ??= this.#pullFromPeers().finally(() => {
      this.#round = null;
    });
    return this.#round;
  }

  /**
   * One anti-entropy round: pulls every peer's feed, then collects the tombstones every replica
   * of their partition holds (each peer said how far it has taken this server's feed).
   */
  async #pullFromPeers(): Promise<number> {
    let total = 0;
    const positions = new Map<string, number>();
    for (const share of this.#shares) {
      try {
        const { applied: n, heldThrough } = await pullFromPeer(
          {
            self: this.#self,
            store: this.#store,
            submit: (op) => this.#committer.submit(op),
            token: this.#options.token,
            dialer: this.#dialer,
            expected: { service: this.identity.service, role: "server" },
            pageSize: SERVER_DEFAULTS.changesPageSize,
            pageBytes: SERVER_DEFAULTS.changesPageBytes,
            timeoutMs: SERVER_DEFAULTS.peerTimeoutMs,
          },
          share,
        );
        total += n;
        if (heldThrough !== null) positions.set(share.peer, heldThrough);
        this.#applied.inc({ source: "anti_entropy" }, n);
        this.#antiEntropyRounds.inc({ result: "ok" });
      } catch (err) {
        this.#antiEntropyRounds.inc({ result: "error" });
        this.#log.debug({ peer: share.peer, err: (err as Error).message }, "anti-entropy pull failed");
      }
    }
    if (total > 0) this.#log.info({ records: total }, "anti-entropy caught up records from peers");
    await this.#collectTombstones(positions);
    return total;
  }

  async #collectTombstones(positions: ReadonlyMap<string, number>): Promise<void> {
    const floors = heldEverywhere(this.#shares, positions);
    if (floors.size === 0 || this.#draining) return;
    try {
      const result = await this.#committer.submit({ kind: "collect", heldEverywhere: floors });
      const collected = result.kind === "ok" ? (result.collected ?? 0) : 0;
      this.#tombstonesCollected.inc(collected);
      if (collected > 0)
        this.#log.info({ tombstones: collected }, "collected tombstones every replica holds");
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, "collecting tombstones failed");
    }
  }

  #schedule(): void {
    const interval = this.#options.antiEntropyIntervalMs ?? SERVER_DEFAULTS.antiEntropyIntervalMs;
    if (this.#draining || this.#shares.length === 0 || interval <= 0) return;
    this.#timer = setTimeout(() => void this.syncNow().finally(() => this.#schedule()), interval);
    this.#timer.unref();
  }

  /**
   * Graceful stop: refuse new requests with 503 + Connection: close (so clients learn nothing was
   * applied instead of finding a dead socket), let in-flight commits finish, give keep-alive
   * clients a moment to hang up, then close everything and the database.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#draining = true;
      if (this.#timer !== null) clearTimeout(this.#timer);
      if (this.#inflight > 0) await new Promise<void>((resolve) => (this.#inflightDone = resolve));
      await this.#round?.catch(() => undefined);
      await this.#committer.drained();
      const graceEnds = Date.now() + SERVER_DEFAULTS.drainGraceMs;
      while (this.#http.sockets.size > 0 && Date.now() < graceEnds)
        await new Promise((r) => setTimeout(r, 10));
      const stopped = this.#http.close();
      this.#http.closeAllConnections();
      await stopped;
      await this.#committer.drained();
      this.#store.close();
      await this.#metricsListener?.close();
      await this.#dialer.close();
      this.#log.info("closed");
    })();
    return this.#closing;
  }
}
