import * as k8s from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_TENANT_POD_POLICY,
  TENANT_POD_SPEC_FIELDS,
  checkTenantPodFields,
  type TenantPodPolicy,
} from "../../../src/decisions/tenant-pod-fields.ts";

const containers = [{ name: "app", image: "app" }];
const policy = (overrides: Partial<TenantPodPolicy> = {}): TenantPodPolicy => ({
  ...DEFAULT_TENANT_POD_POLICY,
  ...overrides,
});
const paths = (spec: Record<string, unknown>, p = policy(), metadata?: unknown) =>
  checkTenantPodFields({ containers, ...spec }, metadata, p).map((v) => v.path);

describe("checkTenantPodFields", () => {
  it("passes the tenant's own fields", () => {
    expect(
      paths({
        volumes: [{ name: "scratch", emptyDir: {} }],
        restartPolicy: "Never",
        terminationGracePeriodSeconds: 10,
        securityContext: { runAsNonRoot: true },
        automountServiceAccountToken: false,
        serviceAccountName: "default",
      }),
    ).toEqual([]);
  });

  it("refuses every borrowed power the pool does not grant, naming the field", () => {
    const found = checkTenantPodFields(
      {
        containers,
        serviceAccountName: "deployer",
        automountServiceAccountToken: true,
        priorityClassName: "system-node-critical",
        runtimeClassName: "unconfined",
        tolerations: [{ operator: "Exists" }],
        hostAliases: [{ ip: "10.0.0.1", hostnames: ["api"] }],
      },
      { annotations: { "k8s.v1.cni.cncf.io/networks": "host-net" } },
      policy(),
    );
    expect(found.map((v) => v.path)).toEqual([
      "spec.automountServiceAccountToken",
      "spec.hostAliases",
      "spec.priorityClassName",
      "spec.runtimeClassName",
      "spec.serviceAccountName",
      "spec.tolerations",
      'metadata.annotations["k8s.v1.cni.cncf.io/networks"]',
    ]);
    expect(found.find((v) => v.path === "spec.serviceAccountName")!.message).toBe(
      'spec.serviceAccountName: service account "deployer" is not allowed by the pool (only "default")',
    );
  });

  it("lets the pool allow each of them", () => {
    const toleration = { key: "dedicated", operator: "Equal", value: "batch", effect: "NoSchedule" };
    const allowing = policy({
      serviceAccountNames: ["deployer"],
      automountServiceAccountToken: true,
      priorityClassNames: ["batch-low"],
      runtimeClassNames: ["gvisor"],
      tolerations: [toleration],
      annotations: ["example.com/*", "owner"],
      hostAliases: true,
    });
    expect(
      paths(
        {
          serviceAccountName: "deployer",
          automountServiceAccountToken: true,
          priorityClassName: "batch-low",
          runtimeClassName: "gvisor",
          tolerations: [toleration],
          hostAliases: [{ ip: "10.0.0.1", hostnames: ["api"] }],
        },
        allowing,
        { annotations: { "example.com/team": "x", owner: "y" } },
      ),
    ).toEqual([]);
    // A toleration that differs in one field is another toleration.
    expect(paths({ tolerations: [{ ...toleration, effect: "NoExecute" }] }, allowing)).toEqual([
      "spec.tolerations",
    ]);
    expect(paths({}, allowing, { annotations: { "example.org/team": "x" } })).toEqual([
      'metadata.annotations["example.org/team"]',
    ]);
  });

  it("keeps node selection the operator's, whatever the pool says", () => {
    expect(
      paths({
        nodeName: "n1",
        nodeSelector: { a: "b" },
        affinity: {},
        schedulerName: "mine",
        priority: 1000000,
        overhead: { cpu: "1" },
        resourceClaims: [{ name: "gpu" }],
      }),
    ).toEqual([
      "spec.affinity",
      "spec.nodeName",
      "spec.nodeSelector",
      "spec.overhead",
      "spec.priority",
      "spec.resourceClaims",
      "spec.schedulerName",
    ]);
  });

  it("refuses volumes that project a service account credential unless the pool allows tokens", () => {
    const volumes = [
      { name: "scratch", emptyDir: {} },
      {
        name: "t",
        projected: { sources: [{ configMap: { name: "c" } }, { serviceAccountToken: { path: "token" } }] },
      },
    ];
    const found = checkTenantPodFields({ containers, volumes }, undefined, policy());
    expect(found).toEqual([
      {
        path: "spec.volumes",
        message:
          'spec.volumes: volume "t" projects a serviceAccountToken, and the pool allows no service account token',
      },
    ]);
    expect(paths({ volumes: [{ name: "c", projected: { sources: [{ podCertificate: {} }] } }] })).toEqual([
      "spec.volumes",
    ]);
    expect(paths({ volumes }, policy({ automountServiceAccountToken: true }))).toEqual([]);
  });

  it("does not take Object's own properties for fields", () => {
    expect(paths({ constructor: {}, toString: "x" })).toEqual(["spec.constructor", "spec.toString"]);
  });

  it("refuses a field it does not know, so a new PodSpec field is judged before it is passed on", () => {
    expect(paths({ someFutureField: true })).toEqual(["spec.someFutureField"]);
  });

  it("leaves AppArmor annotations to the Pod Security checks", () => {
    expect(
      paths({}, policy(), {
        annotations: { "container.apparmor.security.beta.kubernetes.io/app": "runtime/default" },
      }),
    ).toEqual([]);
  });

  it("judges every PodSpec field the Kubernetes client knows", () => {
    const known = k8s.V1PodSpec.getAttributeTypeMap().map((a) => a.baseName);
    expect(known.filter((field) => !(field in TENANT_POD_SPEC_FIELDS))).toEqual([]);
  });
});
