// Parsing an object read from the API server into its typed form, with messages that name fields.
import type { z } from "zod";
import type { TransitionViolation } from "./rules.ts";

/** One failed check, with the field it concerns in the API server's notation ("spec.zones[0].name"). */
interface FieldIssue {
  path: string;
  message: string;
}

export type ParseResult<T> =
  | { ok: true; value: T }
  | {
      ok: false;
      /** All issues on one line, each prefixed by its field path; fit for a condition message or an Event. */
      message: string;
      issues: FieldIssue[];
    };

/** ["spec", "zones", 0, "name"] -> "spec.zones[0].name" */
export function formatFieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else out += out === "" ? String(segment) : `.${String(segment)}`;
  }
  return out;
}

function formatIssues(issues: readonly FieldIssue[]): string {
  return issues
    .map((issue) => (issue.path === "" ? issue.message : `${issue.path}: ${issue.message}`))
    .join("; ");
}

function failure<T>(issues: FieldIssue[]): ParseResult<T> {
  return { ok: false, message: formatIssues(issues), issues };
}

export function parseWith<S extends z.ZodType>(schema: S, input: unknown): ParseResult<z.output<S>> {
  const result = schema.safeParse(input);
  if (result.success) return { ok: true, value: result.data };
  return failure(
    result.error.issues.map((issue) => ({ path: formatFieldPath(issue.path), message: issue.message })),
  );
}

export function transitionResult<T>(value: T, violations: TransitionViolation[]): ParseResult<T> {
  if (violations.length === 0) return { ok: true, value };
  return failure(violations.map((v) => ({ path: formatFieldPath(v.path), message: v.message })));
}
