// Pure helpers over metav1.Condition lists. The Condition type and setCondition live with the API
// schemas (src/api/conditions.ts); the runtime adds the questions reconcilers ask of them.
import { findCondition, setCondition, type Condition, type ConditionStatus } from "../api/conditions.ts";

export { findCondition, setCondition, type Condition, type ConditionStatus };

/** What a reconciler states; setCondition adds lastTransitionTime. */
export type ConditionInput = Omit<Condition, "lastTransitionTime">;

export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === "True";
}

/** The status of a condition, "Unknown" when it is absent. */
export function conditionStatus(conditions: readonly Condition[] | undefined, type: string): ConditionStatus {
  return findCondition(conditions, type)?.status ?? "Unknown";
}

export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((condition) => condition.type !== type);
}

/** Sets several conditions at once, each by the rules of setCondition. */
export function setConditions(
  conditions: readonly Condition[] | undefined,
  next: readonly ConditionInput[],
  now: Date,
): Condition[] {
  return next.reduce<Condition[]>(
    (acc, condition) => setCondition(acc, condition, now),
    [...(conditions ?? [])],
  );
}

/**
 * Whether two condition lists say the same thing, in any order. A reconciler writes status only
 * when it changed, so a steady state costs no API writes.
 */
export function conditionsEqual(
  a: readonly Condition[] | undefined,
  b: readonly Condition[] | undefined,
): boolean {
  const left = a ?? [];
  const right = b ?? [];
  if (left.length !== right.length) return false;
  return left.every((x) => {
    const y = findCondition(right, x.type);
    return (
      y !== undefined &&
      y.status === x.status &&
      y.reason === x.reason &&
      y.message === x.message &&
      y.observedGeneration === x.observedGeneration &&
      y.lastTransitionTime === x.lastTransitionTime
    );
  });
}
