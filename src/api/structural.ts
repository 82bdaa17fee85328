// Turns the JSON Schema zod produces (OpenAPI 3.0 flavour) into a Kubernetes structural
// schema: every node typed, no $ref, no keys the API server rejects, unions reduced to the
// two forms Kubernetes accepts (an enum of one type, and int-or-string).

export type JsonSchema = { [key: string]: unknown };

/** Keys of apiextensions.k8s.io/v1 JSONSchemaProps that a structural schema may carry. */
const ALLOWED_KEYS = new Set([
  "description",
  "type",
  "format",
  "title",
  "default",
  "maximum",
  "exclusiveMaximum",
  "minimum",
  "exclusiveMinimum",
  "maxLength",
  "minLength",
  "pattern",
  "maxItems",
  "minItems",
  "multipleOf",
  "enum",
  "maxProperties",
  "minProperties",
  "required",
  "items",
  "allOf",
  "oneOf",
  "anyOf",
  "not",
  "properties",
  "additionalProperties",
  "nullable",
  "example",
  "externalDocs",
  "x-kubernetes-preserve-unknown-fields",
  "x-kubernetes-embedded-resource",
  "x-kubernetes-int-or-string",
  "x-kubernetes-list-map-keys",
  "x-kubernetes-list-type",
  "x-kubernetes-map-type",
  "x-kubernetes-validations",
]);

/** Keys that carry no validation Kubernetes can use, dropped silently. */
const DROPPED_KEYS = new Set([
  "$schema",
  "$id",
  "id",
  "$defs",
  "definitions",
  "readOnly",
  "writeOnly",
  "examples",
  "propertyNames",
]);

const SAFE_INTEGER_BOUNDS = new Set([Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]);

function isObject(value: unknown): value is JsonSchema {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function resolveRef(ref: string, root: JsonSchema): JsonSchema {
  const match = /^#\/(\$defs|definitions)\/(.+)$/.exec(ref);
  const defs = match ? root[match[1]!] : undefined;
  const target = isObject(defs) ? defs[decodeURIComponent(match![2]!)] : undefined;
  if (!isObject(target)) throw new Error(`cannot inline $ref ${ref}`);
  return target;
}

/** The canonical int-or-string form; value validations of the string branch (pattern) move up. */
function intOrString(node: JsonSchema, path: string): JsonSchema {
  const branches = (node.anyOf ?? node.oneOf) as JsonSchema[] | undefined;
  const out: JsonSchema = { ...node };
  delete out.anyOf;
  delete out.oneOf;
  delete out.type;
  if (branches) {
    const types = branches.map((b) => b.type).sort();
    if (types.join() !== "integer,string")
      throw new Error(`${path}: int-or-string must be a union of an integer and a string`);
    const stringBranch = branches.find((b) => b.type === "string")!;
    if (typeof stringBranch.pattern === "string") out.pattern = stringBranch.pattern;
  }
  out.anyOf = [{ type: "integer" }, { type: "string" }];
  return out;
}

/** A union of enums (or consts) of one type, as zod emits for unions of literals, becomes one enum. */
function mergeEnumUnion(node: JsonSchema, branches: JsonSchema[], path: string): JsonSchema {
  const types = new Set(branches.map((b) => b.type));
  const allEnums = branches.every((b) => Array.isArray(b.enum) || "const" in b);
  if (types.size !== 1 || !allEnums) {
    throw new Error(`${path}: unions other than enums of one type and int-or-string have no structural form`);
  }
  const out: JsonSchema = { ...node };
  delete out.anyOf;
  delete out.oneOf;
  out.type = [...types][0];
  out.enum = branches.flatMap((b) => (Array.isArray(b.enum) ? b.enum : [b.const]));
  return out;
}

function normalize(input: JsonSchema, root: JsonSchema, path: string): JsonSchema {
  let node: JsonSchema = input;
  while (typeof node.$ref === "string") {
    const { $ref, ...rest } = node;
    node = { ...resolveRef($ref as string, root), ...rest };
  }
  if (node["x-kubernetes-int-or-string"] === true) node = intOrString(node, path);
  else if (Array.isArray(node.anyOf) || Array.isArray(node.oneOf)) {
    node = mergeEnumUnion(node, (node.anyOf ?? node.oneOf) as JsonSchema[], path);
  }

  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node)) {
    if (DROPPED_KEYS.has(key)) continue;
    if (key === "const") {
      out.enum = [value];
      continue;
    }
    if (!ALLOWED_KEYS.has(key)) throw new Error(`${path}: key ${key} has no place in a Kubernetes schema`);
    out[key] = value;
  }

  // OpenAPI 3.0 (and Kubernetes) want exclusive bounds as a boolean beside minimum/maximum.
  for (const [exclusive, bound] of [
    ["exclusiveMinimum", "minimum"],
    ["exclusiveMaximum", "maximum"],
  ] as const) {
    if (typeof out[exclusive] === "number") {
      out[bound] = out[exclusive];
      out[exclusive] = true;
    }
  }
  // zod bounds every integer by the safe-integer range; that is noise in `kubectl explain`.
  for (const bound of ["minimum", "maximum"] as const) {
    if (typeof out[bound] === "number" && SAFE_INTEGER_BOUNDS.has(out[bound])) delete out[bound];
  }

  if (isObject(out.properties)) {
    const properties: JsonSchema = {};
    for (const [name, child] of Object.entries(out.properties)) {
      properties[name] = normalize(child as JsonSchema, root, `${path}.${name}`);
    }
    out.properties = properties;
  }
  if (isObject(out.items)) out.items = normalize(out.items, root, `${path}[]`);

  // Structural schemas forbid additionalProperties beside properties. Unknown fields are
  // pruned by the server unless preserved, so "false" adds nothing and "{}" means "preserve".
  const additional = out.additionalProperties;
  if (additional === false) delete out.additionalProperties;
  else if (additional === true || (isObject(additional) && Object.keys(additional).length === 0)) {
    delete out.additionalProperties;
    out["x-kubernetes-preserve-unknown-fields"] = true;
  } else if (isObject(additional)) {
    if (out.properties !== undefined) throw new Error(`${path}: a map cannot also have properties`);
    out.additionalProperties = normalize(additional, root, `${path}{}`);
  }

  // A default of {} (zod's prefault) gets its fields' defaults spelled out: the API server
  // checks a default against the node's rules before nested defaulting would fill it in.
  if (isObject(out.default) && isObject(out.properties))
    out.default = expandDefault(out.default, out.properties);

  // The date-time format is checked by the server; zod's equivalent regex only adds noise.
  if (out.format === "date-time") delete out.pattern;

  if (
    out.type === undefined &&
    out["x-kubernetes-int-or-string"] !== true &&
    out["x-kubernetes-preserve-unknown-fields"] !== true
  ) {
    throw new Error(`${path}: every node of a structural schema needs a type`);
  }
  return withLeadingKeys(out, ["description", "type"]);
}

function expandDefault(value: JsonSchema, properties: JsonSchema): JsonSchema {
  const out: JsonSchema = { ...value };
  for (const [name, child] of Object.entries(properties)) {
    if (!isObject(child)) continue;
    if (out[name] === undefined && child.default !== undefined) out[name] = child.default;
    if (isObject(out[name]) && isObject(child.properties))
      out[name] = expandDefault(out[name], child.properties);
  }
  return out;
}

/** Puts the keys a reader looks for first at the top of the YAML. */
function withLeadingKeys(node: JsonSchema, leading: string[]): JsonSchema {
  const out: JsonSchema = {};
  for (const key of leading) if (key in node) out[key] = node[key];
  for (const [key, value] of Object.entries(node)) if (!(key in out)) out[key] = value;
  return out;
}

/** Returns a structural copy of a zod-generated JSON Schema; throws, naming the path, on what cannot be made structural. */
export function toStructuralSchema(schema: JsonSchema): JsonSchema {
  return normalize(schema, schema, "");
}
