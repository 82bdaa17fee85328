// Linearizability checking of recorded histories: Wing & Gong's search with Lowe's
// memoization of (linearized set, state), split per partition (P-compositionality),
// the way Porcupine does it. Written afresh in TypeScript.

/** One operation as a client saw it. `output` undefined + `ret` Infinity: outcome unknown. */
export interface Operation<I, O> {
  readonly clientId?: number;
  readonly input: I;
  readonly output: O | undefined;
  readonly call: number;
  readonly ret: number;
}

export interface Model<S, I, O> {
  /** Splits a history into independent parts (e.g. one per key); default: one part. */
  readonly partition?: (history: readonly Operation<I, O>[]) => Operation<I, O>[][];
  readonly init: () => S;
  /** Applies input at state; returns whether the output is possible there, and the next state. */
  readonly step: (state: S, input: I, output: O | undefined) => { ok: boolean; next: S };
  /** A string equal for equal states (memoization key). */
  readonly stateKey: (state: S) => string;
  readonly describe?: (op: Operation<I, O>) => string;
}

export type CheckResult =
  | { readonly result: "ok" }
  | { readonly result: "illegal"; readonly partition: number; readonly operations: readonly string[] }
  | { readonly result: "unknown"; readonly reason: string };

interface Node {
  readonly id: number;
  readonly opIndex: number;
  /** For a call: its return node. For a return: null. */
  readonly match: Node | null;
  prev: Node | null;
  next: Node | null;
}

interface Event {
  readonly time: number;
  readonly isCall: boolean;
  readonly opIndex: number;
}

/** Calls before returns at equal times: touching operations count as concurrent. */
function buildList(ops: readonly Operation<unknown, unknown>[]): Node {
  const events: Event[] = [];
  ops.forEach((op, i) => {
    if (!(op.ret >= op.call))
      throw new Error(`operation ${i} returns (${op.ret}) before its call (${op.call})`);
    events.push({ time: op.call, isCall: true, opIndex: i }, { time: op.ret, isCall: false, opIndex: i });
  });
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? 0 : a.isCall ? -1 : 1));
  const head: Node = { id: -1, opIndex: -1, match: null, prev: null, next: null };
  const returns = new Map<number, Node>();
  let tail = head;
  // Build back to front so each call can point at its return node.
  const nodes: Node[] = new Array(events.length);
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]!;
    const node: Node = {
      id: e.opIndex,
      opIndex: e.opIndex,
      match: e.isCall ? returns.get(e.opIndex)! : null,
      prev: null,
      next: null,
    };
    if (!e.isCall) returns.set(e.opIndex, node);
    nodes[i] = node;
  }
  for (const node of nodes) {
    tail.next = node;
    node.prev = tail;
    tail = node;
  }
  return head;
}

function lift(call: Node): void {
  call.prev!.next = call.next;
  call.next!.prev = call.prev;
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

function unlift(call: Node): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next !== null) ret.next.prev = ret;
  call.prev!.next = call;
  call.next!.prev = call;
}

class Bits {
  readonly words: Uint32Array;
  constructor(size: number) {
    this.words = new Uint32Array(Math.ceil(size / 32));
  }
  set(i: number): void {
    this.words[i >>> 5]! |= 1 << (i & 31);
  }
  clear(i: number): void {
    this.words[i >>> 5]! &= ~(1 << (i & 31));
  }
  keyWith(i: number): string {
    const w = i >>> 5;
    let s = "";
    for (let k = 0; k < this.words.length; k++) {
      const word = k === w ? (this.words[k]! | (1 << (i & 31))) >>> 0 : this.words[k]!;
      s += word.toString(36) + ",";
    }
    return s;
  }
}

type SingleResult = { ok: true } | { ok: false; longest: number[] } | { ok: "budget" };

function checkSingle<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  budget: { steps: number },
): SingleResult {
  const head = buildList(ops as readonly Operation<unknown, unknown>[]);
  const linearized = new Bits(ops.length);
  const seen = new Set<string>();
  const calls: { node: Node; state: S }[] = [];
  let longest: number[] = [];
  let state = model.init();
  let entry = head.next;
  while (head.next !== null) {
    if (--budget.steps < 0) return { ok: "budget" };
    if (entry === null) throw new Error("unreachable: ran off the list");
    if (entry.match !== null) {
      const op = ops[entry.opIndex]!;
      const { ok, next } = model.step(state, op.input, op.output);
      const memo = ok ? linearized.keyWith(entry.id) + "|" + model.stateKey(next) : "";
      if (ok && !seen.has(memo)) {
        seen.add(memo);
        calls.push({ node: entry, state });
        state = next;
        linearized.set(entry.id);
        lift(entry);
        entry = head.next;
      } else {
        entry = entry.next;
      }
    } else {
      // A return whose call is not linearized yet: undo the last choice.
      if (calls.length > longest.length) longest = calls.map((c) => c.node.opIndex);
      const top = calls.pop();
      if (top === undefined) return { ok: false, longest };
      state = top.state;
      linearized.clear(top.node.id);
      unlift(top.node);
      entry = top.node.next;
    }
  }
  return { ok: true };
}

export interface CheckOptions {
  /** Search steps across all partitions before giving up with "unknown". */
  readonly maxSteps?: number;
}

export function checkOperations<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  options: CheckOptions = {},
): CheckResult {
  const parts = model.partition?.(history) ?? [[...history]];
  const budget = { steps: options.maxSteps ?? 50_000_000 };
  for (let p = 0; p < parts.length; p++) {
    const ops = parts[p]!;
    const r = checkSingle(model, ops, budget);
    if (r.ok === "budget") return { result: "unknown", reason: "search budget exhausted" };
    if (!r.ok) {
      const describe = model.describe ?? ((op: Operation<I, O>) => JSON.stringify(op));
      const linearizedPrefix = r.longest.map((i) => `  ${describe(ops[i]!)}`);
      const all = [...ops].sort((a, b) => a.call - b.call).map((op) => `  ${describe(op)}`);
      return {
        result: "illegal",
        partition: p,
        operations: [
          "longest linearizable prefix:",
          ...linearizedPrefix,
          "operations of this partition:",
          ...all,
        ],
      };
    }
  }
  return { result: "ok" };
}
