// A server's durable storage: node:sqlite in WAL mode with synchronous=FULL, so a
// committed transaction survives power loss. All writes go through `commit`, one
// transaction per group-commit batch.
import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { admit, mergePeerEpoch, type EpochState } from "./epoch.ts";
import type { KvRecord } from "./record.ts";

export const DB_FILE = "understudy.db";

export type StoreOp =
  /** A head's write: admitted only at the server's epoch (or a newer one, which is then persisted). */
  | {
      readonly kind: "apply";
      readonly epoch: number;
      readonly head: string;
      readonly records: readonly KvRecord[];
    }
  /** A head claiming its epoch (fencing), or a read that carries a newer epoch. */
  | { readonly kind: "fence"; readonly epoch: number; readonly head: string }
  /** Records pulled from a peer by anti-entropy, with the peer's change-feed position. */
  | {
      readonly kind: "sync";
      readonly peer: string;
      readonly incarnation: string;
      readonly nextLsn: number;
      readonly peerEpoch: EpochState;
      readonly records: readonly KvRecord[];
    }
  /**
   * Tombstones every replica holds: per partition, those at or below the position every peer
   * replica has taken from this server's feed. Only tombstones of an epoch below this server's
   * current one go (no head that could still send an older write of their key is admitted).
   */
  | { readonly kind: "collect"; readonly heldEverywhere: ReadonlyMap<number, number> };

export type StoreResult =
  /**
   * applied[i]: record i replaced what was stored (false: the server already held it or a newer
   * one); collected: tombstones a collect removed.
   */
  | {
      readonly kind: "ok";
      readonly applied: readonly boolean[];
      readonly epoch: EpochState;
      readonly collected?: number;
    }
  | { readonly kind: "refused"; readonly reason: string; readonly epoch: EpochState };

export interface ChangePage {
  readonly records: (KvRecord & { readonly lsn: number })[];
  readonly next: number;
  readonly more: boolean;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS records (
  key TEXT PRIMARY KEY,
  part INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  n INTEGER NOT NULL,
  version INTEGER NOT NULL,
  value TEXT,
  lsn INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_lsn ON records(lsn);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS peer_cursors (peer TEXT PRIMARY KEY, incarnation TEXT NOT NULL, lsn INTEGER NOT NULL);
`;

interface Row {
  key: string;
  part: number;
  epoch: number;
  n: number;
  version: number;
  value: string | null;
  lsn: number;
}

function toRecord(row: Row): KvRecord {
  return {
    key: row.key,
    partition: row.part,
    epoch: row.epoch,
    n: row.n,
    version: row.version,
    value: row.value,
  };
}

export class ServerStore {
  readonly #db: DatabaseSync;
  readonly #upsert: StatementSync;
  readonly #get: StatementSync;
  readonly #setMeta: StatementSync;
  readonly #changes: StatementSync;
  readonly #setCursor: StatementSync;
  readonly #getCursor: StatementSync;
  readonly #cursors: StatementSync;
  readonly #collect: StatementSync;
  #epoch: EpochState;
  #lsn: number;
  readonly incarnation: string;

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true });
    this.#db = new DatabaseSync(join(dataDir, DB_FILE));
    this.#db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;");
    this.#db.exec(SCHEMA);
    this.#upsert = this.#db.prepare(`
      INSERT INTO records(key, part, epoch, n, version, value, lsn) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(key) DO UPDATE SET part = excluded.part, epoch = excluded.epoch, n = excluded.n,
        version = excluded.version, value = excluded.value, lsn = excluded.lsn
      WHERE excluded.epoch > records.epoch OR (excluded.epoch = records.epoch AND excluded.n > records.n)`);
    this.#get = this.#db.prepare(
      "SELECT key, part, epoch, n, version, value, lsn FROM records WHERE key = ?",
    );
    this.#setMeta = this.#db.prepare(
      "INSERT INTO meta(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
    );
    this.#changes = this.#db.prepare(`
      SELECT key, part, epoch, n, version, value, lsn FROM records
      WHERE lsn > ? AND part IN (SELECT value FROM json_each(?)) ORDER BY lsn LIMIT ?`);
    this.#setCursor = this.#db.prepare(
      "INSERT INTO peer_cursors(peer, incarnation, lsn) VALUES (?, ?, ?) ON CONFLICT(peer) DO UPDATE SET incarnation = excluded.incarnation, lsn = excluded.lsn",
    );
    this.#getCursor = this.#db.prepare("SELECT incarnation, lsn FROM peer_cursors WHERE peer = ?");
    this.#cursors = this.#db.prepare("SELECT peer, incarnation, lsn FROM peer_cursors ORDER BY peer");
    this.#collect = this.#db.prepare(
      "DELETE FROM records WHERE part = ? AND value IS NULL AND lsn <= ? AND epoch < ?",
    );

    const meta = new Map(
      (this.#db.prepare("SELECT name, value FROM meta").all() as { name: string; value: string }[]).map(
        (r) => [r.name, r.value],
      ),
    );
    this.#epoch = { epoch: Number(meta.get("epoch") ?? 0), holder: meta.get("holder") ?? "" };
    let incarnation = meta.get("incarnation");
    if (incarnation === undefined) {
      // Identifies this database's change feed: peers reset their cursor if it changes (volume replaced).
      incarnation = randomUUID();
      this.#setMeta.run("incarnation", incarnation);
    }
    this.incarnation = incarnation;
    const max = this.#db.prepare("SELECT COALESCE(MAX(lsn), 0) AS lsn FROM records").get() as { lsn: number };
    this.#lsn = Math.max(max.lsn, Number(meta.get("lsn") ?? 0));
  }

  /** The committed epoch (never one still waiting in a batch). */
  get epoch(): EpochState {
    return this.#epoch;
  }

  get(key: string): KvRecord | null {
    const row = this.#get.get(key) as Row | undefined;
    return row === undefined ? null : toRecord(row);
  }

  /** Raises the stored epoch to at least `epoch` (the operator's floor from configuration). */
  raiseFloor(epoch: number): void {
    if (epoch > this.#epoch.epoch) this.commit([{ kind: "fence", epoch, head: "" }]);
  }

  /**
   * Runs ops in one transaction, in order. Each op's epoch is checked against the epoch
   * as raised by the ops before it in the same batch, so a fence queued before an old
   * head's write refuses that write.
   */
  commit(ops: readonly StoreOp[]): StoreResult[] {
    let epoch = this.#epoch;
    let lsn = this.#lsn;
    const results: StoreResult[] = [];
    const put = (r: KvRecord): boolean => {
      const changed =
        this.#upsert.run(r.key, r.partition, r.epoch, r.n, r.version, r.value, lsn + 1).changes > 0;
      if (changed) lsn++;
      return changed;
    };
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      for (const op of ops) {
        if (op.kind === "collect") {
          let removed = 0;
          for (const [partition, upTo] of op.heldEverywhere)
            removed += Number(this.#collect.run(partition, upTo, epoch.epoch).changes);
          // The collected rows may be the newest: keep their positions, or a restart would hand them
          // out again below cursors peers already hold, and those peers would never pull the writes.
          if (removed > 0) this.#setMeta.run("lsn", String(lsn));
          results.push({ kind: "ok", applied: [], epoch, collected: removed });
          continue;
        }
        if (op.kind === "sync") {
          epoch = mergePeerEpoch(epoch, op.peerEpoch);
          const applied = op.records.map(put);
          this.#setCursor.run(op.peer, op.incarnation, op.nextLsn);
          results.push({ kind: "ok", applied, epoch });
          continue;
        }
        const decision = admit(epoch, op.epoch, op.head);
        if (decision.kind === "refuse") {
          results.push({ kind: "refused", reason: decision.reason, epoch });
          continue;
        }
        if (decision.kind === "raise") epoch = decision.next;
        const applied = op.kind === "apply" ? op.records.map(put) : [];
        results.push({ kind: "ok", applied, epoch });
      }
      if (epoch !== this.#epoch) {
        this.#setMeta.run("epoch", String(epoch.epoch));
        this.#setMeta.run("holder", epoch.holder);
      }
      this.#db.exec("COMMIT");
    } catch (err) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      throw err;
    }
    this.#epoch = epoch;
    this.#lsn = lsn;
    return results;
  }

  /** This server's change feed: records of the given partitions changed after `since`, oldest first. */
  changesSince(since: number, partitions: readonly number[], limit: number, maxBytes: number): ChangePage {
    const rows = this.#changes.all(since, JSON.stringify(partitions), limit + 1) as unknown as Row[];
    const records: (KvRecord & { lsn: number })[] = [];
    let bytes = 0;
    for (const row of rows.slice(0, limit)) {
      if (records.length > 0 && bytes + (row.value?.length ?? 0) > maxBytes) break;
      bytes += (row.value?.length ?? 0) + row.key.length;
      records.push({ ...toRecord(row), lsn: row.lsn });
    }
    const more = records.length < rows.length;
    return { records, next: records.length > 0 ? records[records.length - 1]!.lsn : since, more };
  }

  cursor(peer: string): { incarnation: string; lsn: number } | null {
    const row = this.#getCursor.get(peer) as { incarnation: string; lsn: number } | undefined;
    return row === undefined ? null : { incarnation: row.incarnation, lsn: row.lsn };
  }

  /** How far this server has taken each peer's feed. */
  cursors(): { peer: string; incarnation: string; lsn: number }[] {
    return this.#cursors.all() as { peer: string; incarnation: string; lsn: number }[];
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}

/** Reads every record of a server's data directory without the server (read-only; safe while it runs). */
export function readRecordsOnDisk(dataDir: string): Map<string, KvRecord> {
  const db = new DatabaseSync(join(dataDir, DB_FILE), { readOnly: true });
  try {
    const rows = db
      .prepare("SELECT key, part, epoch, n, version, value, lsn FROM records")
      .all() as unknown as Row[];
    return new Map(rows.map((r) => [r.key, toRecord(r)]));
  } finally {
    db.close();
  }
}
