import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkOperations } from "../../../src/dataplane/linearizability.ts";
import {
  applyKv,
  kvModel,
  type KvInput,
  type KvOperation,
  type KvOutput,
  type RegisterState,
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

/** A history produced by applying ops one at a time, each at a point inside its [call, ret]. */
const sequentialHistory = fc
  .array(
    fc.record({
      kind: fc.constantFrom("get", "put", "delete", "cas"),
      key: fc.constantFrom("a", "b", "c"),
      expectedDelta: fc.integer({ min: -1, max: 1 }),
      before: fc.integer({ min: 0, max: 40 }),
      after: fc.integer({ min: 0, max: 40 }),
      unknown: fc.boolean(),
      client: fc.integer({ min: 0, max: 4 }),
    }),
    { minLength: 1, maxLength: 40 },
  )
  .map((steps) => {
    const states = new Map<string, RegisterState>();
    return steps.map((s, i): KvOperation => {
      const state = states.get(s.key) ?? { value: null, version: 0 };
      const value = `v${i}`;
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
                  expectedVersion: Math.max(0, state.version + s.expectedDelta),
                  value,
                };
      const applied = applyKv(state, input);
      states.set(s.key, applied.state);
      const point = i * 10;
      const unknown = s.unknown && s.kind !== "get";
      return {
        clientId: s.client,
        input,
        output: unknown ? undefined : (applied.output as KvOutput),
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
      { numRuns: 300 },
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
      { numRuns: 200 },
    );
  });
});
