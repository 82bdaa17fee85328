// Bodies of the head-to-server protocol (JSON over HTTP/1.1, Bearer token).
import { z } from "zod";
import { LIMITS, utf8Bytes } from "./record.ts";

const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const keySchema = z
  .string()
  .min(1, "key must not be empty")
  .refine((k) => utf8Bytes(k) <= LIMITS.maxKeyBytes, `key is longer than ${LIMITS.maxKeyBytes} bytes`);

export const valueSchema = z
  .string()
  .refine((v) => utf8Bytes(v) <= LIMITS.maxValueBytes, `value is larger than ${LIMITS.maxValueBytes} bytes`);

export const recordSchema = z.object({
  key: keySchema,
  partition: count,
  epoch: count,
  n: count,
  version: count.min(1),
  value: valueSchema.nullable(),
});

const headEpoch = { epoch: count, head: z.string().min(1).max(200) };

export const applyRequestSchema = z.object({ ...headEpoch, records: z.array(recordSchema).min(1).max(1000) });
export const readRequestSchema = z.object({ ...headEpoch, keys: z.array(keySchema).min(1).max(1000) });
export const fenceRequestSchema = z.object(headEpoch);

export const epochStateSchema = z.object({ epoch: count, holder: z.string() });

export const applyResponseSchema = epochStateSchema.extend({ applied: z.array(z.boolean()) });
export const readResponseSchema = epochStateSchema.extend({ records: z.array(recordSchema.nullable()) });
/** How far a server has taken one peer's change feed (that peer's incarnation, last position applied). */
export const feedPositionSchema = z.object({
  peer: z.string().max(300),
  incarnation: z.string().max(100),
  lsn: count,
});

export const changesResponseSchema = epochStateSchema.extend({
  incarnation: z.string(),
  records: z.array(recordSchema),
  next: count,
  more: z.boolean(),
  /** The answering server's own positions in its peers' feeds (absent from servers that predate them). */
  positions: z.array(feedPositionSchema).max(1000).optional(),
});

export type ApplyRequest = z.infer<typeof applyRequestSchema>;
export type ReadRequest = z.infer<typeof readRequestSchema>;
export type FenceRequest = z.infer<typeof fenceRequestSchema>;
export type ChangesResponse = z.infer<typeof changesResponseSchema>;
export type FeedPosition = z.infer<typeof feedPositionSchema>;

/** Server paths. */
export const PATHS = {
  apply: "/v1/apply",
  read: "/v1/read",
  fence: "/v1/fence",
  changes: "/v1/changes",
} as const;
