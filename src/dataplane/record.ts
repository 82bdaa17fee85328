// The unit of storage shared by head and servers: one key's latest record.

/** A write's position in the total order of writes: epoch first, then the head's counter. */
export interface Sequence {
  readonly epoch: number;
  readonly n: number;
}

/**
 * One key's record. `value: null` is a tombstone: a delete keeps its sequence so it
 * wins over older writes that a lagging replica may still hold.
 * `version` counts the writes to the key (1 on the first put) and never repeats,
 * tombstones included, so compare-and-set cannot be fooled by a delete and re-create.
 */
export interface KvRecord extends Sequence {
  readonly key: string;
  readonly partition: number;
  readonly version: number;
  readonly value: string | null;
}

const MAX_KEY_BYTES = 1024;
const MAX_VALUE_BYTES = 1024 * 1024;
/** JSON may spell any byte of a string as \u00XX: six bytes on the wire for one stored. */
const JSON_ESCAPE_FACTOR = 6;

export const LIMITS = {
  /** UTF-8 bytes of a key. */
  maxKeyBytes: MAX_KEY_BYTES,
  /** UTF-8 bytes of a value. */
  maxValueBytes: MAX_VALUE_BYTES,
  /**
   * A client request body: the largest valid request (key and value escaped in the worst case)
   * plus 64 KiB for the envelope and whitespace. Refused while reading, past it.
   */
  maxBodyBytes: JSON_ESCAPE_FACTOR * (MAX_KEY_BYTES + MAX_VALUE_BYTES) + 64 * 1024,
  /** A head-to-server body: a batch of records (the head flushes past 1 Mi characters) plus one more. */
  maxServerBodyBytes: 16 * 1024 * 1024,
} as const;

export function compareSequence(a: Sequence, b: Sequence): number {
  if (a.epoch !== b.epoch) return a.epoch < b.epoch ? -1 : 1;
  if (a.n !== b.n) return a.n < b.n ? -1 : 1;
  return 0;
}

/** The record a replica keeps: the one with the highest sequence (null = no record). */
export function newestRecord<R extends Sequence>(records: readonly (R | null)[]): R | null {
  let best: R | null = null;
  for (const r of records) {
    if (r !== null && (best === null || compareSequence(r, best) > 0)) best = r;
  }
  return best;
}

export function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

/** Whether the record makes the key exist (a tombstone does not). */
export function exists(record: Pick<KvRecord, "value"> | null): boolean {
  return record !== null && record.value !== null;
}
