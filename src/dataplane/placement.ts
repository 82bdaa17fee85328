// Where each key lives: computed from the server list alone, so any head
// (a new one after failover included) routes exactly as the old one did.

export interface ServerAddress {
  readonly zone: string;
  /** host:port, as heads and peers reach the server. Also its identity in placement. */
  readonly address: string;
}

/** FNV-1a, 32 bits, over UTF-8 bytes: stable across processes and versions. */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, "utf8")) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function partitionOfKey(key: string, partitions: number): number {
  return fnv1a32(key) % partitions;
}

/**
 * Replicas of every partition by rendezvous hashing: servers ranked by
 * hash(partition, address); take the best-ranked server of each zone until R are
 * chosen. If there are fewer zones than R, the remaining replicas are the next
 * best-ranked servers (zones then repeat, which the caller may refuse).
 */
export function placePartitions(
  servers: readonly ServerAddress[],
  partitions: number,
  replicationFactor: number,
): string[][] {
  const unique = new Map(servers.map((s) => [s.address, s]));
  if (unique.size !== servers.length) throw new Error("server list has duplicate addresses");
  if (servers.length < replicationFactor) {
    throw new Error(
      `replication factor ${replicationFactor} needs at least that many servers, got ${servers.length}`,
    );
  }
  const placement: string[][] = [];
  for (let p = 0; p < partitions; p++) {
    const ranked = [...servers].sort((a, b) => {
      const d = fnv1a32(`${p}/${b.address}`) - fnv1a32(`${p}/${a.address}`);
      return d !== 0 ? d : a.address < b.address ? -1 : 1;
    });
    const chosen: ServerAddress[] = [];
    const zones = new Set<string>();
    for (const s of ranked) {
      if (chosen.length === replicationFactor) break;
      if (!zones.has(s.zone)) {
        chosen.push(s);
        zones.add(s.zone);
      }
    }
    for (const s of ranked) {
      if (chosen.length === replicationFactor) break;
      if (!chosen.includes(s)) chosen.push(s);
    }
    placement.push(chosen.map((s) => s.address));
  }
  return placement;
}

export function partitionsOfServer(placement: readonly string[][], address: string): number[] {
  const out: number[] = [];
  placement.forEach((replicas, p) => {
    if (replicas.includes(address)) out.push(p);
  });
  return out;
}

/** Parses `zone=host:port,zone=host:port`. */
export function parseServerList(text: string): ServerAddress[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map((entry) => {
      const eq = entry.indexOf("=");
      const zone = entry.slice(0, eq).trim();
      const address = entry.slice(eq + 1).trim();
      if (eq <= 0 || !/^[^\s:]+:\d+$/.test(address)) {
        throw new Error(`server entry "${entry}" is not zone=host:port`);
      }
      return { zone, address };
    });
}
