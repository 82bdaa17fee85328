// Cross-field rules written once and checked twice: by the API server as CEL
// (x-kubernetes-validations in the generated CRD) and by the operator in TypeScript (zod),
// so an object the server accepts is one the operator accepts, and the messages match.
import { isDeepStrictEqual } from "node:util";
import { z } from "zod";

/** A rule on one value (`self`), evaluated on create and update. */
export interface Rule<T> {
  /** CEL expression; `self` is the value of the schema the rule is attached to. */
  cel: string;
  /** Message shown by the API server and by the operator when the rule fails. */
  message: string;
  /** Field to blame, relative to `self`, in the API server's form (".hotSpares"); none blames `self`. */
  fieldPath?: string;
  /**
   * Leave fieldPath out of the CEL form: the API server accepts only paths into the CRD's
   * schema, and `metadata` is not in it. The operator still blames fieldPath.
   */
  celOmitsFieldPath?: boolean;
  /** The same rule over the parsed value (defaults applied, like the API server sees it). */
  holds: (self: T) => boolean;
}

/** A rule comparing a value with its previous version (`oldSelf`), evaluated on update only. */
export interface TransitionRule<T> {
  cel: string;
  message: string;
  fieldPath?: string;
  holds: (self: T, oldSelf: T) => boolean;
}

/** One entry of `x-kubernetes-validations`. */
interface CelValidation {
  rule: string;
  message: string;
  fieldPath?: string;
}

const VALIDATIONS_KEY = "x-kubernetes-validations";

function toCel(rule: Rule<never> | TransitionRule<never>): CelValidation {
  return rule.fieldPath === undefined || ("celOmitsFieldPath" in rule && rule.celOmitsFieldPath === true)
    ? { rule: rule.cel, message: rule.message }
    : { rule: rule.cel, message: rule.message, fieldPath: rule.fieldPath };
}

/** ".servers.storage.size" -> ["servers", "storage", "size"] */
function fieldPathSegments(fieldPath: string | undefined): string[] {
  if (fieldPath === undefined || fieldPath === "") return [];
  return fieldPath.replace(/^\./, "").split(".");
}

/**
 * Attaches rules to a schema: zod checks `holds` (issues carry the rule's field path), and the
 * CEL forms are added to the schema's metadata, from which the CRD generator copies them.
 * Transition rules only reach the CEL side here; the operator checks them with `transitionErrors`.
 */
export function withRules<S extends z.ZodType>(
  schema: S,
  rules: Rule<z.output<S>>[],
  transitions: TransitionRule<z.output<S>>[] = [],
): S {
  const existing = (z.globalRegistry.get(schema)?.[VALIDATIONS_KEY] as CelValidation[] | undefined) ?? [];
  const checked =
    rules.length === 0
      ? schema
      : schema.superRefine((value, ctx) => {
          for (const rule of rules) {
            if (!rule.holds(value)) {
              ctx.addIssue({
                code: "custom",
                message: rule.message,
                path: fieldPathSegments(rule.fieldPath),
              });
            }
          }
        });
  return checked.meta({
    [VALIDATIONS_KEY]: [...existing, ...rules.map(toCel), ...transitions.map(toCel)],
  });
}

/** A field that cannot change once the object exists. */
export function immutable<T>(
  field: keyof T & string,
  equal: (a: unknown, b: unknown) => boolean = isDeepStrictEqual,
): TransitionRule<T> {
  return {
    cel: `self.${field} == oldSelf.${field}`,
    message: `${field} is immutable`,
    fieldPath: `.${field}`,
    holds: (self, oldSelf) => equal(self[field], oldSelf[field]),
  };
}

/** An optional field that cannot be added, changed or removed once the object exists. */
export function immutableOptional<T>(field: keyof T & string): TransitionRule<T> {
  return {
    cel: `has(self.${field}) == has(oldSelf.${field}) && (!has(self.${field}) || self.${field} == oldSelf.${field})`,
    message: `${field} is immutable: it cannot be added, changed or removed after creation`,
    fieldPath: `.${field}`,
    holds: (self, oldSelf) => isDeepStrictEqual(self[field], oldSelf[field]),
  };
}

/** Equality of lists whose order carries no meaning (x-kubernetes-list-type: set). */
export function sameSet(a: unknown, b: unknown): boolean {
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return isDeepStrictEqual(a, b);
  const sortedA = [...a].map((x) => JSON.stringify(x)).sort();
  const sortedB = [...b].map((x) => JSON.stringify(x)).sort();
  return isDeepStrictEqual(sortedA, sortedB);
}

/** A failed transition rule, with the path of the field it blames. */
export interface TransitionViolation {
  path: string[];
  message: string;
}

/** The transition rules that fail between two versions of a value found at `basePath`. */
export function transitionErrors<T>(
  rules: TransitionRule<T>[],
  next: T,
  previous: T,
  basePath: string[] = [],
): TransitionViolation[] {
  return rules
    .filter((rule) => !rule.holds(next, previous))
    .map((rule) => ({ path: [...basePath, ...fieldPathSegments(rule.fieldPath)], message: rule.message }));
}
