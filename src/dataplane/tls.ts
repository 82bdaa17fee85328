// TLS for every data-plane hop. A process is given three PEM files (its certificate, its key, the
// CA that signed its peers') and re-reads them when their content changes, so a certificate renewed
// in its Secret is served on the next connection without a restart (and so without a failover).
// Listeners take TLS and, in permissive mode, plain HTTP on the same port (told apart by the first
// byte), which lets a running service move from plain to TLS one process at a time.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { SecureContextOptions } from "node:tls";
import type * as Undici from "undici";
import type { Agent, Dispatcher } from "undici";

// undici is loaded by the first TLS dialer, not with this module: plain HTTP goes through Node's
// own fetch, so a process that never dials TLS starts without undici's hundred-odd modules.
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
  /** Whether to check the peer's certificate at all (false only for liveness probes, as the kubelet's). */
  readonly verify?: boolean;
}

/**
 * Outgoing HTTP(S) for one kind of peer: `url(address, path)` names the scheme, `init()` the
 * connection pool (an undici Agent trusting the current CA, rebuilt when the CA file changes;
 * requests in flight finish on the old one).
 */
export class Dialer {
  readonly scheme: "http" | "https";
  #agent: Agent | undefined;
  readonly #options: DialOptions;

  constructor(options: DialOptions = {}) {
    this.#options = options;
    this.scheme = options.material === undefined ? "http" : "https";
    if (options.material !== undefined) {
      this.#agent = this.#newAgent(options.material.pem);
      options.material.onChange((pem) => {
        const old = this.#agent;
        this.#agent = this.#newAgent(pem);
        void old?.close().catch(() => undefined);
      });
    }
  }

  #newAgent(pem: TlsPem): Agent {
    const { Agent } = requireFromHere("undici") as typeof Undici;
    return new Agent({
      connect: {
        ca: pem.ca,
        rejectUnauthorized: this.#options.verify ?? true,
        ...(this.#options.serverName !== undefined ? { servername: this.#options.serverName } : {}),
      },
    });
  }

  url(address: string, path: string): string {
    return `${this.scheme}://${address}${path}`;
  }

  /** Rewrites a base URL to this dialer's scheme (a resolver names the head's address as http). */
  rebase(url: string): string {
    if (this.#options.material === undefined) return url;
    return url.replace(/^https?:/, `${this.scheme}:`);
  }

  /** Options to pass to the global fetch; its `dispatcher` is undici's (Node's fetch is undici). */
  init(init: RequestInit): RequestInit {
    if (this.#agent === undefined) return init;
    return { ...init, dispatcher: this.#agent as Dispatcher } as RequestInit;
  }

  async close(): Promise<void> {
    await this.#agent?.close().catch(() => undefined);
  }
}
