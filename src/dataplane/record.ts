// The unit of storage shared by head and servers: one key's latest record.

/** A write's position in the total order of writes: epoch first, then the head's counter. */
export interface Sequence {
  readonly epoch: number;
  readonly n: number;
}

/**
 * One key's record. `value: null` is a tombstone: a delete keeps its sequence so it
 * wins over older writes that a lagging replica may still hold.
 * `version` is what clients see: `versionOf(sequence)` for every record a head numbers, so it
 * orders as the sequence does, never repeats for a key (tombstones included: compare-and-set
 * cannot be fooled by a delete and re-create), and rises with every write. (Records written
 * before versions came from sequences count the key's writes instead: smaller than any
 * version of a later epoch, so they still order below every newer write.)
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

/**
 * A version is one JSON number (a double: integers up to 2^53 - 1 are exact) holding the
 * sequence: the epoch in the high bits, the head's counter in the low COUNTER_BITS. Compared as
 * numbers, versions order exactly as sequences do, so a write of a newer epoch is above every
 * write of an older one without the head reading the key.
 */
export const COUNTER_BITS = 33;
/** Writes one head process can number (about 8.6 billion); past it the head stops taking writes. */
export const MAX_COUNTER = 2 ** COUNTER_BITS - 1;
/** The highest epoch a version can hold (1,048,575 failovers and head restarts). */
export const MAX_EPOCH = 2 ** (53 - COUNTER_BITS) - 1;

/** The client-visible version of the write numbered `sequence`. */
export function versionOf(sequence: Sequence): number {
  if (!(sequence.n >= 1 && sequence.n <= MAX_COUNTER && sequence.epoch >= 0 && sequence.epoch <= MAX_EPOCH))
    throw new RangeError(`sequence (${sequence.epoch}, ${sequence.n}) does not fit in a version`);
  return sequence.epoch * 2 ** COUNTER_BITS + sequence.n;
}

/** The epoch of the head that numbered the write of `version` (0 for versions that predate them). */
export function epochOfVersion(version: number): number {
  return Math.floor(version / 2 ** COUNTER_BITS);
}

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
