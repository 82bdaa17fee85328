// The sequential specification of one key of the store, for the linearizability checker:
// a register holding a value (or nothing) and a version that every write increments.
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

export interface RegisterState {
  readonly value: string | null;
  readonly version: number;
}

export type KvOperation = Operation<KvInput, KvOutput>;

/** The effect of `input` on `state`, as a correct store would apply it. */
export function applyKv(state: RegisterState, input: KvInput): { state: RegisterState; output: KvOutput } {
  switch (input.kind) {
    case "get":
      return {
        state,
        output: { kind: "get", value: state.value, version: state.value === null ? 0 : state.version },
      };
    case "put":
      return {
        state: { value: input.value, version: state.version + 1 },
        output: { kind: "write", version: state.version + 1 },
      };
    case "delete":
      return {
        state: { value: null, version: state.version + 1 },
        output: { kind: "write", version: state.version + 1 },
      };
    case "cas": {
      const matches =
        input.expectedVersion === 0
          ? state.value === null
          : state.value !== null && state.version === input.expectedVersion;
      if (!matches) {
        return {
          state,
          output: { kind: "cas", ok: false, version: state.value === null ? 0 : state.version },
        };
      }
      return {
        state: { value: input.value, version: state.version + 1 },
        output: { kind: "cas", ok: true, version: state.version + 1 },
      };
    }
  }
}

function sameOutput(a: KvOutput, b: KvOutput): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export const kvModel: Model<RegisterState, KvInput, KvOutput> = {
  partition(history) {
    const byKey = new Map<string, KvOperation[]>();
    for (const op of history) {
      const list = byKey.get(op.input.key);
      if (list === undefined) byKey.set(op.input.key, [op]);
      else list.push(op);
    }
    return [...byKey.values()];
  },
  init: () => ({ value: null, version: 0 }),
  step(state, input, output) {
    const applied = applyKv(state, input);
    // Unknown outcome: it took effect here (the search also tries later points, or the very end).
    if (output === undefined) return { ok: true, next: applied.state };
    return { ok: sameOutput(applied.output, output), next: applied.state };
  },
  stateKey: (s) => `${s.version}:${s.value === null ? "-" : "=" + s.value}`,
  describe(op) {
    const out = op.output === undefined ? "?" : JSON.stringify(op.output);
    const ret = op.ret === Infinity ? "∞" : op.ret.toFixed(3);
    return `[${op.call.toFixed(3)}, ${ret}] client ${op.clientId ?? "-"} ${JSON.stringify(op.input)} -> ${out}`;
  },
};
