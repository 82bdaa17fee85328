// The head's calls to servers: global fetch (undici, keep-alive), Bearer token,
// and each answer classified by what it says about the request's effect.
import type { z } from "zod";
import type { ReplicaReply } from "./quorum.ts";
import { describeError, failedBeforeSending } from "./transport.ts";

export type RpcResult<T> =
  | { readonly kind: "ok"; readonly body: T }
  | { readonly kind: Exclude<ReplicaReply, "ok">; readonly message: string };

export class ServerRpc {
  readonly #token: string;
  readonly #timeoutMs: number;

  constructor(token: string, timeoutMs: number) {
    this.#token = token;
    this.#timeoutMs = timeoutMs;
  }

  async post<T>(address: string, path: string, body: unknown, schema: z.ZodType<T>): Promise<RpcResult<T>> {
    let res: Response;
    try {
      res = await fetch(`http://${address}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${this.#token}` },
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
    if (res.status === 200) {
      const parsed = schema.safeParse(JSON.parse(text));
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
