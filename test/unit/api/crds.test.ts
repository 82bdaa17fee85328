import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { generatedFiles } from "../../../scripts/generate-crds.ts";
import { RESOURCE_DEFINITIONS, buildCrds, openApiSchema } from "../../../src/api/crd.ts";
import { toStructuralSchema, type JsonSchema } from "../../../src/api/structural.ts";

const ROOT = join(import.meta.dirname, "../../..");

/** Every schema node with its path, walking properties, items and map values. */
function nodes(schema: JsonSchema, path = ""): [string, JsonSchema][] {
  const out: [string, JsonSchema][] = [[path, schema]];
  for (const [name, child] of Object.entries((schema.properties as Record<string, JsonSchema>) ?? {})) {
    out.push(...nodes(child, `${path}.${name}`));
  }
  if (schema.items) out.push(...nodes(schema.items as JsonSchema, `${path}[]`));
  if (typeof schema.additionalProperties === "object")
    out.push(...nodes(schema.additionalProperties as JsonSchema, `${path}{}`));
  return out;
}

describe("generated files", () => {
  it.each(generatedFiles().map((file) => [file.path, file] as const))(
    "%s matches the schemas (run npm run generate)",
    (path, file) => {
      expect(readFileSync(join(ROOT, path), "utf8")).toBe(file.content);
    },
  );

  it("are one CRD per resource, each a YAML of the built object", () => {
    const crds = generatedFiles().filter((file) => file.path.startsWith("crds/"));
    expect(crds.map((file) => parse(file.content))).toEqual(buildCrds());
  });
});

describe.each(RESOURCE_DEFINITIONS.map((d) => [d.names.kind, d] as const))(
  "the %s CRD",
  (_kind, definition) => {
    const schema = openApiSchema(definition.schema);
    const all = nodes(schema);
    const crd = buildCrds().find((c) =>
      (c.metadata as { name: string }).name.startsWith(`${definition.names.plural}.`),
    )!;
    const version = (crd.spec as { versions: JsonSchema[] }).versions[0]!;

    it("describes every field under spec and status", () => {
      const undescribed = all
        .filter(([path]) => /^\.(spec|status)/.test(path) && !path.endsWith("{}"))
        .filter(([, node]) => typeof node.description !== "string" || node.description.length < 8)
        .map(([path]) => path);
      expect(undescribed).toEqual([]);
    });

    it("is structural: every node typed, no $ref, no properties beside additionalProperties", () => {
      const text = JSON.stringify(schema);
      expect(text).not.toContain("$ref");
      expect(text).not.toContain("$schema");
      for (const [path, node] of all) {
        const typed = typeof node.type === "string" || node["x-kubernetes-int-or-string"] === true;
        expect(typed, path).toBe(true);
        expect(node.properties !== undefined && node.additionalProperties !== undefined, path).toBe(false);
        if (node.anyOf) expect(node.anyOf, path).toEqual([{ type: "integer" }, { type: "string" }]);
      }
    });

    it("leaves apiVersion, kind and metadata to the API server", () => {
      const properties = schema.properties as Record<string, JsonSchema>;
      expect(properties.metadata).toEqual({ type: "object" });
      expect(schema.required).toEqual(["spec"]);
    });

    it("has a status subresource, the understudy category and printer columns that point into the schema", () => {
      expect(version.subresources).toEqual({ status: {} });
      expect((crd.spec as { names: { categories: string[] } }).names.categories).toEqual(["understudy"]);
      const paths = new Set(all.map(([path]) => path));
      for (const column of version.additionalPrinterColumns as { jsonPath: string }[]) {
        if (column.jsonPath === ".metadata.creationTimestamp") continue;
        expect(paths, column.jsonPath).toContain(column.jsonPath.replace("[*]", "[]"));
      }
    });
  },
);

describe("CEL rules", () => {
  const rules = RESOURCE_DEFINITIONS.flatMap((d) =>
    nodes(openApiSchema(d.schema)).flatMap(([path, node]) =>
      ((node["x-kubernetes-validations"] as { rule: string; message: string }[]) ?? []).map((rule) => ({
        path,
        ...rule,
      })),
    ),
  );

  it("cover the cross-field and transition rules the design asks for", () => {
    const messages = rules.map((rule) => `${rule.path}: ${rule.message}`);
    for (const expected of [
      ".spec: hotSpares must not exceed the total number of slots in zones",
      ".spec.revocation: emergencyGraceSeconds must not exceed plannedGraceSeconds",
      ".spec.zones: zone names must be unique",
      ".spec: replicationFactor must not exceed the number of zones (replicas of a partition sit in distinct zones)",
      ".spec: primaryZone must be one of zones",
      ".spec: pool is immutable",
      ".spec.servers.storage: size is immutable",
    ]) {
      expect(messages).toContain(expected);
    }
    expect(rules.filter((rule) => rule.rule.includes("oldSelf")).length).toBeGreaterThanOrEqual(7);
  });

  it("carry a message each", () => {
    expect(rules.every((rule) => rule.message.length > 0)).toBe(true);
  });
});

describe("toStructuralSchema", () => {
  it("turns a union of literals into an enum with a type", () => {
    const out = toStructuralSchema({
      anyOf: [
        { type: "string", enum: ["A"] },
        { type: "string", const: "B" },
      ],
      description: "d",
    });
    expect(out).toEqual({ description: "d", type: "string", enum: ["A", "B"] });
  });

  it("refuses unions it cannot make structural, naming the path", () => {
    expect(() =>
      toStructuralSchema({
        type: "object",
        properties: { x: { anyOf: [{ type: "string" }, { type: "boolean" }] } },
      }),
    ).toThrow(/\.x: unions/);
  });

  it("writes exclusive bounds the OpenAPI 3.0 way and drops the safe-integer bounds", () => {
    expect(toStructuralSchema({ type: "number", exclusiveMinimum: 0 })).toEqual({
      type: "number",
      minimum: 0,
      exclusiveMinimum: true,
    });
    expect(
      toStructuralSchema({
        type: "integer",
        minimum: Number.MIN_SAFE_INTEGER,
        maximum: Number.MAX_SAFE_INTEGER,
      }),
    ).toEqual({
      type: "integer",
    });
  });

  it("inlines $ref and drops $schema and $defs", () => {
    const out = toStructuralSchema({
      $schema: "x",
      type: "object",
      properties: { a: { $ref: "#/$defs/A", description: "here" } },
      $defs: { A: { type: "string" } },
    });
    expect(out).toEqual({ type: "object", properties: { a: { description: "here", type: "string" } } });
  });

  it("turns open objects into preserved unknown fields and closed ones into plain objects", () => {
    const out = toStructuralSchema({
      type: "object",
      properties: {
        open: { type: "object", properties: { a: { type: "string" } }, additionalProperties: {} },
        closed: { type: "object", properties: { a: { type: "string" } }, additionalProperties: false },
      },
    });
    const properties = out.properties as Record<string, JsonSchema>;
    expect(properties.open).toEqual({
      type: "object",
      properties: { a: { type: "string" } },
      "x-kubernetes-preserve-unknown-fields": true,
    });
    expect(properties.closed).toEqual({ type: "object", properties: { a: { type: "string" } } });
  });

  it("spells out nested defaults of an object default", () => {
    const out = toStructuralSchema({
      type: "object",
      default: {},
      properties: {
        a: { type: "integer", default: 1 },
        b: { type: "object", default: {}, properties: { c: { type: "boolean", default: true } } },
      },
    });
    expect(out.default).toEqual({ a: 1, b: { c: true } });
  });

  it("gives int-or-string its canonical form, keeping the string pattern", () => {
    const out = toStructuralSchema({
      "x-kubernetes-int-or-string": true,
      anyOf: [
        { type: "integer", minimum: 0 },
        { type: "string", pattern: "^[0-9]+$" },
      ],
    });
    expect(out).toEqual({
      "x-kubernetes-int-or-string": true,
      pattern: "^[0-9]+$",
      anyOf: [{ type: "integer" }, { type: "string" }],
    });
  });
});
