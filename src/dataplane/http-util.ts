// Small helpers shared by the head's and the server's HTTP handlers.
import { hash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { z } from "zod";
import {
  EXPECT_HEADER,
  formatIdentity,
  IDENTITY_HEADER,
  identityMismatch,
  MISDIRECTED_STATUS,
  parseExpected,
  type Identity,
} from "./identity.ts";

/** A request the handler refuses; `code` is a stable machine-readable word, `message` says what to fix. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly extra: Record<string, unknown>;
  /** Response headers the refusal needs (Retry-After, Connection: close). */
  readonly headers: Record<string, string>;
  constructor(
    status: number,
    code: string,
    message: string,
    extra: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra;
    this.headers = headers;
  }
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** Answers with the error; if an answer had already begun, the connection is cut instead. */
export function sendError(res: ServerResponse, err: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, err.status, { error: err.code, message: err.message, ...err.extra }, err.headers);
}

/**
 * Reads the body, refusing (413) past `maxBytes` without buffering the rest. `onChunk` may
 * refuse a chunk by throwing (the body is then dropped and the read rejects with that error).
 */
export function readBody(
  req: IncomingMessage,
  maxBytes: number,
  onChunk?: (bytes: number) => void,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > maxBytes) {
      reject(
        new HttpError(
          413,
          "body_too_large",
          `request body of ${declared} bytes exceeds the limit of ${maxBytes}`,
        ),
      );
      return;
    }
    // With a declared length the body goes straight into one buffer: no second copy at the end.
    const whole = Number.isSafeInteger(declared) && declared > 0 ? Buffer.allocUnsafe(declared) : null;
    const chunks: Buffer[] = [];
    let size = 0;
    const refuse = (err: unknown) => {
      req.off("data", onData);
      chunks.length = 0;
      req.resume();
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        refuse(new HttpError(413, "body_too_large", `request body exceeds the limit of ${maxBytes} bytes`));
        return;
      }
      try {
        onChunk?.(chunk.length);
      } catch (err) {
        refuse(err);
        return;
      }
      if (whole) chunk.copy(whole, size - chunk.length);
      else chunks.push(chunk);
    };
    req.on("data", onData);
    req.on("end", () => resolve(whole ? whole.subarray(0, size) : Buffer.concat(chunks, size)));
    req.on("error", reject);
  });
}

/** Parses JSON and validates it with a schema; problems become a 400 that names the field. */
export function parseJson<T>(body: Buffer, schema: z.ZodType<T>): T {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new HttpError(400, "invalid_json", `request body is not valid JSON: ${(err as Error).message}`);
  }
  const result = schema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const where = issue.path.length > 0 ? issue.path.join(".") : "body";
    throw new HttpError(400, "invalid_request", `${where}: ${issue.message}`);
  }
  return result.data;
}

function digest(s: string): Buffer {
  return hash("sha256", s, "buffer");
}

/** Checks `Authorization: Bearer <token>` in constant time (digests make the lengths equal). */
export function checkBearer(req: IncomingMessage, token: string): void {
  const header = req.headers.authorization;
  if (header === undefined || !header.startsWith("Bearer ")) {
    throw new HttpError(401, "unauthorized", "missing Authorization: Bearer token");
  }
  if (!timingSafeEqual(digest(header.slice("Bearer ".length)), digest(token))) {
    throw new HttpError(401, "unauthorized", "wrong bearer token");
  }
}

/** Names this process on a reply: every answer, errors included, says who gave it. */
export function stampIdentity(res: ServerResponse, self: Identity): void {
  res.setHeader(IDENTITY_HEADER, formatIdentity(self));
}

/**
 * Refuses (421 `misdirected`, before anything is read or applied) a request meant for another
 * process: the sender named a service, role, pod or epoch this process is not.
 */
export function checkExpected(
  req: IncomingMessage,
  self: Identity,
  extra: Record<string, unknown> = {},
): void {
  const header = req.headers[EXPECT_HEADER];
  const expected = parseExpected(Array.isArray(header) ? header.join(";") : header);
  if (expected === undefined) return;
  if (expected === null)
    throw new HttpError(
      400,
      "invalid_request",
      `${EXPECT_HEADER} is not service=<uid>; role=<role>; pod=<name>`,
    );
  if (identityMismatch(expected, self) !== null) {
    throw new HttpError(
      MISDIRECTED_STATUS,
      "misdirected",
      `this is ${formatIdentity(self)}, not ${formatIdentity(expected)}; nothing was applied`,
      extra,
    );
  }
}

/** Parses `host:port` (port 0 = any free port). */
export function parseHostPort(text: string): { host: string; port: number } {
  const i = text.lastIndexOf(":");
  const host = text.slice(0, i);
  const port = Number(text.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`"${text}" is not host:port`);
  }
  return { host: host.replace(/^\[(.*)\]$/, "$1"), port };
}
