// The client-to-head API: POST /v1/op with a JSON body, over HTTP/1.1 keep-alive.
// Values are UTF-8 strings (binary data goes base64-encoded by the caller).
import { z } from "zod";
import { HttpError } from "./http-util.ts";
import { LIMITS, utf8Bytes } from "./record.ts";

export const OP_PATH = "/v1/op";
export const OPERATIONS = ["get", "put", "delete", "cas"] as const;
export type OperationName = (typeof OPERATIONS)[number];

const key = z.string().min(1, "key must not be empty");
const value = z.string();
const version = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const opRequestSchema = z.discriminatedUnion("op", [
  z.strictObject({ op: z.literal("get"), key }),
  z.strictObject({ op: z.literal("put"), key, value }),
  z.strictObject({ op: z.literal("delete"), key }),
  z.strictObject({ op: z.literal("cas"), key, expectedVersion: version, value }),
]);
export type OpRequest = z.infer<typeof opRequestSchema>;

/**
 * Checks the body before schema validation so each kind of mistake gets its own code:
 * unknown_operation, key_too_long, value_too_large, then invalid_request for the rest.
 */
export function precheckOp(parsed: unknown): void {
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new HttpError(400, "invalid_request", 'body must be a JSON object like {"op":"get","key":"k"}');
  }
  const body = parsed as Record<string, unknown>;
  if (typeof body.op !== "string" || !(OPERATIONS as readonly string[]).includes(body.op)) {
    throw new HttpError(
      400,
      "unknown_operation",
      `op must be one of ${OPERATIONS.join(", ")}; got ${JSON.stringify(body.op)}`,
    );
  }
  if (typeof body.key === "string" && utf8Bytes(body.key) > LIMITS.maxKeyBytes) {
    throw new HttpError(
      400,
      "key_too_long",
      `key is ${utf8Bytes(body.key)} bytes; the limit is ${LIMITS.maxKeyBytes}`,
    );
  }
  if (typeof body.value === "string" && utf8Bytes(body.value) > LIMITS.maxValueBytes) {
    throw new HttpError(
      413,
      "value_too_large",
      `value is ${utf8Bytes(body.value)} bytes; the limit is ${LIMITS.maxValueBytes}`,
    );
  }
}

/** What a head says about a write it could not acknowledge. */
export type FailureOutcome = "not_applied" | "unknown";

export type GetResponse = { key: string; found: boolean; value: string | null; version: number };
export type WriteResponse = { key: string; version: number };
export type ErrorResponse = {
  error: string;
  message: string;
  outcome?: FailureOutcome;
  currentVersion?: number;
};
