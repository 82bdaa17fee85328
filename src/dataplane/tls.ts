// TLS for every data-plane hop. A process is given three PEM files (its certificate, its key, the
// CA that signed its peers') and re-reads them when their content changes, so a certificate renewed
// in its Secret is served on the next connection without a restart (and so without a failover).
// Listeners take TLS and, in permissive mode, plain HTTP on the same port (told apart by the first
// byte), which lets a running service move from plain to TLS one process at a time.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Agent as HttpAgent, IncomingHttpHeaders } from "node:http";
import { createRequire } from "node:module";
import type { Socket } from "node:net";
import type { SecureContextOptions } from "node:tls";
import { parseHostPort } from "./http-util.ts";
import { http, https } from "./node-http.ts";
import type * as Undici from "undici";
import type { Agent, Dispatcher } from "undici";

// undici is loaded only when `init` first dials TLS through fetch (the client library), not with
// this module: heads and servers use `exchange`, and start without undici's hundred-odd modules.
const requireFromHere = createRequire(import.meta.url);

/** disabled: plain HTTP only; permissive: TLS and plain accepted, TLS dialed; required: TLS only. */
export const TLS_MODES = ["disabled", "permissive", "required"] as const;
export type TlsMode = (typeof TLS_MODES)[number];

export interface TlsFiles {
  /** This process's certificate (PEM), served to whoever connects. */
  readonly certFile?: string;
  readonly keyFile?: string;
  /** The CA (PEM) a peer's certificate must chain to. */
  readonly caFile: string;
}

export interface TlsPem {
  readonly cert?: string;
  readonly key?: string;
  readonly ca: string;
}

/** How often the files are checked for a change, by default (a Secret volume updates within a minute). */
export const TLS_RELOAD_INTERVAL_MS = 2000;

function readPem(files: TlsFiles): TlsPem {
  const read = (path: string | undefined) => (path === undefined ? undefined : readFileSync(path, "utf8"));
  const cert = read(files.certFile);
  const key = read(files.keyFile);
  return { ca: readFileSync(files.caFile, "utf8"), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
}

const fingerprint = (pem: TlsPem) =>
  createHash("sha256")
    .update(`${pem.cert ?? ""}\0${pem.key ?? ""}\0${pem.ca}`)
    .digest("hex");

/**
 * The current PEM material of a process, from files or given directly. With files, `watch` re-reads
 * them on an interval and calls the listeners when the content changed and still loads (a half
 * written update is skipped until it is whole: a key that does not match its certificate throws in
 * `onChange` listeners' secure-context build, and the old material stays).
 */
export class TlsMaterial {
  #pem: TlsPem;
  #fingerprint: string;
  readonly #files: TlsFiles | undefined;
  readonly #listeners: ((pem: TlsPem) => void)[] = [];
  #timer: NodeJS.Timeout | undefined;

  private constructor(pem: TlsPem, files: TlsFiles | undefined) {
    this.#pem = pem;
    this.#fingerprint = fingerprint(pem);
    this.#files = files;
  }

  static fromFiles(files: TlsFiles): TlsMaterial {
    return new TlsMaterial(readPem(files), files);
  }

  static fromPem(pem: TlsPem): TlsMaterial {
    return new TlsMaterial(pem, undefined);
  }

  get pem(): TlsPem {
    return this.#pem;
  }

  /** Calls `listener` with the new material after every change. */
  onChange(listener: (pem: TlsPem) => void): void {
    this.#listeners.push(listener);
  }

  /** Starts checking the files every `intervalMs`; `onError` hears of files that cannot be used. */
  watch(intervalMs = TLS_RELOAD_INTERVAL_MS, onError: (err: Error) => void = () => {}): void {
    if (this.#files === undefined || this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.reload(onError), intervalMs);
    this.#timer.unref();
  }

  /** Re-reads the files now; returns whether the material changed. */
  reload(onError: (err: Error) => void = () => {}): boolean {
    if (this.#files === undefined) return false;
    let next: TlsPem;
    try {
      next = readPem(this.#files);
    } catch (err) {
      onError(err as Error);
      return false;
    }
    const print = fingerprint(next);
    if (print === this.#fingerprint) return false;
    const previous = this.#pem;
    try {
      this.#pem = next;
      for (const listener of this.#listeners) listener(next);
    } catch (err) {
      this.#pem = previous;
      for (const listener of this.#listeners) listener(previous);
      onError(err as Error);
      return false;
    }
    this.#fingerprint = print;
    return true;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** What a listener serves: its certificate and key. */
export function servingContext(pem: TlsPem): SecureContextOptions {
  if (pem.cert === undefined || pem.key === undefined)
    throw new Error("a TLS listener needs a certificate and a key (--tls-cert-file, --tls-key-file)");
  return { cert: pem.cert, key: pem.key };
}

export interface DialOptions {
  /** The CA a peer must chain to; undefined: plain HTTP. */
  readonly material?: TlsMaterial;
  /**
   * The name the peer's certificate must carry, when the address dialed is not it (a head reached
   * at its pod IP names the head Service). Undefined: the host dialed.
   */
  readonly serverName?: string;
}

/** One request of an exchange: `body` is sent whole, in one write. */
export interface ExchangeRequest {
  readonly method: "GET" | "POST";
  readonly headers: Record<string, string>;
  readonly body?: string;
  /** The whole exchange, connecting included, must end within this. */
  readonly timeoutMs: number;
  /** The most of the answer's body read; past it the answer is cut off and its text is null. */
  readonly maxReplyBytes: number;
}

export interface ExchangeReply {
  readonly status: number;
  /** A header of the answer, null when it has none. */
  header(name: string): string | null;
  /** The body as text, or null when it was longer than `maxReplyBytes`. */
  readonly text: string | null;
}

/**
 * Outgoing HTTP(S) for one kind of peer. `exchange` sends a request through a keep-alive pool of
 * Node's own client (one write per request, so one TLS record; no stream machinery per body), and
 * a pool is rebuilt when the TLS material changes (requests in flight finish on the old one, whose
 * connections then close). `rebase` and `init` dial the same way through the global fetch, for the client library.
 */
export class Dialer {
  readonly scheme: "http" | "https";
  #pool: HttpAgent;
  #undici: Agent | undefined;
  readonly #options: DialOptions;

  constructor(options: DialOptions = {}) {
    this.#options = options;
    this.scheme = options.material === undefined ? "http" : "https";
    this.#pool = this.#newPool(options.material?.pem);
    options.material?.onChange((pem) => {
      retire(this.#pool);
      this.#pool = this.#newPool(pem);
      void this.#undici?.close().catch(() => undefined);
      this.#undici = undefined;
    });
  }

  #newPool(pem: TlsPem | undefined): HttpAgent {
    // An idle connection is closed well before the peer's keep-alive timeout (10 s), so a request
    // never goes out on a socket the peer is closing (that would end as an unknown outcome).
    const pool = { keepAlive: true, scheduling: "lifo", timeout: IDLE_CONNECTION_MS } as const;
    return pem === undefined ? new http.Agent(pool) : new https.Agent({ ...pool, ca: pem.ca });
  }

  /**
   * Sends one request to `address` and reads its answer (at most `maxReplyBytes` of it). Rejects
   * with the transport's error when the exchange fails or times out. Once the connection is up
   * (for TLS: the peer's certificate accepted) or reused, any error is wrapped as sent
   * (`ERR_EXCHANGE_SENT`), so `failedBeforeSending` accepts only errors before any byte can have
   * left this process.
   */
  exchange(address: string, path: string, request: ExchangeRequest): Promise<ExchangeReply> {
    const send = this.scheme === "https" ? https.request : http.request;
    const headers =
      request.body === undefined
        ? request.headers
        : { ...request.headers, "content-length": String(Buffer.byteLength(request.body)) };
    return new Promise<ExchangeReply>((resolve, reject) => {
      const { host, port } = parseHostPort(address);
      const req = send({
        host,
        port,
        path,
        method: request.method,
        headers,
        agent: this.#pool,
        signal: AbortSignal.timeout(request.timeoutMs),
        ...(this.#options.serverName !== undefined ? { servername: this.#options.serverName } : {}),
      });
      let connected = false;
      const fail = (err: Error) => reject(connected ? sentError(err) : err);
      req.on("socket", (socket) => {
        if (req.reusedSocket) connected = true;
        else socket.once(this.scheme === "https" ? "secureConnect" : "connect", () => (connected = true));
      });
      req.on("error", fail);
      req.on("response", (res) => {
        const declared = Number(res.headers["content-length"] ?? NaN);
        const answer = (text: string | null) =>
          resolve({ status: res.statusCode ?? 0, header: (name) => headerText(res.headers, name), text });
        if (declared > request.maxReplyBytes) {
          res.destroy();
          answer(null);
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > request.maxReplyBytes) {
            res.destroy();
            answer(null);
          } else chunks.push(chunk);
        });
        res.on("end", () => answer(Buffer.concat(chunks, size).toString("utf8")));
        res.on("error", fail);
      });
      req.end(request.body);
    });
  }

  #undiciAgent(): Agent {
    if (this.#undici !== undefined) return this.#undici;
    const pem = this.#options.material!.pem;
    const { Agent } = requireFromHere("undici") as typeof Undici;
    this.#undici = new Agent({
      connect: {
        ca: pem.ca,
        ...(this.#options.serverName !== undefined ? { servername: this.#options.serverName } : {}),
      },
    });
    return this.#undici;
  }

  /** Rewrites a base URL to this dialer's scheme (a resolver names the head's address as http). */
  rebase(url: string): string {
    if (this.#options.material === undefined) return url;
    return url.replace(/^https?:/, `${this.scheme}:`);
  }

  /** Options to pass to the global fetch; its `dispatcher` is undici's (Node's fetch is undici). */
  init(init: RequestInit): RequestInit {
    if (this.#options.material === undefined) return init;
    return { ...init, dispatcher: this.#undiciAgent() as Dispatcher } as RequestInit;
  }

  async close(): Promise<void> {
    this.#pool.destroy();
    await this.#undici?.close().catch(() => undefined);
  }
}

/** How long a pooled connection may sit idle before it is closed. */
const IDLE_CONNECTION_MS = 4000;

/** An error after the request may have been written: never taken for a failure to connect. */
function sentError(cause: Error): Error {
  return Object.assign(new Error(cause.message, { cause }), { code: "ERR_EXCHANGE_SENT" });
}

/** Lets a replaced pool's requests in flight finish, then closes its connections. */
function retire(pool: HttpAgent): void {
  pool.on("free", (socket: Socket) => socket.destroy());
  for (const sockets of Object.values(pool.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
}

function headerText(headers: IncomingHttpHeaders, name: string): string | null {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(", ") : (value ?? null);
}
