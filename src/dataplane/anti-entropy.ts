// Anti-entropy: a server pulls, from each peer that shares partitions with it, the
// peer's change feed (records ordered by the peer's local log sequence number) since
// the last position it stored. Applying keeps the highest sequence per key, so pulling
// is idempotent and safe at any time; it is how a server that was down catches up.
import {
  EXPECT_HEADER,
  formatIdentity,
  IDENTITY_HEADER,
  identityMismatch,
  parseIdentity,
  type ExpectedIdentity,
} from "./identity.ts";
import { placePartitions, partitionsOfServer, type ServerAddress } from "./placement.ts";
import { LIMITS } from "./record.ts";
import type { Dialer } from "./tls.ts";
import type { StoreOp, StoreResult, ServerStore } from "./server-store.ts";
import { changesResponseSchema, PATHS } from "./wire.ts";

export interface PeerShare {
  readonly peer: string;
  readonly partitions: readonly number[];
}

/** The peers `self` shares partitions with, and which ones. Pure. */
export function peersToSync(
  servers: readonly ServerAddress[],
  self: string,
  partitions: number,
  replicationFactor: number,
): PeerShare[] {
  const placement = placePartitions(servers, partitions, replicationFactor);
  const mine = new Set(partitionsOfServer(placement, self));
  return servers
    .filter((s) => s.address !== self)
    .map((s) => ({
      peer: s.address,
      partitions: partitionsOfServer(placement, s.address).filter((p) => mine.has(p)),
    }))
    .filter((s) => s.partitions.length > 0);
}

/**
 * Per partition, the position in this server's feed up to which every other replica has taken
 * it (so holds each of those records, or a newer one of its key): the least of the positions its
 * peers reported for this server. A partition with a peer that reported none is left out. Pure.
 */
export function heldEverywhere(
  shares: readonly PeerShare[],
  positions: ReadonlyMap<string, number>,
): Map<number, number> {
  const floors = new Map<number, number>();
  const unknown = new Set<number>();
  for (const share of shares) {
    const position = positions.get(share.peer);
    for (const p of share.partitions) {
      if (position === undefined) unknown.add(p);
      else floors.set(p, Math.min(floors.get(p) ?? Infinity, position));
    }
  }
  for (const p of unknown) floors.delete(p);
  return floors;
}

export interface PullContext {
  /** This server's address as its peers name it (in `--servers`). */
  readonly self: string;
  readonly store: ServerStore;
  readonly submit: (op: StoreOp) => Promise<StoreResult>;
  readonly token: string;
  /** Plain HTTP or TLS trusting the service's CA. */
  readonly dialer: Dialer;
  /** What the peer must say it is (a server of this service): records are taken from no one else. */
  readonly expected: ExpectedIdentity;
  readonly pageSize: number;
  /** Value bytes a peer puts in one page (past them it starts the next). */
  readonly pageBytes: number;
  readonly timeoutMs: number;
}

/** The longest a valid page can be: its values and one more record, escaped in the worst case, and its keys. */
function maxPageReplyBytes(ctx: PullContext): number {
  const escaped = 6;
  return (
    escaped * (ctx.pageBytes + LIMITS.maxKeyBytes + LIMITS.maxValueBytes) +
    ctx.pageSize * (escaped * LIMITS.maxKeyBytes + 512) +
    64 * 1024
  );
}

export interface PullResult {
  /** Records that replaced local ones. */
  readonly applied: number;
  /** How far the peer says it has taken this server's feed (this incarnation's); null if it did not say. */
  readonly heldThrough: number | null;
}

/** Pulls everything new from one peer. */
export async function pullFromPeer(ctx: PullContext, share: PeerShare): Promise<PullResult> {
  const cursor = ctx.store.cursor(share.peer);
  let since = cursor?.lsn ?? 0;
  let incarnation = cursor?.incarnation;
  let applied = 0;
  for (;;) {
    const query = new URLSearchParams({
      since: String(since),
      partitions: share.partitions.join(","),
      limit: String(ctx.pageSize),
    });
    const reply = await ctx.dialer.exchange(share.peer, `${PATHS.changes}?${query}`, {
      method: "GET",
      headers: { authorization: `Bearer ${ctx.token}`, [EXPECT_HEADER]: formatIdentity(ctx.expected) },
      timeoutMs: ctx.timeoutMs,
      maxReplyBytes: maxPageReplyBytes(ctx),
    });
    const mismatch = identityMismatch(ctx.expected, parseIdentity(reply.header(IDENTITY_HEADER)));
    if (mismatch !== null)
      throw new Error(`peer ${share.peer} is not a server of this service (${mismatch})`);
    if (reply.status !== 200) {
      const said = reply.text === null ? "(a long answer)" : reply.text.slice(0, 4096);
      throw new Error(`peer ${share.peer} answered ${reply.status}: ${said}`);
    }
    const text = reply.text;
    if (text === null) throw new Error(`peer ${share.peer} sent a page longer than any valid one`);
    const page = changesResponseSchema.parse(JSON.parse(text));
    if (incarnation !== undefined && page.incarnation !== incarnation && since !== 0) {
      // The peer's database was replaced: its positions mean nothing now, start over.
      since = 0;
      incarnation = page.incarnation;
      continue;
    }
    const mine = page.positions?.find((p) => p.peer === ctx.self && p.incarnation === ctx.store.incarnation);
    const heldThrough = mine?.lsn ?? null;
    const peerEpoch = { epoch: page.epoch, holder: page.holder };
    const nothingNew =
      page.records.length === 0 &&
      page.next === since &&
      page.incarnation === incarnation &&
      peerEpoch.epoch <= ctx.store.epoch.epoch;
    if (!nothingNew) {
      const result = await ctx.submit({
        kind: "sync",
        peer: share.peer,
        incarnation: page.incarnation,
        nextLsn: page.next,
        peerEpoch,
        records: page.records,
      });
      if (result.kind === "ok") applied += result.applied.filter(Boolean).length;
    }
    if (!page.more) return { applied, heldThrough };
    // A peer that says "more" without moving on would keep this loop (and its server) busy forever.
    if (page.next <= since)
      throw new Error(`peer ${share.peer} says more but its position stays at ${since}`);
    since = page.next;
    incarnation = page.incarnation;
  }
}
