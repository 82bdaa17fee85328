// The sequential specification of one key of the store, for the linearizability checker:
// a register holding a value (or nothing) and the version of the write that put it there.
// The store chooses each write's version (the head numbers it from its epoch and a counter,
// without reading the key), so the model asks what clients may rely on: every write's version
// is above the version it replaces, and a read or a compare-and-set sees exactly the version of
// the write it follows.
import type { Model, Operation } from "./linearizability.ts";

export type KvInput =
  | { readonly kind: "get"; readonly key: string }
  | { readonly kind: "put"; readonly key: string; readonly value: string }
  | { readonly kind: "delete"; readonly key: string }
  | { readonly kind: "cas"; readonly key: string; readonly expectedVersion: number; readonly value: string };

export type KvOutput =
  | { readonly kind: "get"; readonly value: string | null; readonly version: number }
  | { readonly kind: "write"; readonly version: number }
  | { readonly kind: "cas"; readonly ok: boolean; readonly version: number };

/**
 * One possible state of a key. After a write whose outcome is unknown took effect, its version
 * was never seen: `exact` is false and `version` is the least it can be, until a later
 * operation's output names it.
 */
export interface RegisterState {
  readonly value: string | null;
  readonly version: number;
  readonly exact: boolean;
}

/** The states the key may be in: more than one only after an unknown compare-and-set. */
export type RegisterStates = readonly RegisterState[];

export type KvOperation = Operation<KvInput, KvOutput>;

/** `state` with its version learned to be `version`; none if it cannot be. */
function pin(state: RegisterState, version: number): RegisterState[] {
  if (state.exact) return version === state.version ? [state] : [];
  return version >= state.version ? [{ ...state, version, exact: true }] : [];
}

/** A write of `value` over `state`: with its version when the client saw it, else only its bound. */
function written(state: RegisterState, value: string | null, version: number | undefined): RegisterState[] {
  if (version === undefined) return [{ value, version: state.version + 1, exact: false }];
  return version > state.version ? [{ value, version, exact: true }] : [];
}

/** The states `input` can lead to from `state` and give `output` (undefined: outcome unknown). */
function stepOne(state: RegisterState, input: KvInput, output: KvOutput | undefined): RegisterState[] {
  switch (input.kind) {
    case "get": {
      if (output === undefined) return [state];
      if (output.kind !== "get" || output.value !== state.value) return [];
      // An absent key reads as version 0, whatever its tombstone's version.
      if (state.value === null) return output.version === 0 ? [state] : [];
      return pin(state, output.version);
    }
    case "put":
    case "delete": {
      const value = input.kind === "put" ? input.value : null;
      if (output === undefined) return written(state, value, undefined);
      return output.kind === "write" ? written(state, value, output.version) : [];
    }
    case "cas": {
      const expected = input.expectedVersion;
      if (output !== undefined && output.kind !== "cas") return [];
      // Whether it matched: an absent key matches 0 only; a present one its own version.
      if (state.value === null) {
        const matches = expected === 0;
        if (output === undefined) return matches ? written(state, input.value, undefined) : [state];
        if (output.ok !== matches) return [];
        return matches ? written(state, input.value, output.version) : output.version === 0 ? [state] : [];
      }
      if (expected === 0) {
        if (output === undefined) return [state];
        return output.ok ? [] : pin(state, output.version);
      }
      const matched = pin(state, expected);
      if (output === undefined) {
        // It took effect or not: both are possible unless the version is known.
        const missed = state.exact && state.version === expected ? [] : [state];
        return [...matched.flatMap((s) => written(s, input.value, undefined)), ...missed];
      }
      if (output.ok) return matched.flatMap((s) => written(s, input.value, output.version));
      return output.version === expected ? [] : pin(state, output.version);
    }
  }
}

function stateKey(s: RegisterState): string {
  return `${s.exact ? "" : ">="}${s.version}:${s.value === null ? "-" : "=" + s.value}`;
}

export const kvModel: Model<RegisterStates, KvInput, KvOutput> = {
  partition(history) {
    const byKey = new Map<string, KvOperation[]>();
    for (const op of history) {
      const list = byKey.get(op.input.key);
      if (list === undefined) byKey.set(op.input.key, [op]);
      else list.push(op);
    }
    return [...byKey.values()];
  },
  init: () => [{ value: null, version: 0, exact: true }],
  step(states, input, output) {
    // Unknown outcome: it took effect here (the search also tries later points, or the very end).
    const next = new Map<string, RegisterState>();
    for (const state of states) for (const s of stepOne(state, input, output)) next.set(stateKey(s), s);
    return { ok: next.size > 0, next: [...next.values()] };
  },
  stateKey: (states) => states.map(stateKey).sort().join("|"),
  describe(op) {
    const out = op.output === undefined ? "?" : JSON.stringify(op.output);
    const ret = op.ret === Infinity ? "∞" : op.ret.toFixed(3);
    return `[${op.call.toFixed(3)}, ${ret}] client ${op.clientId ?? "-"} ${JSON.stringify(op.input)} -> ${out}`;
  },
};
