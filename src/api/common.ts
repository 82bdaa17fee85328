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

/** A label key: an optional DNS subdomain prefix and "/", then a name of at most 63 characters. */
const LABEL_KEY_PATTERN = "^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$";
const LABEL_KEY_REGEX = new RegExp(LABEL_KEY_PATTERN);
const LABEL_KEY_MESSAGE =
  "must be a label key: an optional DNS subdomain prefix and '/', then at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
/** A label value: empty, or at most 63 characters of the same form as a key's name. */
const LABEL_VALUE_PATTERN = "^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$";
const LABEL_VALUE_REGEX = new RegExp(LABEL_VALUE_PATTERN);
const LABEL_VALUE_MESSAGE =
  "must be a label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
const MAX_NODE_SELECTOR_LABELS = 64;

/**
 * A pod's nodeSelector: labels a node must carry. Keys and values are checked as the API server
 * checks a pod's, so a selector that no pod could carry is refused here rather than at every pod.
 */
export function nodeSelector(description: string) {
  return withRules(z.record(z.string().max(317), z.string().max(63)), [
    {
      cel: `size(self) <= ${MAX_NODE_SELECTOR_LABELS}`,
      message: `must have at most ${MAX_NODE_SELECTOR_LABELS} labels`,
      holds: (map) => Object.keys(map).length <= MAX_NODE_SELECTOR_LABELS,
    },
    {
      cel: `self.all(k, k.matches('${LABEL_KEY_PATTERN}'))`,
      message: `every key ${LABEL_KEY_MESSAGE}`,
      holds: (map) => Object.keys(map).every((key) => LABEL_KEY_REGEX.test(key)),
    },
    {
      cel: `self.all(k, self[k].matches('${LABEL_VALUE_PATTERN}'))`,
      message: `every value ${LABEL_VALUE_MESSAGE}`,
      holds: (map) => Object.values(map).every((value) => LABEL_VALUE_REGEX.test(value)),
    },
  ]).meta({ maxProperties: MAX_NODE_SELECTOR_LABELS, description });
}

const TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"] as const;
/** A toleration, with the checks the API server makes of a pod's (ValidateTolerations). */
export const TolerationSchema = withRules(
  z.object({
    key: withRules(z.string().max(317), [
      {
        cel: `self == '' || self.matches('${LABEL_KEY_PATTERN}')`,
        message: LABEL_KEY_MESSAGE,
        holds: (key: string) => key === "" || LABEL_KEY_REGEX.test(key),
      },
    ])
      .optional()
      .describe("Taint key the toleration applies to; empty matches all keys (with operator Exists)."),
    operator: z
      .enum(["Exists", "Equal"])
      .optional()
      .describe("Exists matches any value; Equal (the default) matches `value`."),
    value: withRules(z.string().max(63), [
      {
        cel: `self.matches('${LABEL_VALUE_PATTERN}')`,
        message: LABEL_VALUE_MESSAGE,
        holds: (v: string) => LABEL_VALUE_REGEX.test(v),
      },
    ])
      .optional()
      .describe("Taint value the toleration matches with operator Equal."),
    effect: z
      .enum(["", ...TAINT_EFFECTS])
      .optional()
      .describe(
        "Taint effect to match (NoSchedule, PreferNoSchedule or NoExecute); empty matches all effects.",
      ),
    tolerationSeconds: z
      .int()
      .optional()
      .describe(
        "For effect NoExecute: how long the pod stays bound after the taint appears; unset means forever.",
      ),
  }),
  [
    {
      cel: "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
      message: "operator must be Exists when key is empty (a toleration of every taint)",
      fieldPath: ".operator",
      holds: (t) => (t.key ?? "") !== "" || t.operator === "Exists",
    },
    {
      cel: "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
      message: "value must be empty when operator is Exists",
      fieldPath: ".value",
      holds: (t) => t.operator !== "Exists" || (t.value ?? "") === "",
    },
    {
      cel: "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
      message: "effect must be NoExecute when tolerationSeconds is set",
      fieldPath: ".effect",
      holds: (t) => t.tolerationSeconds === undefined || t.effect === "NoExecute",
    },
  ],
).describe("A toleration, as in a pod spec.");
export type Toleration = z.output<typeof TolerationSchema>;
