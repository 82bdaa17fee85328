import { describe, expect, it } from "vitest";
import { checkTenantPodSize } from "../../../src/decisions/tenant-pod-size.ts";

const MiB = 1024 * 1024;
const slot = { cpuMillis: 500, memoryBytes: 512 * MiB };
const container = (name: string, resources?: unknown, extra: Record<string, unknown> = {}) => ({
  name,
  image: "app",
  ...(resources ? { resources } : {}),
  ...extra,
});

describe("checkTenantPodSize", () => {
  it("lets a pod that asks for nothing fit: the slot becomes its size", () => {
    expect(checkTenantPodSize({ containers: [container("app")] }, slot)).toEqual([]);
  });

  it("refuses a claim asking for 64 CPUs and 256Gi, naming the container and each resource", () => {
    const found = checkTenantPodSize(
      { containers: [container("app", { requests: { cpu: "64", memory: "256Gi" } })] },
      slot,
    );
    expect(found.map((v) => v.path)).toEqual([
      "spec.containers[0].resources.requests.cpu",
      "spec.containers[0].resources.requests.memory",
      "spec.containers",
      "spec.containers",
    ]);
    expect(found[0]!.message).toBe('container "app" asks for cpu 64, more than the slot\'s 500m');
    expect(found[1]!.message).toContain('container "app" asks for memory 256Gi');
  });

  it("refuses a limit above the slot even when the request fits", () => {
    const found = checkTenantPodSize(
      { containers: [container("app", { requests: { cpu: "100m" }, limits: { cpu: "2" } })] },
      slot,
    );
    expect(found).toEqual([
      {
        path: "spec.containers[0].resources.limits.cpu",
        message: 'container "app" asks for cpu 2, more than the slot\'s 500m',
      },
    ]);
  });

  it("adds up containers that each fit but together do not, and names them", () => {
    const found = checkTenantPodSize(
      {
        containers: [
          container("a", { requests: { cpu: "300m" } }),
          container("b", { requests: { cpu: "300m" } }),
        ],
      },
      slot,
    );
    expect(found).toEqual([
      {
        path: "spec.containers",
        message:
          'the pod requests cpu 600m in all (container "a" 300m, container "b" 300m), more than the slot\'s 500m',
      },
    ]);
  });

  it("counts a container that sets only a limit as requesting it, as the API server defaults it", () => {
    const found = checkTenantPodSize(
      {
        containers: [
          container("a", { limits: { memory: "400Mi" } }),
          container("b", { requests: { memory: "200Mi" } }),
        ],
      },
      slot,
    );
    expect(found.map((v) => v.path)).toEqual(["spec.containers"]);
  });

  it("counts sidecars beside the containers, and a plain init container only at its own peak", () => {
    const sidecar = container("proxy", { requests: { cpu: "200m" } }, { restartPolicy: "Always" });
    const init = container("migrate", { requests: { cpu: "400m" } });
    const app = container("app", { requests: { cpu: "250m" } });
    // init alone 400m fits; sidecar 200m + app 250m = 450m fits.
    expect(checkTenantPodSize({ initContainers: [init, sidecar], containers: [app] }, slot)).toEqual([]);
    // With the sidecar started first, the init container runs beside it: 200m + 400m > 500m.
    expect(checkTenantPodSize({ initContainers: [sidecar, init], containers: [app] }, slot)).toHaveLength(1);
    // Sidecar plus containers over the slot.
    const big = container("app", { requests: { cpu: "350m" } });
    expect(checkTenantPodSize({ initContainers: [sidecar], containers: [big] }, slot)[0]!.message).toContain(
      'init container "proxy" 200m, container "app" 350m',
    );
  });

  it("counts the pod's overhead", () => {
    const found = checkTenantPodSize(
      { containers: [container("app", { requests: { memory: "500Mi" } })], overhead: { memory: "20Mi" } },
      slot,
    );
    expect(found[0]!.message).toContain("overhead 20Mi");
  });

  it("refuses resources a slot does not have and quantities that do not parse, but not scratch space", () => {
    const found = checkTenantPodSize(
      {
        containers: [
          container("gpu", { limits: { "nvidia.com/gpu": "1", "ephemeral-storage": "1Gi" } }),
          container("odd", { requests: { cpu: "lots" } }),
        ],
      },
      slot,
    );
    expect(found).toEqual([
      {
        path: "spec.containers[0].resources.limits.nvidia.com/gpu",
        message: 'container "gpu" asks for nvidia.com/gpu, which a slot does not have',
      },
      {
        path: "spec.containers[1].resources.requests.cpu",
        message: 'container "odd" has an invalid cpu quantity "lots"',
      },
    ]);
  });

  it("checks pod-level resources a template sets against the slot", () => {
    expect(
      checkTenantPodSize({ containers: [container("app")], resources: { limits: { cpu: "1" } } }, slot),
    ).toEqual([
      { path: "spec.resources.limits.cpu", message: "the pod asks for cpu 1, more than the slot's 500m" },
    ]);
  });
});
