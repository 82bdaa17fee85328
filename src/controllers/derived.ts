// Views derived from observed objects, computed once and reused while their inputs stay the same.
// The informers replace an object on every change, and an index's group with every change to it,
// so an object's (or a group's) identity stands for its version. A pure speed-up: callers get
// exactly what the derivation would return, and must not change it.

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

/**
 * `derive` memoized per first argument (by identity; forgotten with it) while the other arguments
 * keep their identity: the last value is kept per object, and derived again when an input changes.
 */
export function perObjectWith<T extends object, A extends unknown[], R>(
  derive: (object: T, ...inputs: A) => R,
): (object: T, ...inputs: A) => R {
  const memo = new WeakMap<T, { inputs: A; value: R }>();
  return (object, ...inputs) => {
    const hit = memo.get(object);
    if (hit && hit.inputs.length === inputs.length && hit.inputs.every((v, i) => v === inputs[i]))
      return hit.value;
    const value = derive(object, ...inputs);
    memo.set(object, { inputs, value });
    return value;
  };
}
