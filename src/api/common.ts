// Field schemas shared by the three resources: names, quantities, timestamps, metadata.
import { z } from "zod";
import { QUANTITY_PATTERN, isQuantity, quantityValue, type Quantity } from "./quantity.ts";
import { withRules } from "./rules.ts";

const DNS_LABEL_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
const DNS_LABEL_REGEX = new RegExp(DNS_LABEL_PATTERN);
export const DNS_LABEL_MESSAGE =
  "must be a DNS label: at most 63 characters, lowercase letters, digits and '-', starting and ending with a letter or digit";

export function isDnsLabel(value: string): boolean {
  return value.length <= 63 && DNS_LABEL_REGEX.test(value);
}

/**
 * A DNS label (RFC 1123): the form of zone names and of the names Understudy puts into
 * Lease, pod and StatefulSet names and label values. Checked by a CEL rule rather than
 * `pattern` so the API server's message says what is wrong.
 */
export function dnsLabel(description: string) {
  return withRules(z.string().min(1).max(63), [
    { cel: `self.matches('${DNS_LABEL_PATTERN}')`, message: DNS_LABEL_MESSAGE, holds: isDnsLabel },
  ]).describe(description);
}

const DNS_SUBDOMAIN_PATTERN = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$";
const DNS_SUBDOMAIN_REGEX = new RegExp(DNS_SUBDOMAIN_PATTERN);

/** A DNS subdomain (RFC 1123): the form of most object names (service accounts, priority classes). */
export function dnsSubdomain(description: string) {
  return withRules(z.string().min(1).max(253), [
    {
      cel: `self.matches('${DNS_SUBDOMAIN_PATTERN}')`,
      message:
        "must be a DNS subdomain: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
      holds: (value: string) => DNS_SUBDOMAIN_REGEX.test(value),
    },
  ]).describe(description);
}

const QUANTITY_MESSAGE = "must be a quantity such as 500m, 512Mi or 2";

/** A Kubernetes quantity given as a string ("500m", "512Mi") or a whole number. */
export function quantity(description: string) {
  return z
    .union([z.int().min(0), z.string().max(64).regex(new RegExp(QUANTITY_PATTERN), QUANTITY_MESSAGE)], {
      error: QUANTITY_MESSAGE,
    })
    .meta({ "x-kubernetes-int-or-string": true, description });
}

/** A quantity greater than zero. CEL's quantity library (kube-apiserver 1.29+) checks the sign. */
export function positiveQuantity(description: string) {
  return withRules(quantity(description), [
    {
      cel: "!isQuantity(string(self)) || quantity(string(self)).isGreaterThan(quantity('0'))",
      message: "must be greater than zero",
      holds: (value: Quantity) => !isQuantity(value) || quantityValue(value) > 0,
    },
  ]).describe(description);
}

/** An RFC 3339 time, as Kubernetes writes them ("2026-01-02T03:04:05Z"). */
export function timestamp(description: string) {
  return z.iso.datetime({ offset: true }).describe(description);
}

/** A string-to-string map (labels, annotations, node selectors). */
export function stringMap(description: string) {
  return z.record(z.string(), z.string()).describe(description);
}

/**
 * The part of ObjectMeta the operator reads. The CRD leaves `metadata` to the API server,
 * so this schema lives in zod only; unknown metadata fields are kept.
 */
export const ObjectMetaSchema = z
  .looseObject({
    name: z.string().optional().describe("Name of the object, unique within its namespace (or the cluster)."),
    generateName: z.string().optional().describe("Prefix from which the API server generates a name."),
    namespace: z.string().optional().describe("Namespace of the object; empty for cluster-scoped objects."),
    uid: z.string().optional().describe("Unique identifier the API server gives the object."),
    resourceVersion: z.string().optional().describe("Version of the object, for optimistic concurrency."),
    generation: z.int().optional().describe("Sequence number of the desired state (spec) of the object."),
    // A string in JSON; a Date once @kubernetes/client-node's typed serializer has read it.
    creationTimestamp: z.union([z.string(), z.date()]).optional().describe("When the object was created."),
    deletionTimestamp: z
      .union([z.string(), z.date()])
      .optional()
      .describe("When the object was asked to be deleted."),
    labels: stringMap("Labels of the object.").optional(),
    annotations: stringMap("Annotations of the object.").optional(),
    finalizers: z.array(z.string()).optional().describe("Finalizers that must be removed before deletion."),
    ownerReferences: z
      .array(z.looseObject({ apiVersion: z.string(), kind: z.string(), name: z.string(), uid: z.string() }))
      .optional()
      .describe("Objects this object depends on."),
  })
  .describe("Standard object metadata.");

/** Description of a status' `observedGeneration`. */
export function observedGeneration() {
  return z
    .int()
    .min(0)
    .optional()
    .describe("The metadata.generation of the spec this status was computed from.");
}

/**
 * Refuses duplicates in a list the CRD declares as x-kubernetes-list-type set or map, where
 * the API server refuses them itself ("Duplicate value"); the issue names the duplicate's index.
 */
export function uniqueItems<T>(key: (item: T) => string, what: string) {
  return (items: readonly T[], ctx: z.RefinementCtx) => {
    const seen = new Set<string>();
    items.forEach((item, index) => {
      const k = key(item);
      if (seen.has(k))
        ctx.addIssue({ code: "custom", message: `duplicate ${what} ${JSON.stringify(k)}`, path: [index] });
      seen.add(k);
    });
  };
}
