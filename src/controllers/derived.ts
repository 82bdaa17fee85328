// Views derived from observed objects, computed once and reused while their inputs stay the same.
// The informers replace an object on every change and bump their cache's revision, so an object's
// identity stands for its version and a cache's revision for its contents. A pure speed-up: callers
// get exactly what the derivation would return, and must not change it.
import type { Cache } from "./context.ts";

/** `derive` memoized per input object (by identity; forgotten with the object). */
export function perObject<T extends object, R>(derive: (object: T) => R): (object: T) => R {
  const memo = new WeakMap<T, R>();
  return (object) => {
    if (memo.has(object)) return memo.get(object)!;
    const value = derive(object);
    memo.set(object, value);
    return value;
  };
}

type Revisioned = Pick<Cache<unknown>, "revision">;

/**
 * `derive` memoized per key while every cache in `caches` keeps its revision and `inputs` keep their
 * identity. Caches without a revision (hand-made ones in tests) are derived from every time.
 */
export function perRevision<A extends unknown[], R>(
  caches: (...args: A) => readonly Revisioned[],
  inputs: (...args: A) => readonly unknown[],
  key: (...args: A) => string,
  derive: (...args: A) => R,
): (...args: A) => R {
  const memo = new WeakMap<Revisioned, Map<string, { stamp: readonly unknown[]; value: R }>>();
  return (...args) => {
    const sources = caches(...args);
    if (sources.length === 0 || sources.some((c) => c.revision === undefined)) return derive(...args);
    const stamp = [...sources, ...sources.map((c) => c.revision), ...inputs(...args)];
    let entries = memo.get(sources[0]!);
    if (!entries) memo.set(sources[0]!, (entries = new Map()));
    const k = key(...args);
    const hit = entries.get(k);
    if (hit && hit.stamp.length === stamp.length && hit.stamp.every((v, i) => v === stamp[i]))
      return hit.value;
    const value = derive(...args);
    entries.set(k, { stamp, value });
    return value;
  };
}
