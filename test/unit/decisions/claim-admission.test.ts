import { describe, expect, it } from "vitest";
import { admitClaim } from "../../../src/decisions/claim-admission.ts";
import { pool } from "./fixtures.ts";

const safeSpec = {
  securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
  containers: [
    {
      name: "app",
      image: "app",
      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
    },
  ],
};

describe("admitClaim", () => {
  it("admits a claim in an allowed namespace, a pool zone, with a restricted pod", () => {
    expect(
      admitClaim({ claim: { namespace: "t", pool: "p", zone: "a" }, pool: pool(), podSpec: safeSpec }),
    ).toEqual({ admitted: true });
  });

  it("refuses a claim on a pool that does not exist", () => {
    expect(
      admitClaim({ claim: { namespace: "t", pool: "nope" }, pool: undefined, podSpec: safeSpec }),
    ).toEqual({
      admitted: false,
      reason: "PoolNotFound",
      message: 'ContingencyPool "nope" does not exist',
    });
  });

  it("refuses a namespace the pool does not allow, and lets '*' allow any", () => {
    const p = pool({ allowedNamespaces: ["team-a"] });
    expect(admitClaim({ claim: { namespace: "t", pool: "p" }, pool: p, podSpec: safeSpec })).toMatchObject({
      admitted: false,
      reason: "NamespaceNotAllowed",
    });
    expect(
      admitClaim({ claim: { namespace: "team-a", pool: "p" }, pool: p, podSpec: safeSpec }).admitted,
    ).toBe(true);
    expect(
      admitClaim({
        claim: { namespace: "x", pool: "p" },
        pool: pool({ allowedNamespaces: ["*"] }),
        podSpec: safeSpec,
      }).admitted,
    ).toBe(true);
    expect(
      admitClaim({
        claim: { namespace: "x", pool: "p" },
        pool: pool({ allowedNamespaces: [] }),
        podSpec: safeSpec,
      }).admitted,
    ).toBe(false);
  });

  it("refuses a zone outside the pool, naming the pool's zones", () => {
    expect(
      admitClaim({ claim: { namespace: "t", pool: "p", zone: "z" }, pool: pool(), podSpec: safeSpec }),
    ).toEqual({
      admitted: false,
      reason: "ZoneNotInPool",
      message: 'zone "z" is not in pool "p" (zones: a, b, c)',
    });
  });

  it("refuses a template without containers", () => {
    for (const podSpec of [{}, { containers: [] }, "x"]) {
      expect(admitClaim({ claim: { namespace: "t", pool: "p" }, pool: pool(), podSpec })).toMatchObject({
        reason: "InvalidPodTemplate",
      });
    }
  });

  it("judges a workload claim (no template) on its pool, namespace and zone alone", () => {
    expect(admitClaim({ claim: { namespace: "t", pool: "p" }, pool: pool() })).toEqual({ admitted: true });
    expect(
      admitClaim({ claim: { namespace: "t", pool: "p" }, pool: pool({ allowedNamespaces: ["other"] }) }),
    ).toMatchObject({ reason: "NamespaceNotAllowed" });
  });

  it("refuses a template that breaks the restricted profile, with the violations", () => {
    const podSpec = {
      ...safeSpec,
      hostNetwork: true,
      hostPID: true,
      hostIPC: true,
      volumes: [{ name: "h", hostPath: { path: "/" } }],
    };
    const decision = admitClaim({ claim: { namespace: "t", pool: "p" }, pool: pool(), podSpec });
    expect(decision).toMatchObject({ admitted: false, reason: "PodSecurityViolation" });
    if (decision.admitted) throw new Error("admitted");
    expect(decision.violations).toHaveLength(4);
    expect(decision.message).toBe(
      "the pod template violates the restricted Pod Security Standard: pod must not set hostNetwork=true; pod must not set hostPID=true; pod must not set hostIPC=true; and 1 more",
    );
  });

  it("checks the rules in order: the pool before the namespace before the template", () => {
    const decision = admitClaim({
      claim: { namespace: "t", pool: "p", zone: "z" },
      pool: pool({ allowedNamespaces: [] }),
      podSpec: {},
    });
    expect(decision).toMatchObject({ reason: "NamespaceNotAllowed" });
  });

  it("refuses fields the pool does not allow before judging the profile, then a pod that does not fit", () => {
    const borrowing = { ...safeSpec, priorityClassName: "system-node-critical", hostNetwork: true };
    expect(admitClaim({ claim: { namespace: "t", pool: "p" }, pool: pool(), podSpec: borrowing })).toEqual({
      admitted: false,
      reason: "FieldNotAllowed",
      message:
        'the pod template sets fields the pool does not allow: spec.priorityClassName: priority class "system-node-critical" is not allowed by the pool',
    });
    const p = pool({ tenantPods: { ...pool().tenantPods, priorityClassNames: ["system-node-critical"] } });
    expect(admitClaim({ claim: { namespace: "t", pool: "p" }, pool: p, podSpec: borrowing })).toMatchObject({
      reason: "PodSecurityViolation",
    });
    const big = {
      ...safeSpec,
      containers: [{ ...safeSpec.containers[0]!, resources: { requests: { cpu: "64" } } }],
    };
    expect(admitClaim({ claim: { namespace: "t", pool: "p" }, pool: pool(), podSpec: big })).toEqual({
      admitted: false,
      reason: "PodExceedsSlot",
      message:
        'the pod does not fit a slot of pool "p": container "app" asks for cpu 64, more than the slot\'s 1; the pod requests cpu 64 in all (container "app" 64), more than the slot\'s 1',
    });
  });
});
