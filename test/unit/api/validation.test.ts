import { describe, expect, it } from "vitest";
import { MALFORMED, UPDATES, loadExamples } from "./cases.ts";
import { parseUpdate, parserFor } from "./parsers.ts";
import { API_VERSION, parseClaim, parsePool, parseStorageService } from "../../../src/api/index.ts";

describe("examples", () => {
  const resources = loadExamples().filter((m) => m.apiVersion === API_VERSION);

  it("hold a pool, two inline claims, a storage service and three workload claims", () => {
    expect(resources.map((m) => `${m.kind}/${m.metadata.name}`)).toEqual([
      "ContingencyPool/contingency",
      "PoolClaim/batch-low",
      "PoolClaim/batch-high",
      "StorageService/kv",
      "PoolClaim/render-farm",
      "PoolClaim/preview-web",
      "PoolClaim/cache-ring",
    ]);
  });

  it.each(resources.map((m) => [`${m.kind}/${m.metadata.name}`, m] as const))(
    "%s parses",
    (_name, manifest) => {
      const result = parserFor(manifest.kind as never)(manifest);
      expect(result.ok ? "" : result.message).toBe("");
    },
  );

  it("get the defaults of fields they leave out", () => {
    const pool = parsePool({
      ...resources[0],
      spec: { zones: [{ name: "zone-a", slots: 1 }], slotSize: { cpu: 1, memory: "1Gi" } },
    });
    expect(pool.ok && pool.value.spec).toMatchObject({
      allowedNamespaces: [],
      hotSpares: 0,
      revocation: { plannedGraceSeconds: 30, emergencyGraceSeconds: 5 },
    });
    const claim = parseClaim(resources[2]);
    expect(claim.ok && claim.value.spec.requeueOnRevoke).toBe(false);
    const minimal = structuredClone(resources[3]!);
    for (const key of ["failureDetection", "failback", "replicationFactor"]) delete minimal.spec![key];
    const service = parseStorageService(minimal);
    expect(service.ok && service.value.spec).toMatchObject({
      replicationFactor: 3,
      failureDetection: { probePeriodMilliseconds: 500, probeTimeoutMilliseconds: 300, failureThreshold: 3 },
      failback: { policy: "Manual" },
    });
  });
});

describe("malformed objects", () => {
  it("are many, over every kind", () => {
    expect(MALFORMED.length).toBeGreaterThanOrEqual(30);
    expect(new Set(MALFORMED.map((c) => c.kind)).size).toBe(3);
  });

  const checked = MALFORMED.filter((c) => c.serverOnly === undefined);
  it.each(checked.map((c) => [c.name, c] as const))("refused by the operator: %s", (_name, c) => {
    const result = parserFor(c.kind)(c.manifest);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues.map((issue) => issue.path)).toContain(c.field);
    expect(result.message).toContain(`${c.field}: `);
  });

  const pruned = MALFORMED.filter((c) => c.serverOnly !== undefined);
  it.each(pruned.map((c) => [c.name, c] as const))(
    "unknown field dropped by the operator's parse: %s",
    (_name, c) => {
      const result = parserFor(c.kind)(c.manifest);
      expect(result.ok).toBe(true);
      const leaf = c.field.split(".").at(-1)!;
      expect(JSON.stringify(result.ok && result.value)).not.toContain(`"${leaf}"`);
    },
  );
});

describe("updates", () => {
  it.each(UPDATES.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const previous = c.base();
    const next = structuredClone(previous);
    c.change(next.spec!);
    const result = parseUpdate(c.kind, previous, next);
    if (c.field === undefined) {
      expect(result.ok ? "" : result.message).toBe("");
    } else {
      expect(result.ok).toBe(false);
      expect(!result.ok && result.issues.map((issue) => issue.path)).toContain(c.field);
    }
  });
});
