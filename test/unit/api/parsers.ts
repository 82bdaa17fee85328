// The parse helpers by kind, for tests that walk cases of every kind.
import {
  CLAIM_KIND,
  POOL_KIND,
  parseClaim,
  parseClaimUpdate,
  parsePool,
  parseStorageService,
  parseStorageServiceUpdate,
  type ParseResult,
} from "../../../src/api/index.ts";
import type { Kind } from "./cases.ts";

export function parserFor(kind: Kind): (obj: unknown) => ParseResult<unknown> {
  if (kind === POOL_KIND) return parsePool;
  if (kind === CLAIM_KIND) return parseClaim;
  return parseStorageService;
}

/** Parses `previous` (which must be valid) and checks the update to `next`. */
export function parseUpdate(kind: Kind, previous: unknown, next: unknown): ParseResult<unknown> {
  if (kind === CLAIM_KIND) {
    const old = parseClaim(previous);
    if (!old.ok) throw new Error(old.message);
    return parseClaimUpdate(old.value, next);
  }
  if (kind === POOL_KIND) throw new Error("pools have no immutable fields");
  const old = parseStorageService(previous);
  if (!old.ok) throw new Error(old.message);
  return parseStorageServiceUpdate(old.value, next);
}
