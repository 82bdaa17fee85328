// Standard Kubernetes conditions (the shape of metav1.Condition) and a pure helper to set one.
import { z } from "zod";
import { timestamp } from "./common.ts";

const CONDITION_STATUSES = ["True", "False", "Unknown"] as const;

/** Condition type the operator sets to False (reason InvalidSpec) when its own re-validation refuses a spec. */
export const CONDITION_VALID = "Valid";
export const REASON_INVALID_SPEC = "InvalidSpec";

// Patterns of metav1.Condition, so conditions written here read like every other controller's.
const CONDITION_TYPE_PATTERN =
  "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$";
const CONDITION_REASON_PATTERN = "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$";

export const ConditionSchema = z
  .object({
    type: z
      .string()
      .min(1)
      .max(316)
      .regex(new RegExp(CONDITION_TYPE_PATTERN))
      .describe("Type of the condition, in CamelCase (for example Ready)."),
    status: z.enum(CONDITION_STATUSES).describe("Status of the condition: True, False or Unknown."),
    observedGeneration: z
      .int()
      .min(0)
      .optional()
      .describe("The metadata.generation the condition was computed from."),
    lastTransitionTime: timestamp("When the condition last changed status."),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(new RegExp(CONDITION_REASON_PATTERN))
      .describe("Machine-readable reason for the condition's last transition, in CamelCase."),
    message: z.string().max(32768).describe("Human-readable details about the transition; may be empty."),
  })
  .describe("One aspect of the object's current state.");

export type Condition = z.output<typeof ConditionSchema>;
/** A condition as a controller decides it; the time of its transition and the generation are filled in when it is written. */
export type ConditionInput = Omit<Condition, "lastTransitionTime" | "observedGeneration">;

export function conditionList(description: string) {
  return z
    .array(ConditionSchema)
    .max(32)
    .optional()
    .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"], description });
}

function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((condition) => condition.type === type);
}

/**
 * Returns the conditions with `next` set: lastTransitionTime moves only when the status
 * changes, so "since when" stays true across reconciles that repeat the same verdict.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  next: Omit<Condition, "lastTransitionTime">,
  now: Date,
): Condition[] {
  const current = findCondition(conditions, next.type);
  const lastTransitionTime =
    current !== undefined && current.status === next.status ? current.lastTransitionTime : now.toISOString();
  const updated: Condition = { ...next, lastTransitionTime };
  const others = (conditions ?? []).filter((condition) => condition.type !== next.type);
  return current === undefined
    ? [...others, updated]
    : (conditions ?? []).map((condition) => (condition.type === next.type ? updated : condition));
}
