// The head's calls to servers: one exchange each through the dialer's keep-alive pool, Bearer
// token, and each answer classified by what it says about the request's effect.
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
import { LIMITS, type KvRecord } from "./record.ts";
import { Dialer, type ExchangeReply } from "./tls.ts";
import { describeError, failedBeforeSending } from "./transport.ts";
import { applyResponseSchema, PATHS, readResponseSchema } from "./wire.ts";

export type RpcResult<T> =
  | { readonly kind: "ok"; readonly body: T }
  | { readonly kind: Exclude<ReplicaReply, "ok">; readonly message: string };

/** Room for a small answer: an epoch state, or the booleans of an apply, with its envelope. */
const SMALL_REPLY_BYTES = 64 * 1024;
/** The longest a record can be in a server's answer: key and value escaped in the worst case. */
const MAX_RECORD_REPLY_BYTES = 6 * (LIMITS.maxKeyBytes + LIMITS.maxValueBytes) + 512;

/** JSON.parse that answers undefined (which no reply schema accepts) instead of throwing. */
function parseOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export class ServerRpc {
  readonly #token: string;
  readonly #timeoutMs: number;
  readonly #expected: ExpectedIdentity;
  readonly #dialer: Dialer;

  /**
   * `expected`: what every answering server must say it is (its service, role server); `dialer`:
   * plain HTTP or TLS trusting the service's CA.
   */
  constructor(token: string, timeoutMs: number, expected: ExpectedIdentity, dialer = new Dialer()) {
    this.#token = token;
    this.#timeoutMs = timeoutMs;
    this.#expected = expected;
    this.#dialer = dialer;
  }

  /**
   * POSTs `body` and classifies the answer. A reply longer than `maxReplyBytes` (default: room for
   * an epoch state, what fence answers) is cut off and counts as unknown: a broken or hostile
   * address cannot make the head hold more than the largest valid answer.
   */
  async post<T>(
    address: string,
    path: string,
    body: unknown,
    schema: z.ZodType<T>,
    maxReplyBytes = SMALL_REPLY_BYTES,
  ): Promise<RpcResult<T>> {
    let reply: ExchangeReply;
    try {
      reply = await this.#dialer.exchange(address, path, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${this.#token}`,
          [EXPECT_HEADER]: formatIdentity(this.#expected),
        },
        body: JSON.stringify(body),
        timeoutMs: this.#timeoutMs,
        maxReplyBytes,
      });
    } catch (err) {
      return {
        kind: failedBeforeSending(err) ? "not_sent" : "unknown",
        message: `${address}: ${describeError(err)}`,
      };
    }
    const { status, text } = reply;
    if (text === null) {
      return { kind: "unknown", message: `${address}: answer longer than ${maxReplyBytes} bytes` };
    }
    // Another process at this address (a reused pod IP): whatever it did, it was not done by one of
    // our servers, so for this service nothing was applied there.
    const mismatch = identityMismatch(this.#expected, parseIdentity(reply.header(IDENTITY_HEADER)));
    if (mismatch !== null)
      return { kind: "refused", message: `${address}: not a server of this service (${mismatch})` };
    if (status === 200) {
      const parsed = schema.safeParse(parseOrUndefined(text));
      return parsed.success
        ? { kind: "ok", body: parsed.data }
        : { kind: "unknown", message: `${address}: unexpected answer ${text.slice(0, 200)}` };
    }
    const message = `${address}: ${status} ${text.slice(0, 300)}`;
    if (status === 409) return { kind: "fenced", message };
    // 4xx and 503 are refusals before storage was touched; any other 5xx may follow a commit attempt.
    if ((status >= 400 && status < 500) || status === 503) return { kind: "refused", message };
    return { kind: "unknown", message };
  }
}

/** A 200 whose per-item answers do not line up with the batch: nothing can be concluded from it. */
function mismatch(address: string, sent: number, answered: number) {
  return {
    kind: "unknown",
    message: `${address}: answered ${answered} items for a batch of ${sent}`,
  } as const;
}

/** Whether a read's answer is for the key asked (a server answers null when it holds none). */
function answers(record: KvRecord | null, key: string): boolean {
  return record === null || record.key === key;
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
        .post(
          address,
          PATHS.apply,
          { ...this.#envelope, records },
          applyResponseSchema,
          SMALL_REPLY_BYTES + 8 * records.length,
        )
        .then((r) =>
          r.kind !== "ok"
            ? r
            : r.body.applied.length === records.length
              ? records.map((): RpcResult<true> => ({ kind: "ok", body: true }))
              : mismatch(address, records.length, r.body.applied.length),
        ),
    );
  }

  read(address: string, key: string): Promise<RpcResult<KvRecord | null>> {
    return this.#enqueue(this.#reads, address, key, key.length, (keys) =>
      this.#rpc
        .post(
          address,
          PATHS.read,
          { ...this.#envelope, keys },
          readResponseSchema,
          SMALL_REPLY_BYTES + MAX_RECORD_REPLY_BYTES * keys.length,
        )
        .then((r) =>
          r.kind !== "ok"
            ? r
            : r.body.records.length === keys.length &&
                r.body.records.every((rec, i) => answers(rec, keys[i]!))
              ? r.body.records.map((record) => ({ kind: "ok", body: record }) as const)
              : mismatch(address, keys.length, r.body.records.length),
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
    void send(pending.items)
      .catch((err: unknown) => ({ kind: "unknown", message: `${address}: ${describeError(err)}` }) as const)
      .then((results) => {
        pending.waiters.forEach((w, i) => w.resolve(Array.isArray(results) ? results[i]! : results));
      });
  }
}
