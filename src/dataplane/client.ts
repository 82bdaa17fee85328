// Client library for the head's API. It follows the head across failovers through a
// resolver, retries what is safe to retry, and says so when a write's fate is unknown.
import { OP_PATH, type GetResponse, type OperationName, type OpRequest, type WriteResponse } from "./api.ts";
import {
  EXPECT_HEADER,
  formatIdentity,
  IDENTITY_HEADER,
  identityMismatch,
  MISDIRECTED_STATUS,
  parseIdentity,
  type ExpectedIdentity,
} from "./identity.ts";
import { readFileSync } from "node:fs";
import { Dialer, TlsMaterial } from "./tls.ts";
import { describeError, failedBeforeSending } from "./transport.ts";

/** A head to talk to, and what the resolver knows of whom it should find there. */
export interface HeadTarget {
  /** Base URL, e.g. "http://10.0.0.7:7400". */
  readonly url: string;
  /** The StorageService's UID (overrides ClientOptions.serviceUid). */
  readonly serviceUid?: string;
  /** The head pod's name, when the resolver knows it. */
  readonly pod?: string;
}

/** Returns the current head: its base URL alone, or with whom to expect there. */
export type HeadResolver = () => Promise<string | HeadTarget>;

/**
 * The write may or may not have been applied (the head went away mid-request, or could
 * not reach a write quorum after some replicas took it). It was not retried, since a
 * retry could apply it twice around another client's write. Read the key to find out.
 */
export class OutcomeUnknown extends Error {
  readonly op: OperationName;
  readonly key: string;
  constructor(op: OperationName, key: string, reason: string) {
    super(`${op} of ${JSON.stringify(key)}: outcome unknown (${reason})`);
    this.name = "OutcomeUnknown";
    this.op = op;
    this.key = key;
  }
}

/** The operation was refused or could not be done; it was not applied. */
export class DataplaneError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "DataplaneError";
    this.status = status;
    this.code = code;
  }
}

export type CasResult = { ok: true; version: number } | { ok: false; currentVersion: number };

export interface ClientOptions {
  readonly resolveHead: HeadResolver;
  /**
   * The StorageService's UID: every head reply must name it, and requests carry it so that a head
   * of another service refuses them. Without it (and without one from the resolver) only the role
   * is checked.
   */
  readonly serviceUid?: string;
  /** Attempts per operation, the first included. */
  readonly maxAttempts?: number;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  readonly requestTimeoutMs?: number;
  readonly random?: () => number;
  /**
   * TLS to the head: the CA its certificate must chain to (PEM text or a file, re-read when it
   * changes), and the name it must carry when the resolver gives an IP (the head Service's DNS name,
   * `<service>-head.<namespace>.svc`). Set, the client speaks https whatever scheme the resolver gives.
   */
  readonly tls?: { readonly ca?: string; readonly caFile?: string; readonly serverName?: string };
  /** The client's credential, sent as `Authorization: Bearer`: the token itself or a file holding it. */
  readonly credentials?: { readonly token?: string; readonly tokenFile?: string };
}

/** What one attempt produced. */
export type Attempt =
  | { readonly kind: "response"; readonly status: number; readonly body: Record<string, unknown> }
  /** Never reached a head: resolver failed or the connection was refused. */
  | { readonly kind: "not_sent"; readonly message: string }
  /** Sent, then the connection broke or timed out: the head may have acted on it. */
  | { readonly kind: "lost"; readonly message: string }
  /**
   * Another process answered (not a head of this service, a reused pod IP): whatever it did, it did
   * not do it to this service, so the operation was not applied here; its answer is not trusted.
   */
  | { readonly kind: "misdirected"; readonly message: string };

export type Decision = "done" | "retry" | "unknown" | "fail";

/** Pure retry policy: reads retry freely; writes only when known not applied. */
export function decide(op: OperationName, attempt: Attempt): Decision {
  const isRead = op === "get";
  if (attempt.kind === "not_sent" || attempt.kind === "misdirected") return "retry";
  if (attempt.kind === "lost") return isRead ? "retry" : "unknown";
  const { status, body } = attempt;
  if (status === 200) return "done";
  if (status === 412 && op === "cas") return "done";
  if (body.outcome === "not_applied" && (status === 409 || status === 503 || status === MISDIRECTED_STATUS))
    return "retry";
  if (body.outcome === "unknown") return isRead ? "retry" : "unknown";
  if (status >= 500) return isRead ? "retry" : "unknown";
  return "fail";
}

export function backoffMs(attempt: number, initial: number, max: number, random: () => number): number {
  const base = Math.min(max, initial * 2 ** attempt);
  return base / 2 + (base / 2) * random();
}

/** What a reply from `target` must say it is, with `serviceUid` as the client's default. Pure. */
export function expectedHead(target: HeadTarget, serviceUid: string | undefined): ExpectedIdentity {
  const service = target.serviceUid ?? serviceUid;
  return {
    role: "head",
    ...(service !== undefined && service !== "" ? { service } : {}),
    ...(target.pod !== undefined && target.pod !== "" ? { pod: target.pod } : {}),
  };
}

/** The TLS dialer of a client's options: plain HTTP without a CA. */
function dialerOf(tls: ClientOptions["tls"]): Dialer {
  if (tls === undefined || (tls.ca === undefined && tls.caFile === undefined)) return new Dialer();
  const material =
    tls.caFile !== undefined
      ? TlsMaterial.fromFiles({ caFile: tls.caFile })
      : TlsMaterial.fromPem({ ca: tls.ca! });
  material.watch();
  return new Dialer({ material, ...(tls.serverName !== undefined ? { serverName: tls.serverName } : {}) });
}

/** The Authorization header of a client's credentials, if it has any. */
function authorizationOf(credentials: ClientOptions["credentials"]): Record<string, string> {
  const token =
    credentials?.token ??
    (credentials?.tokenFile !== undefined ? readFileSync(credentials.tokenFile, "utf8").trim() : undefined);
  return token === undefined || token === "" ? {} : { authorization: `Bearer ${token}` };
}

export class DataplaneClient {
  readonly #options: Required<Omit<ClientOptions, "serviceUid" | "tls" | "credentials">> &
    Pick<ClientOptions, "serviceUid">;
  readonly #dialer: Dialer;
  readonly #authorization: Record<string, string>;
  #head: HeadTarget | null = null;

  constructor(options: ClientOptions) {
    this.#options = {
      maxAttempts: 8,
      initialBackoffMs: 20,
      maxBackoffMs: 1000,
      requestTimeoutMs: 5000,
      random: Math.random,
      ...options,
    };
    this.#dialer = dialerOf(options.tls);
    this.#authorization = authorizationOf(options.credentials);
  }

  /** Closes the client's TLS connection pool (plain connections need nothing). */
  close(): Promise<void> {
    return this.#dialer.close();
  }

  async get(key: string): Promise<{ found: boolean; value: string | null; version: number }> {
    const body = (await this.#run({ op: "get", key })).body as unknown as GetResponse;
    return { found: body.found, value: body.value, version: body.version };
  }

  async put(key: string, value: string): Promise<{ version: number }> {
    const body = (await this.#run({ op: "put", key, value })).body as unknown as WriteResponse;
    return { version: body.version };
  }

  async delete(key: string): Promise<{ version: number }> {
    const body = (await this.#run({ op: "delete", key })).body as unknown as WriteResponse;
    return { version: body.version };
  }

  /** Sets `value` if the key is at `expectedVersion` (0: if the key does not exist). */
  async cas(key: string, expectedVersion: number, value: string): Promise<CasResult> {
    const r = await this.#run({ op: "cas", key, expectedVersion, value });
    if (r.status === 412) return { ok: false, currentVersion: Number(r.body.currentVersion) };
    return { ok: true, version: (r.body as unknown as WriteResponse).version };
  }

  async #attempt(request: OpRequest): Promise<Attempt> {
    let target: HeadTarget;
    try {
      if (this.#head === null) {
        const resolved = await this.#options.resolveHead();
        this.#head = typeof resolved === "string" ? { url: resolved } : resolved;
      }
      target = this.#head;
    } catch (err) {
      return { kind: "not_sent", message: `resolving the head: ${describeError(err)}` };
    }
    const base = this.#dialer.rebase(target.url);
    const expected = expectedHead(target, this.#options.serviceUid);
    let res: Response;
    try {
      res = await fetch(
        new URL(OP_PATH, base),
        this.#dialer.init({
          method: "POST",
          headers: {
            "content-type": "application/json",
            [EXPECT_HEADER]: formatIdentity(expected),
            ...this.#authorization,
          },
          body: JSON.stringify(request),
          signal: AbortSignal.timeout(this.#options.requestTimeoutMs),
        }),
      );
    } catch (err) {
      const message = `${base}: ${describeError(err)}`;
      return failedBeforeSending(err) ? { kind: "not_sent", message } : { kind: "lost", message };
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      return { kind: "lost", message: `${base}: ${describeError(err)}` };
    }
    const mismatch = identityMismatch(expected, parseIdentity(res.headers.get(IDENTITY_HEADER)));
    if (mismatch !== null)
      return { kind: "misdirected", message: `${base}: not the head this client looks for (${mismatch})` };
    try {
      return { kind: "response", status: res.status, body: JSON.parse(text) as Record<string, unknown> };
    } catch (err) {
      return { kind: "lost", message: `${base}: ${describeError(err)}` };
    }
  }

  async #run(request: OpRequest): Promise<{ status: number; body: Record<string, unknown> }> {
    const { maxAttempts, initialBackoffMs, maxBackoffMs, random } = this.#options;
    let last = "";
    for (let i = 0; i < maxAttempts; i++) {
      if (i > 0)
        await new Promise((r) => setTimeout(r, backoffMs(i - 1, initialBackoffMs, maxBackoffMs, random)));
      const attempt = await this.#attempt(request);
      const decision = decide(request.op, attempt);
      if (attempt.kind === "response") last = `${attempt.status} ${String(attempt.body.message ?? "")}`;
      else last = attempt.message;
      if (decision === "done" && attempt.kind === "response") return attempt;
      if (decision === "unknown") throw new OutcomeUnknown(request.op, request.key, last);
      if (decision === "fail" && attempt.kind === "response") {
        throw new DataplaneError(attempt.status, String(attempt.body.error ?? "error"), last);
      }
      // Retry: the head may have changed; ask the resolver again.
      this.#head = null;
    }
    throw new DataplaneError(
      503,
      "unavailable",
      `${request.op} not applied after ${maxAttempts} attempts: ${last}`,
    );
  }
}

export function createClient(options: ClientOptions): DataplaneClient {
  return new DataplaneClient(options);
}
