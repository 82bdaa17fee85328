import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { CLAIM_LABEL, parseClaim, parsePool, SLOT_SCHEDULING_GATE } from "../../../src/api/index.ts";
import { toPoolView } from "../../../src/controllers/views.ts";
import { admitClaim, admitTenantPod } from "../../../src/decisions/claim-admission.ts";
import { normalizedWorkloadPodSpec } from "../../../src/decisions/workload-pods.ts";

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

describe("the workload examples", () => {
  const pool = parsePool(docs("10-pool.yaml")[0]);
  const all = docs("40-workloads.yaml");
  for (const raw of all.filter((d) => d.kind === "PoolClaim")) {
    it(`claim ${raw.metadata.name} is a valid workload claim`, () => {
      const claim = parseClaim(raw);
      if (!claim.ok) throw new Error(claim.message);
      expect(claim.value.spec.template).toBeUndefined();
    });
  }
  const workloads = all.filter((d) => ["Job", "Deployment", "StatefulSet"].includes(d.kind));
  it("are a Job, a Deployment and a StatefulSet", () =>
    expect(workloads.map((d) => d.kind)).toEqual(["Job", "Deployment", "StatefulSet"]));
  for (const raw of workloads) {
    it(`${raw.kind} ${raw.metadata.name} carries the gate and label, and its pods pass the example pool's admission`, () => {
      if (!pool.ok) throw new Error(pool.message);
      const template = raw.spec.template;
      const claims = all.filter((d) => d.kind === "PoolClaim").map((d) => d.metadata.name);
      expect(claims).toContain(template.metadata.labels[CLAIM_LABEL]);
      expect(template.spec.schedulingGates).toEqual([{ name: SLOT_SCHEDULING_GATE }]);
      const spec = normalizedWorkloadPodSpec(template.spec, SLOT_SCHEDULING_GATE, false);
      expect(admitTenantPod(spec, template.metadata, toPoolView(pool.value))).toEqual({ admitted: true });
    });
  }
});
