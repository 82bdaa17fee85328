// Client authentication at the head: each client the operator issued a credential to sends it as
// `Authorization: Bearer <token>`. The head holds only the tokens' SHA-256 digests, read from a file
// (a mounted Secret) and re-read when it changes, so a client removed from the spec is refused within
// the reload interval, without a restart. A digest leaks nothing usable: tokens are 256 random bits.
import { hash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { z } from "zod";
import { HttpError } from "./http-util.ts";

/** The file's shape: client name -> hex SHA-256 of its token. */
export const clientDigestsSchema = z.record(z.string().min(1), z.string().regex(/^[0-9a-f]{64}$/));
export type ClientDigests = z.infer<typeof clientDigestsSchema>;

/** How often the digests file is checked for a change, by default. */
export const CLIENT_TOKENS_RELOAD_INTERVAL_MS = 1000;

/** The hex SHA-256 of a token: what the operator writes and the head compares. */
export function tokenDigest(token: string): string {
  return hash("sha256", token, "hex");
}

function unauthorized(message: string): HttpError {
  return new HttpError(
    401,
    "unauthorized",
    `${message}; nothing was applied`,
    { outcome: "not_applied" },
    {
      "www-authenticate": 'Bearer realm="understudy"',
    },
  );
}

export class ClientTokens {
  /** digest -> client name */
  #byDigest: Map<string, string>;
  readonly #file: string | undefined;
  #text: string | undefined;
  #timer: NodeJS.Timeout | undefined;

  private constructor(digests: ClientDigests, file: string | undefined, text: string | undefined) {
    this.#byDigest = new Map(Object.entries(digests).map(([name, digest]) => [digest, name]));
    this.#file = file;
    this.#text = text;
  }

  static fromDigests(digests: ClientDigests): ClientTokens {
    return new ClientTokens(digests, undefined, undefined);
  }

  /** Reads the file now (it must be valid) and can watch it for changes. */
  static fromFile(file: string): ClientTokens {
    const text = readFileSync(file, "utf8");
    return new ClientTokens(parseDigests(text, file), file, text);
  }

  /** The names of the clients allowed now. */
  get clients(): string[] {
    return [...this.#byDigest.values()].sort();
  }

  watch(
    intervalMs = CLIENT_TOKENS_RELOAD_INTERVAL_MS,
    onChange: (clients: string[]) => void = () => {},
    onError: (err: Error) => void = () => {},
  ): void {
    if (this.#file === undefined || this.#timer !== undefined) return;
    const file = this.#file;
    this.#timer = setInterval(() => {
      try {
        const text = readFileSync(file, "utf8");
        if (text === this.#text) return;
        const digests = parseDigests(text, file);
        this.#text = text;
        this.#byDigest = new Map(Object.entries(digests).map(([name, digest]) => [digest, name]));
        onChange(this.clients);
      } catch (err) {
        onError(err as Error);
      }
    }, intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The name of the client the request's bearer token belongs to; 401 when it has none or an unknown one. */
  authenticate(req: IncomingMessage): string {
    const header = req.headers.authorization;
    if (header === undefined || !header.startsWith("Bearer "))
      throw unauthorized("missing Authorization: Bearer token");
    const name = this.#byDigest.get(tokenDigest(header.slice("Bearer ".length)));
    if (name === undefined) throw unauthorized("unknown or revoked client token");
    return name;
  }
}

function parseDigests(text: string, file: string): ClientDigests {
  const parsed = clientDigestsSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${file}: ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}
