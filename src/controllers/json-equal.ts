// Status is compared with what is stored before it is written, so a reconcile that finds nothing
// new writes nothing. The stored object's keys come in another order than the ones a reconcile
// builds (the API server and the schemas order them their own way), so JSON text cannot be
// compared: values are.
import { isDeepStrictEqual } from "node:util";

const asJson = (value: unknown): unknown => (value === undefined ? null : JSON.parse(JSON.stringify(value)));

/** Whether `a` and `b` are the same JSON value: key order aside, undefined members as if absent. */
export function sameJson(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(asJson(a), asJson(b));
}
