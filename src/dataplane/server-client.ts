// The head's calls to servers: global fetch (undici, keep-alive), Bearer token,
// and each answer classified by what it says about the request's effect.
import type { z } from "zod";
import {
  EXPECT_HEADER,
  formatIdentity,
  IDENTITY_HEADER,
  identityMismatch,
  parseIdentity,
  type ExpectedIdentity,
} from "./identity.ts";
import type { ReplicaReply } from "./quorum.ts";
import type { KvRecord } from "./record.ts";
import { describeError, failedBeforeSending } from "./transport.ts";
import { applyResponseSchema, PATHS, readResponseSchema } from "./wire.ts";

export type RpcResult<T> =
  | { readonly kind: "ok"; readonly body: T }
  | { readonly kind: Exclude<ReplicaReply, "ok">; readonly message: string };

export class ServerRpc {
  readonly #token: string;
  readonly #timeoutMs: number;
  readonly #expected: ExpectedIdentity;

  /** `expected`: what every answering server must say it is (its service, role server). */
  constructor(token: string, timeoutMs: number, expected: ExpectedIdentity) {
    this.#token = token;
    this.#timeoutMs = timeoutMs;
    this.#expected = expected;
  }

  async post<T>(address: string, path: string, body: unknown, schema: z.ZodType<T>): Promise<RpcResult<T>> {
    let res: Response;
    try {
      res = await fetch(`http://${address}${path}`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${this.#token}`,
          [EXPECT_HEADER]: formatIdentity(this.#expected),
        },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      return {
        kind: failedBeforeSending(err) ? "not_sent" : "unknown",
        message: `${address}: ${describeError(err)}`,
      };
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      return { kind: "unknown", message: `${address}: ${describeError(err)}` };
    }
    // Another process at this address (a reused pod IP): whatever it did, it was not done by one of
    // our servers, so for this service nothing was applied there.
    const mismatch = identityMismatch(this.#expected, parseIdentity(res.headers.get(IDENTITY_HEADER)));
    if (mismatch !== null)
      return { kind: "refused", message: `${address}: not a server of this service (${mismatch})` };
    if (res.status === 200) {
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      const parsed = schema.safeParse(json);
      return parsed.success
        ? { kind: "ok", body: parsed.data }
        : { kind: "unknown", message: `${address}: unexpected answer ${text.slice(0, 200)}` };
    }
    const message = `${address}: ${res.status} ${text.slice(0, 300)}`;
    if (res.status === 409) return { kind: "fenced", message };
    // 4xx and 503 are refusals before storage was touched; any other 5xx may follow a commit attempt.
    if ((res.status >= 400 && res.status < 500) || res.status === 503) return { kind: "refused", message };
    return { kind: "unknown", message };
  }
}

interface Waiter<T> {
  readonly resolve: (r: RpcResult<T>) => void;
}

interface Pending<I, T> {
  items: I[];
  waiters: Waiter<T>[];
  bytes: number;
}

/**
 * Coalesces the head's concurrent record writes and key reads per server into one
 * request each (and so into one server transaction): under load this divides the
 * number of HTTP exchanges by the number of operations in flight.
 */
export class ServerBatcher {
  readonly #rpc: ServerRpc;
  readonly #envelope: { epoch: number; head: string };
  readonly #maxItems: number;
  readonly #maxBytes: number;
  readonly #applies = new Map<string, Pending<KvRecord, true>>();
  readonly #reads = new Map<string, Pending<string, KvRecord | null>>();

  constructor(rpc: ServerRpc, epoch: number, head: string, maxItems = 256, maxBytes = 1024 * 1024) {
    this.#rpc = rpc;
    this.#envelope = { epoch, head };
    this.#maxItems = maxItems;
    this.#maxBytes = maxBytes;
  }

  /** Makes `record` durable on the server ("ok" also when it already holds it or a newer one). */
  apply(address: string, record: KvRecord): Promise<RpcResult<true>> {
    const size = record.key.length + (record.value?.length ?? 0);
    return this.#enqueue(this.#applies, address, record, size, (records) =>
      this.#rpc
        .post(address, PATHS.apply, { ...this.#envelope, records }, applyResponseSchema)
        .then((r) =>
          r.kind === "ok" ? records.map((): RpcResult<true> => ({ kind: "ok", body: true })) : r,
        ),
    );
  }

  read(address: string, key: string): Promise<RpcResult<KvRecord | null>> {
    return this.#enqueue(this.#reads, address, key, key.length, (keys) =>
      this.#rpc
        .post(address, PATHS.read, { ...this.#envelope, keys }, readResponseSchema)
        .then((r) =>
          r.kind === "ok" ? r.body.records.map((record) => ({ kind: "ok", body: record }) as const) : r,
        ),
    );
  }

  #enqueue<I, T>(
    queues: Map<string, Pending<I, T>>,
    address: string,
    item: I,
    size: number,
    send: (items: I[]) => Promise<RpcResult<T>[] | Exclude<RpcResult<T>, { kind: "ok" }>>,
  ): Promise<RpcResult<T>> {
    return new Promise((resolve) => {
      let pending = queues.get(address);
      if (pending === undefined) {
        pending = { items: [], waiters: [], bytes: 0 };
        queues.set(address, pending);
        setImmediate(() => this.#flush(queues, address, send));
      }
      pending.items.push(item);
      pending.waiters.push({ resolve });
      pending.bytes += size;
      if (pending.items.length >= this.#maxItems || pending.bytes >= this.#maxBytes) {
        this.#flush(queues, address, send);
      }
    });
  }

  #flush<I, T>(
    queues: Map<string, Pending<I, T>>,
    address: string,
    send: (items: I[]) => Promise<RpcResult<T>[] | Exclude<RpcResult<T>, { kind: "ok" }>>,
  ): void {
    const pending = queues.get(address);
    if (pending === undefined || pending.items.length === 0) return;
    queues.delete(address);
    void send(pending.items).then((results) => {
      pending.waiters.forEach((w, i) => w.resolve(Array.isArray(results) ? results[i]! : results));
    });
  }
}
