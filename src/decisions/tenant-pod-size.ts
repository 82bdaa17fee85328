// Whether a tenant's pod fits its slot. A slot is CPU and memory on one node, held for the tenant by
// the operator; the pod must not ask for more, counted as Kubernetes counts a pod's requests:
// the larger of (regular containers plus sidecars) and each init container's peak (itself plus the
// sidecars started before it), plus the pod's overhead. A container that sets only a limit requests
// that limit, as the API server defaults it. The pod itself is then given the slot as its pod-level
// requests and limits, so containers that set no limit share the slot and nothing more.
import { formatCpuMillis, formatMemoryBytes, parseCpuMillis, parseMemoryBytes } from "./quantity.ts";

export interface SlotCapacity {
  cpuMillis: number;
  memoryBytes: number;
}

export interface TenantPodSizeViolation {
  /** The offending field, e.g. `spec.containers[0].resources.requests.cpu`. */
  path: string;
  message: string;
}

/** Resources a slot has; a tenant pod may ask for no others (no devices, no hugepages). */
const SLOT_RESOURCES = ["cpu", "memory"] as const;
type SlotResource = (typeof SLOT_RESOURCES)[number];
/** Resources a pod may ask for that a slot does not count: node-local scratch space. */
const UNCOUNTED_RESOURCES = new Set(["ephemeral-storage"]);

const parse: Record<SlotResource, (q: string | number) => number> = {
  cpu: parseCpuMillis,
  memory: parseMemoryBytes,
};
const format: Record<SlotResource, (n: number) => string> = {
  cpu: formatCpuMillis,
  memory: formatMemoryBytes,
};
const capacityOf = (slot: SlotCapacity, r: SlotResource) => (r === "cpu" ? slot.cpuMillis : slot.memoryBytes);

interface Sized {
  path: string;
  label: string;
  sidecar: boolean;
  /** What the container counts for, per slot resource: its request, else its limit, else 0. */
  request: Record<SlotResource, number>;
}

type Obj = Record<string, unknown>;
const asObject = (v: unknown): Obj | undefined =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;

/**
 * The ways a tenant pod template does not fit a slot of `slot` size, in a stable order. Empty
 * means it fits.
 */
export function checkTenantPodSize(podSpec: unknown, slot: SlotCapacity): TenantPodSizeViolation[] {
  const spec = asObject(podSpec) ?? {};
  const found: TenantPodSizeViolation[] = [];
  const amounts = (resources: Obj | undefined, path: string, label: string) => {
    const out: Partial<Record<SlotResource, number>> = {};
    for (const [key, value] of Object.entries(resources ?? {})) {
      const at = `${path}.${key}`;
      if (UNCOUNTED_RESOURCES.has(key)) continue;
      if (!(SLOT_RESOURCES as readonly string[]).includes(key)) {
        found.push({ path: at, message: `${label} asks for ${key}, which a slot does not have` });
        continue;
      }
      const r = key as SlotResource;
      try {
        out[r] = parse[r](value as string | number);
      } catch {
        found.push({ path: at, message: `${label} has an invalid ${r} quantity ${JSON.stringify(value)}` });
        continue;
      }
      if (out[r]! > capacityOf(slot, r))
        found.push({
          path: at,
          message: `${label} asks for ${r} ${String(value)}, more than the slot's ${format[r](capacityOf(slot, r))}`,
        });
    }
    return out;
  };

  const sized: Sized[] = [];
  for (const list of ["initContainers", "containers"] as const) {
    const items = Array.isArray(spec[list]) ? (spec[list] as unknown[]) : [];
    items.forEach((item, index) => {
      const container = asObject(item) ?? {};
      const name = typeof container.name === "string" ? container.name : `#${index}`;
      const label = `${list === "containers" ? "container" : "init container"} "${name}"`;
      const path = `spec.${list}[${index}].resources`;
      const resources = asObject(container.resources);
      const requests = amounts(asObject(resources?.requests), `${path}.requests`, label);
      const limits = amounts(asObject(resources?.limits), `${path}.limits`, label);
      sized.push({
        path,
        label,
        sidecar: list === "initContainers" && container.restartPolicy === "Always",
        request: { cpu: requests.cpu ?? limits.cpu ?? 0, memory: requests.memory ?? limits.memory ?? 0 },
      });
    });
  }
  const podResources = asObject(spec.resources);
  amounts(asObject(podResources?.requests), "spec.resources.requests", "the pod");
  amounts(asObject(podResources?.limits), "spec.resources.limits", "the pod");
  const overhead = amounts(asObject(spec.overhead), "spec.overhead", "the pod's overhead");

  for (const r of SLOT_RESOURCES) {
    const total = effectiveRequest(sized, r) + (overhead[r] ?? 0);
    if (total <= capacityOf(slot, r)) continue;
    const parts = sized.filter((c) => c.request[r] > 0).map((c) => `${c.label} ${format[r](c.request[r])}`);
    found.push({
      path: "spec.containers",
      message: `the pod requests ${r} ${format[r](total)} in all (${parts.join(", ")}${overhead[r] ? `, overhead ${format[r](overhead[r])}` : ""}), more than the slot's ${format[r](capacityOf(slot, r))}`,
    });
  }
  return found;
}

/** The pod's request of one resource, as the scheduler and the kubelet count it. */
function effectiveRequest(containers: readonly Sized[], r: SlotResource): number {
  let sidecars = 0;
  let initPeak = 0;
  let regular = 0;
  for (const c of containers) {
    if (c.path.startsWith("spec.containers")) regular += c.request[r];
    else if (c.sidecar) {
      sidecars += c.request[r];
      initPeak = Math.max(initPeak, sidecars);
    } else initPeak = Math.max(initPeak, sidecars + c.request[r]);
  }
  return Math.max(regular + sidecars, initPeak);
}
