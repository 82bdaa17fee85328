// Pure decisions of the data plane: placement, quorums, epoch admission, configuration.
import fc from "fast-check";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadServers, loadToken } from "../../../src/dataplane/config.ts";
import { admit, mergePeerEpoch } from "../../../src/dataplane/epoch.ts";
import {
  parseServerList,
  partitionOfKey,
  partitionsOfServer,
  placePartitions,
  type ServerAddress,
} from "../../../src/dataplane/placement.ts";
import {
  minimumReadQuorum,
  writeOutcome,
  writeQuorum,
  type ReplicaReply,
} from "../../../src/dataplane/quorum.ts";
import {
  compareSequence,
  epochOfVersion,
  MAX_COUNTER,
  MAX_EPOCH,
  newestRecord,
  versionOf,
} from "../../../src/dataplane/record.ts";

const servers = (zones: number, perZone: number): ServerAddress[] =>
  Array.from({ length: zones * perZone }, (_, i) => ({ zone: `z${i % zones}`, address: `10.0.0.${i}:7400` }));

describe("placement", () => {
  it("puts every partition on R servers in distinct zones", () => {
    fc.assert(
      fc.property(fc.integer({ min: 3, max: 5 }), fc.integer({ min: 1, max: 4 }), (zones, perZone) => {
        const list = servers(zones, perZone);
        const placement = placePartitions(list, 64, 3);
        for (const replicas of placement) {
          expect(new Set(replicas).size).toBe(3);
          expect(new Set(replicas.map((a) => list.find((s) => s.address === a)!.zone)).size).toBe(3);
        }
      }),
    );
  });

  it("is computed from the server list alone, whatever its order", () => {
    const list = servers(3, 3);
    expect(placePartitions([...list].reverse(), 64, 3)).toEqual(placePartitions(list, 64, 3));
  });

  it("spreads partitions over servers", () => {
    const list = servers(3, 3);
    const placement = placePartitions(list, 64, 3);
    for (const s of list) expect(partitionsOfServer(placement, s.address).length).toBeGreaterThan(10);
  });

  it("moves few partitions when a server is added", () => {
    const before = placePartitions(servers(3, 3), 64, 3);
    const after = placePartitions([...servers(3, 3), { zone: "z0", address: "10.0.1.1:7400" }], 64, 3);
    const moved = before.filter((r, p) => r.some((a) => !after[p]!.includes(a))).length;
    expect(moved).toBeLessThan(32);
  });

  it("refuses a list with fewer servers than R or duplicate addresses", () => {
    expect(() => placePartitions(servers(2, 1), 64, 3)).toThrow(/at least that many servers/);
    expect(() => placePartitions([...servers(3, 1), servers(3, 1)[0]!], 64, 3)).toThrow(/duplicate/);
  });

  it("hashes keys to stable partitions", () => {
    expect(partitionOfKey("user/42", 64)).toBe(partitionOfKey("user/42", 64));
    const counts = new Array<number>(64).fill(0);
    for (let i = 0; i < 6400; i++) counts[partitionOfKey(`key-${i}`, 64)]!++;
    expect(Math.min(...counts)).toBeGreaterThan(50);
  });
});

describe("quorums", () => {
  it("W = floor(R/2) + 1 and the smallest read quorum meets it", () => {
    expect([1, 2, 3, 4, 5].map(writeQuorum)).toEqual([1, 2, 2, 3, 3]);
    for (const r of [1, 2, 3, 4, 5])
      expect(minimumReadQuorum(r, writeQuorum(r)) + writeQuorum(r)).toBe(r + 1);
  });

  it("a failed write is not applied only if no replica may hold it", () => {
    expect(writeOutcome(["ok", "ok", "not_sent"], 2)).toBe("acknowledged");
    expect(writeOutcome(["ok", "not_sent", "not_sent"], 2)).toBe("unknown");
    expect(writeOutcome(["fenced", "unknown", "fenced"], 2)).toBe("unknown");
    expect(writeOutcome(["fenced", "refused", "not_sent"], 2)).toBe("not_applied");
  });

  it("decides a write's outcome as soon as no pending replica can change it, and never before", () => {
    const kinds: ReplicaReply[] = ["ok", "fenced", "refused", "not_sent", "unknown"];
    const sequences = (length: number): ReplicaReply[][] =>
      length === 0 ? [[]] : sequences(length - 1).flatMap((s) => kinds.map((k) => [...s, k]));
    for (const r of [1, 2, 3, 4, 5]) {
      const w = writeQuorum(r);
      for (let answered = 0; answered <= r; answered++) {
        for (const replies of sequences(answered)) {
          const finals = new Set(
            sequences(r - answered).map((rest) => writeOutcome([...replies, ...rest], w, 0)),
          );
          const early = writeOutcome(replies, w, r - answered);
          // Decided early exactly when every way the pending replicas could answer agrees.
          if (finals.size === 1) expect(early, `${replies.join(",")} of ${r}`).toBe([...finals][0]);
          else expect(early, `${replies.join(",")} of ${r}`).toBeNull();
        }
      }
    }
    // One replica silent: two acks decide, and so do an ack and a failure that may hold the write.
    expect(writeOutcome(["ok", "ok"], 2, 1)).toBe("acknowledged");
    expect(writeOutcome(["ok", "unknown"], 2, 1)).toBeNull();
    expect(writeOutcome(["unknown", "refused"], 2, 1)).toBe("unknown");
    expect(writeOutcome(["refused", "not_sent"], 2, 1)).toBeNull();
  });

  it("orders sequences by epoch, then n", () => {
    expect(compareSequence({ epoch: 2, n: 1 }, { epoch: 1, n: 99 })).toBe(1);
    expect(compareSequence({ epoch: 2, n: 1 }, { epoch: 2, n: 2 })).toBe(-1);
    expect(newestRecord([null, { epoch: 1, n: 5 }, { epoch: 2, n: 1 }, null])).toEqual({ epoch: 2, n: 1 });
    expect(newestRecord([null, null])).toBe(null);
  });

  it("makes versions that order exactly as sequences do, exact up to the last epoch and counter", () => {
    const sequence = fc.record({
      epoch: fc.integer({ min: 0, max: MAX_EPOCH }),
      n: fc.integer({ min: 1, max: MAX_COUNTER }),
    });
    fc.assert(
      fc.property(sequence, sequence, (a, b) => {
        expect(Math.sign(versionOf(a) - versionOf(b))).toBe(compareSequence(a, b));
        expect(Number.isSafeInteger(versionOf(a))).toBe(true);
        expect(epochOfVersion(versionOf(a))).toBe(a.epoch);
      }),
      { numRuns: 2000 },
    );
    // A newer epoch's first write is above an older epoch's last.
    expect(versionOf({ epoch: 8, n: 1 })).toBeGreaterThan(versionOf({ epoch: 7, n: MAX_COUNTER }));
    expect(versionOf({ epoch: MAX_EPOCH, n: MAX_COUNTER })).toBe(Number.MAX_SAFE_INTEGER);
    for (const outside of [
      { epoch: 1, n: 0 },
      { epoch: 1, n: MAX_COUNTER + 1 },
      { epoch: MAX_EPOCH + 1, n: 1 },
    ])
      expect(() => versionOf(outside)).toThrow(RangeError);
  });
});

describe("epoch admission", () => {
  it("refuses older epochs, claims newer ones, and keeps an epoch to one head", () => {
    const state = { epoch: 5, holder: "h5" };
    expect(admit(state, 4, "h4").kind).toBe("refuse");
    expect(admit(state, 5, "h5")).toEqual({ kind: "admit" });
    expect(admit(state, 5, "other").kind).toBe("refuse");
    expect(admit(state, 6, "h6")).toEqual({ kind: "raise", next: { epoch: 6, holder: "h6" } });
    expect(admit({ epoch: 5, holder: "" }, 5, "h5")).toEqual({
      kind: "raise",
      next: { epoch: 5, holder: "h5" },
    });
  });

  it("learns epochs from peers only forward", () => {
    expect(mergePeerEpoch({ epoch: 5, holder: "a" }, { epoch: 4, holder: "b" })).toEqual({
      epoch: 5,
      holder: "a",
    });
    expect(mergePeerEpoch({ epoch: 5, holder: "a" }, { epoch: 6, holder: "b" })).toEqual({
      epoch: 6,
      holder: "b",
    });
    expect(mergePeerEpoch({ epoch: 5, holder: "" }, { epoch: 5, holder: "b" })).toEqual({
      epoch: 5,
      holder: "b",
    });
  });
});

describe("configuration", () => {
  it("reads the server list inline or from a JSON file", () => {
    expect(parseServerList("a=10.0.0.1:7400, b=10.0.0.2:7400")).toEqual([
      { zone: "a", address: "10.0.0.1:7400" },
      { zone: "b", address: "10.0.0.2:7400" },
    ]);
    expect(() => parseServerList("10.0.0.1:7400")).toThrow(/not zone=host:port/);
    const dir = mkdtempSync(join(tmpdir(), "understudy-config-"));
    const file = join(dir, "servers.json");
    writeFileSync(file, JSON.stringify([{ zone: "a", address: "s-0.svc:7400" }]));
    expect(loadServers(file)).toEqual([{ zone: "a", address: "s-0.svc:7400" }]);
    expect(() => loadServers(join(dir, "missing.json"))).toThrow(/neither zone=host:port/);
  });

  it("reads the token inline or from a file, and requires one", () => {
    const dir = mkdtempSync(join(tmpdir(), "understudy-config-"));
    writeFileSync(join(dir, "token"), "s3cret\n");
    expect(loadToken(undefined, join(dir, "token"))).toBe("s3cret");
    expect(loadToken("inline", undefined)).toBe("inline");
    expect(() => loadToken(undefined, undefined)).toThrow(/shared token is required/);
  });
});

describe("head resolver", () => {
  it("picks a ready endpoint of the head Service's slices", async () => {
    const { pickHeadUrl } = await import("../../../src/dataplane/head-resolver.ts");
    const slice = (ready: boolean, address: string) => ({
      addressType: "IPv4",
      ports: [{ name: "http", port: 7400 }],
      endpoints: [{ addresses: [address], conditions: { ready } }],
    });
    expect(pickHeadUrl([slice(false, "10.0.0.1"), slice(true, "10.0.0.2")])).toBe("http://10.0.0.2:7400");
    expect(pickHeadUrl([slice(false, "10.0.0.1")])).toBe(null);
    expect(pickHeadUrl([{ ...slice(true, "fd00::2"), addressType: "IPv6" }], "http")).toBe(
      "http://[fd00::2]:7400",
    );
    expect(pickHeadUrl([slice(true, "10.0.0.2")], "grpc")).toBe(null);
  });
});
