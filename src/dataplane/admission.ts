// What a head or server lets its clients hold: connections, requests in flight, request bytes
// buffered, and how long a connection may take to send its headers, its request, or nothing.
// Past a cap a request gets 503 + Retry-After (nothing was applied), so a flood of bad clients
// costs bounded memory instead of an OOM kill, which for a head is a failover that revokes a tenant.
import type { IncomingMessage, ServerOptions, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { HttpError, readBody, sendError } from "./http-util.ts";
import { ServingListener, type ListenerTls } from "./listener.ts";
import { http, https } from "./node-http.ts";

export interface ServingLimits {
  /** Open connections; past it new connections are closed at once (Node's server.maxConnections). */
  readonly maxConnections: number;
  /** Requests being handled at once; past it: 503 overloaded. Probes and metrics are not counted. */
  readonly maxRequestsInFlight: number;
  /** Request body bytes held by all requests together; a body that does not fit: 503 overloaded. */
  readonly maxBufferedBodyBytes: number;
  /** From a connection's first byte (or its opening, if it sends none) to the end of the headers. */
  readonly headersTimeoutMs: number;
  /** From a request's first byte to the end of its body. */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  readonly keepAliveTimeoutMs: number;
  /** Requests one connection may carry before it is closed (0 = no limit). */
  readonly maxRequestsPerSocket: number;
}

/**
 * The head faces clients. A valid client request is at most about 6 MiB (LIMITS.maxBodyBytes),
 * so the body budget admits five of those at once; measured RSS under attack is in docs/DATAPLANE.md.
 */
export const HEAD_SERVING_LIMITS: ServingLimits = {
  maxConnections: 4096,
  maxRequestsInFlight: 1024,
  maxBufferedBodyBytes: 32 * 1024 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 10_000,
  maxRequestsPerSocket: 10_000,
};

/**
 * Servers read a body only after its token checked, from heads and peer servers; a head's batch
 * is at most LIMITS.maxServerBodyBytes, and several are in flight under load.
 */
export const SERVER_SERVING_LIMITS: ServingLimits = {
  maxConnections: 4096,
  maxRequestsInFlight: 1024,
  maxBufferedBodyBytes: 128 * 1024 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 10_000,
  maxRequestsPerSocket: 10_000,
};

/** Paths answered without touching storage or reading a body: never refused for load. */
const CHEAP_PATHS = new Set(["/healthz", "/readyz", "/metrics"]);

/** Seconds a refused client should wait before trying again. */
const RETRY_AFTER_SECONDS = 1;

function overloaded(role: string, what: string): HttpError {
  return new HttpError(
    503,
    "overloaded",
    `${role} ${what}; nothing was applied, retry after ${RETRY_AFTER_SECONDS}s`,
    { outcome: "not_applied" },
    { "retry-after": String(RETRY_AFTER_SECONDS), connection: "close" },
  );
}

/** What one admitted request holds until its handler is done. */
interface Held {
  bytes: number;
}

export class Admission {
  readonly limits: ServingLimits;
  readonly #role: string;
  #inFlight = 0;
  #bufferedBytes = 0;
  readonly #held = new WeakMap<IncomingMessage, Held>();

  constructor(role: string, limits: ServingLimits) {
    this.limits = limits;
    this.#role = role;
  }

  get requestsInFlight(): number {
    return this.#inFlight;
  }

  get bufferedBodyBytes(): number {
    return this.#bufferedBytes;
  }

  /**
   * An HTTP server with the limits set; `handler` sees only admitted requests. A refused request
   * is answered here and its connection closed (its body is never read). A request counts, and
   * its body bytes stay held, until the promise `handler` returns settles: a client that hangs up
   * early does not free what its request still holds.
   */
  createServer(
    handler: (req: IncomingMessage, res: ServerResponse) => Promise<unknown> | void,
    tls?: ListenerTls,
  ): ServingListener {
    const { limits } = this;
    const options: ServerOptions = {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node checks the two timeouts above on this period (default 30 s, which let a slow
      // sender keep its connection up to 30 s past them).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, limits.headersTimeoutMs / 4)),
    };
    const admit = (req: IncomingMessage, res: ServerResponse) => {
      const path = (req.url ?? "/").split("?")[0]!;
      if (CHEAP_PATHS.has(path)) {
        void settled(() => handler(req, res));
        return;
      }
      if (this.#inFlight >= limits.maxRequestsInFlight) {
        req.resume();
        sendError(res, overloaded(this.#role, `has ${this.#inFlight} requests in flight (the limit)`));
        return;
      }
      this.#inFlight++;
      const held: Held = { bytes: 0 };
      this.#held.set(req, held);
      void settled(() => handler(req, res)).then(() => {
        this.#inFlight--;
        this.#bufferedBytes -= held.bytes;
        held.bytes = 0;
      });
    };
    const plain = http.createServer(options, admit);
    const secure = tls === undefined ? undefined : https.createServer(options, admit);
    for (const server of [plain, secure])
      if (server) server.maxRequestsPerSocket = limits.maxRequestsPerSocket;
    const listener = new ServingListener(plain, secure, tls);
    const server = listener.front;
    server.maxConnections = limits.maxConnections;
    // Node's headersTimeout starts with a connection's first byte: a connection that sends nothing
    // would stay open until the client hangs up. Closed here instead, after the same time.
    server.on("connection", (socket: Socket) => {
      const timer = setTimeout(() => {
        // Checked after this turn's reads (setImmediate runs after polling), so a busy event loop
        // does not mistake a connection whose bytes are waiting to be read for a silent one.
        setImmediate(() => {
          if (socket.bytesRead === 0) socket.destroy();
        });
      }, limits.headersTimeoutMs);
      timer.unref();
      socket.once("close", () => clearTimeout(timer));
    });
    return listener;
  }

  /**
   * Reads a request body of at most `maxBytes` (413 past it, refused while reading), holding its
   * bytes against the shared budget until the response is done (503 when they do not fit).
   */
  async readBody(req: IncomingMessage, res: ServerResponse, maxBytes: number): Promise<Buffer> {
    const declared = Number(req.headers["content-length"] ?? NaN);
    let held = this.#held.get(req);
    if (held === undefined) {
      // Not an admitted request (a path the handler was not expected to read a body on): the
      // bytes are given back with the response.
      const own: Held = { bytes: 0 };
      res.once("close", () => {
        this.#bufferedBytes -= own.bytes;
        own.bytes = 0;
      });
      held = own;
    }
    const holder = held;
    const hold = (bytes: number) => {
      if (this.#bufferedBytes + bytes > this.limits.maxBufferedBodyBytes) {
        throw overloaded(
          this.#role,
          `holds ${this.#bufferedBytes} bytes of request bodies and the limit is ${this.limits.maxBufferedBodyBytes}`,
        );
      }
      this.#bufferedBytes += bytes;
      holder.bytes += bytes;
    };
    // A declared length is held up front (past maxBytes readBody refuses it); a chunked body as it comes.
    const known = Number.isSafeInteger(declared) && declared >= 0;
    if (known && declared <= maxBytes) hold(declared);
    return readBody(req, maxBytes, known ? undefined : hold);
  }
}

/** Runs `work` and resolves when it has settled, whatever it did: nothing escapes as a rejection. */
function settled(work: () => Promise<unknown> | void): Promise<void> {
  return Promise.resolve()
    .then(work)
    .then(
      () => undefined,
      () => undefined,
    );
}
