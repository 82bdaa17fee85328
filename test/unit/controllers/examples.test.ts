import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { parseClaim, parsePool } from "../../../src/api/index.ts";
import { toPoolView } from "../../../src/controllers/views.ts";
import { admitClaim } from "../../../src/decisions/claim-admission.ts";

// The examples are what users copy: the operator must admit them as they are.
const examples = join(import.meta.dirname, "../../../examples");
const docs = (file: string) =>
  parseAllDocuments(readFileSync(join(examples, file), "utf8")).map((d) => d.toJSON());

describe("the example manifests", () => {
  const pool = parsePool(docs("10-pool.yaml")[0]);
  it("the pool parses", () => expect(pool.ok).toBe(true));
  for (const raw of docs("20-claims.yaml")) {
    it(`claim ${raw.metadata.name} is admitted by the example pool`, () => {
      const claim = parseClaim(raw);
      if (!claim.ok || !pool.ok) throw new Error(claim.ok ? "pool invalid" : claim.message);
      const verdict = admitClaim({
        claim: {
          namespace: claim.value.metadata.namespace!,
          pool: claim.value.spec.pool,
          zone: claim.value.spec.zone,
        },
        pool: toPoolView(pool.value),
        podSpec: claim.value.spec.template?.spec,
        podMetadata: claim.value.spec.template?.metadata,
      });
      expect(verdict).toEqual({ admitted: true });
    });
  }
});
