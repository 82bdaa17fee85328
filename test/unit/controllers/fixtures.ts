import { parseStorageService, type StorageService } from "../../../src/api/index.ts";

// A valid StorageService for the controller's unit tests; `edit` changes its spec first.
export function service(edit: (spec: Record<string, unknown>) => void = () => {}): StorageService {
  const spec: Record<string, unknown> = {
    pool: "contingency",
    zones: ["zone-a", "zone-b", "zone-c"],
    primaryZone: "zone-a",
    head: { image: "example/understudy:1", port: 7000 },
    servers: { image: "example/understudy:1", port: 7001, replicasPerZone: 2, storage: { size: "1Gi" } },
  };
  edit(spec);
  const parsed = parseStorageService({
    apiVersion: "understudy.dev/v1alpha1",
    kind: "StorageService",
    metadata: { name: "kv", namespace: "storage", uid: "uid-1" },
    spec,
  });
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.value;
}
