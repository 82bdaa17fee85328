import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkOperations } from "../../../src/dataplane/linearizability.ts";
import {
  kvModel,
  type KvInput,
  type KvOperation,
  type KvOutput,
} from "../../../src/dataplane/register-model.ts";

const put = (key: string, value: string, call: number, ret: number, version?: number): KvOperation => ({
  input: { kind: "put", key, value },
  output: version === undefined ? undefined : { kind: "write", version },
  call,
  ret,
});
const del = (key: string, call: number, ret: number, version: number): KvOperation => ({
  input: { kind: "delete", key },
  output: { kind: "write", version },
  call,
  ret,
});
const get = (key: string, value: string | null, version: number, call: number, ret: number): KvOperation => ({
  input: { kind: "get", key },
  output: { kind: "get", value, version },
  call,
  ret,
});
const cas = (
  key: string,
  expected: number,
  value: string,
  ok: boolean,
  version: number,
  call: number,
  ret: number,
): KvOperation => ({
  input: { kind: "cas", key, expectedVersion: expected, value },
  output: { kind: "cas", ok, version },
  call,
  ret,
});

const check = (history: KvOperation[]) => checkOperations(kvModel, history).result;

describe("linearizability checker on hand-made histories", () => {
  it("accepts a sequential history", () => {
    expect(
      check([put("k", "a", 0, 1, 1), get("k", "a", 1, 2, 3), del("k", 4, 5, 2), get("k", null, 0, 6, 7)]),
    ).toBe("ok");
  });

  it("rejects a stale read: an older value after a newer write completed", () => {
    expect(check([put("k", "a", 0, 1, 1), put("k", "b", 2, 3, 2), get("k", "a", 1, 4, 5)])).toBe("illegal");
  });

  it("rejects a lost write: an acknowledged put is not seen by a later read", () => {
    expect(check([put("k", "a", 0, 1, 1), get("k", null, 0, 2, 3)])).toBe("illegal");
  });

  it("accepts a read that overlaps a write seeing either value, but not going back", () => {
    const base = [put("k", "a", 0, 10, 1), get("k", null, 0, 1, 2), get("k", "a", 1, 3, 4)];
    expect(check(base)).toBe("ok");
    expect(check([...base, get("k", null, 0, 5, 6)])).toBe("illegal");
  });

  it("lets a write with unknown outcome take effect at any time after its call, or never", () => {
    const unknown = put("k", "a", 0, Infinity);
    expect(check([unknown, get("k", null, 0, 5, 6)])).toBe("ok");
    expect(check([unknown, get("k", "a", 1, 5, 6)])).toBe("ok");
    expect(check([unknown, get("k", null, 0, 5, 6), get("k", "a", 1, 7, 8)])).toBe("ok");
    expect(check([unknown, get("k", "a", 1, 5, 6), get("k", null, 0, 7, 8)])).toBe("illegal");
    // But never before its call.
    expect(check([get("k", "a", 1, 0, 1), put("k", "a", 2, Infinity)])).toBe("illegal");
  });

  it("rejects two compare-and-sets that both won the same version", () => {
    expect(check([cas("k", 0, "a", true, 1, 0, 5), cas("k", 0, "b", true, 1, 1, 6)])).toBe("illegal");
    expect(check([cas("k", 0, "a", true, 1, 0, 5), cas("k", 0, "b", false, 1, 1, 6)])).toBe("ok");
  });

  it("rejects a write numbered with a version already used (a lost update hidden by equal values)", () => {
    expect(check([put("k", "a", 0, 1, 1), put("k", "b", 2, 3, 1)])).toBe("illegal");
  });

  it("takes any rising versions, as a head numbers them (epoch high, counter low), but never one going back", () => {
    const e1 = 1 * 2 ** 33;
    const e2 = 2 * 2 ** 33;
    expect(
      check([put("k", "a", 0, 1, e1 + 5), put("k", "b", 2, 3, e2 + 1), get("k", "b", e2 + 1, 4, 5)]),
    ).toBe("ok");
    // A newer epoch's write numbered below the older epoch's: a stale version.
    expect(check([put("k", "a", 0, 1, e2 + 1), put("k", "b", 2, 3, e1 + 5)])).toBe("illegal");
    // A read must name the version of the write it returns.
    expect(check([put("k", "a", 0, 1, e1 + 5), get("k", "a", e1 + 6, 2, 3)])).toBe("illegal");
    // A delete's version rises too, and an absent key reads as version 0.
    expect(
      check([put("k", "a", 0, 1, 7), del("k", 2, 3, 9), get("k", null, 0, 4, 5), put("k", "b", 6, 7, 8)]),
    ).toBe("illegal");
  });

  it("learns an unknown write's version from whoever sees it, and holds everyone to it", () => {
    const unknown = put("k", "a", 0, Infinity);
    expect(check([put("k", "z", 0, 1, 3), unknown, get("k", "a", 10, 5, 6), get("k", "a", 10, 7, 8)])).toBe(
      "ok",
    );
    // Two reads of that write disagreeing on its version.
    expect(check([put("k", "z", 0, 1, 3), unknown, get("k", "a", 10, 5, 6), get("k", "a", 11, 7, 8)])).toBe(
      "illegal",
    );
    // Its version is above the write it replaced.
    expect(check([put("k", "z", 0, 1, 3), unknown, get("k", "a", 3, 5, 6)])).toBe("illegal");
    // A cas that names the version a read saw wins; one naming another version loses, told that one.
    expect(
      check([put("k", "z", 0, 1, 3), unknown, get("k", "a", 10, 5, 6), cas("k", 10, "b", true, 12, 7, 8)]),
    ).toBe("ok");
    expect(
      check([put("k", "z", 0, 1, 3), unknown, cas("k", 9, "b", false, 10, 5, 6), get("k", "a", 10, 7, 8)]),
    ).toBe("ok");
    expect(check([put("k", "z", 0, 1, 3), unknown, cas("k", 10, "b", false, 10, 5, 6)])).toBe("illegal");
  });

  it("lets a cas of unknown outcome take effect or not, until an output decides", () => {
    const unknownCas: KvOperation = {
      input: { kind: "cas", key: "k", expectedVersion: 10, value: "b" },
      output: undefined,
      call: 5,
      ret: Infinity,
    };
    const base = [put("k", "z", 0, 1, 3), put("k", "a", 2, Infinity), unknownCas];
    // The unknown put took version 10 and the cas won over it...
    expect(check([...base, get("k", "b", 12, 7, 8)])).toBe("ok");
    // ...or the cas missed.
    expect(check([...base, get("k", "a", 11, 7, 8)])).toBe("ok");
    // But the cas cannot have won over a version it did not name.
    expect(check([...base, get("k", "a", 11, 7, 8), get("k", "b", 12, 9, 10)])).toBe("illegal");
  });

  it("checks keys independently", () => {
    expect(
      check([put("x", "a", 0, 1, 1), put("y", "b", 0, 1, 1), get("x", "a", 1, 2, 3), get("y", "b", 1, 2, 3)]),
    ).toBe("ok");
    expect(check([put("x", "a", 0, 1, 1), put("y", "b", 0, 1, 1), get("x", "b", 1, 2, 3)])).toBe("illegal");
  });

  it("reports the operations of the failing key", () => {
    const r = checkOperations(kvModel, [put("k", "a", 0, 1, 1), get("k", null, 0, 2, 3)]);
    expect(r.result).toBe("illegal");
    if (r.result === "illegal") expect(r.operations.join("\n")).toContain('"kind":"put"');
  });
});

interface StoredKey {
  readonly value: string | null;
  readonly version: number;
}

/** A correct store: applies `input` and numbers a write `version` (above the key's, as a head does). */
function applySequential(
  state: StoredKey,
  input: KvInput,
  version: number,
): { state: StoredKey; output: KvOutput } {
  const shown = state.value === null ? 0 : state.version;
  switch (input.kind) {
    case "get":
      return { state, output: { kind: "get", value: state.value, version: shown } };
    case "put":
    case "delete":
      return {
        state: { value: input.kind === "put" ? input.value : null, version },
        output: { kind: "write", version },
      };
    case "cas": {
      const matches = input.expectedVersion === 0 ? state.value === null : shown === input.expectedVersion;
      return matches
        ? { state: { value: input.value, version }, output: { kind: "cas", ok: true, version } }
        : { state, output: { kind: "cas", ok: false, version: shown } };
    }
  }
}

/**
 * A history produced by applying ops one at a time, each at a point inside its [call, ret]. Writes
 * are numbered as a head numbers them: a counter shared by every key, so a key's versions rise with
 * gaps, and a new epoch (a jump) now and then.
 */
const sequentialHistory = fc
  .array(
    fc.record({
      kind: fc.constantFrom("get", "put", "delete", "cas"),
      key: fc.constantFrom("a", "b", "c"),
      expected: fc.constantFrom("current", "other", "zero"),
      newEpoch: fc.integer({ min: 0, max: 9 }),
      before: fc.integer({ min: 0, max: 40 }),
      after: fc.integer({ min: 0, max: 40 }),
      unknown: fc.boolean(),
      client: fc.integer({ min: 0, max: 4 }),
    }),
    { minLength: 1, maxLength: 40 },
  )
  .map((steps) => {
    const states = new Map<string, StoredKey>();
    let epoch = 1;
    let n = 0;
    return steps.map((s, i): KvOperation => {
      const state = states.get(s.key) ?? { value: null, version: 0 };
      const value = `v${i}`;
      if (s.newEpoch === 0) [epoch, n] = [epoch + 1, 0];
      const version = epoch * 2 ** 33 + ++n;
      const input: KvInput =
        s.kind === "get"
          ? { kind: "get", key: s.key }
          : s.kind === "put"
            ? { kind: "put", key: s.key, value }
            : s.kind === "delete"
              ? { kind: "delete", key: s.key }
              : {
                  kind: "cas",
                  key: s.key,
                  expectedVersion:
                    s.expected === "current" ? state.version : s.expected === "zero" ? 0 : state.version + 1,
                  value,
                };
      const applied = applySequential(state, input, version);
      states.set(s.key, applied.state);
      const point = i * 10;
      const unknown = s.unknown && s.kind !== "get";
      return {
        clientId: s.client,
        input,
        output: unknown ? undefined : applied.output,
        call: point - s.before,
        ret: unknown ? Infinity : point + s.after,
      };
    });
  });

describe("linearizability checker on generated histories", () => {
  it("accepts every history produced by the sequential model", () => {
    fc.assert(
      fc.property(sequentialHistory, (history) => {
        expect(check(history)).toBe("ok");
      }),
      { numRuns: 600 },
    );
  });

  it("rejects a history once a completed read returns a value nobody wrote", () => {
    fc.assert(
      fc.property(sequentialHistory, fc.nat(), (history, pick) => {
        const reads = history.map((op, i) => ({ op, i })).filter(({ op }) => op.input.kind === "get");
        fc.pre(reads.length > 0);
        const { i } = reads[pick % reads.length]!;
        const forged = [...history];
        forged[i] = { ...forged[i]!, output: { kind: "get", value: "never-written", version: 1 } };
        expect(check(forged)).toBe("illegal");
      }),
      { numRuns: 400 },
    );
  });
});
