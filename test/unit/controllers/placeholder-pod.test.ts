import { describe, expect, it } from "vitest";
import { parsePool, type ContingencyPool } from "../../../src/api/index.ts";
import { placeholderPod } from "../../../src/controllers/pods.ts";
import type { SlotView } from "../../../src/decisions/types.ts";

// The placeholder pod's image: the pool's own, else the operator's default (air-gapped clusters
// point either at a mirror).

function pool(extra: Record<string, unknown> = {}): ContingencyPool {
  const parsed = parsePool({
    apiVersion: "understudy.dev/v1alpha1",
    kind: "ContingencyPool",
    metadata: { name: "spare" },
    spec: { zones: [{ name: "zone-a", slots: 1 }], slotSize: { cpu: "1", memory: "1Gi" }, ...extra },
  });
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.value;
}

const slot = { pool: "spare", zone: "zone-a", leaseName: "slot-spare-zone-a-0", node: "n1" } as SlotView;
const image = (p: ReturnType<typeof placeholderPod>) => p.spec!.containers[0]!.image;

describe("placeholderPod", () => {
  it("runs the operator's default image, the pool's own when it names one", () => {
    expect(image(placeholderPod(pool(), slot, "ops"))).toBe("registry.k8s.io/pause:3.10");
    expect(image(placeholderPod(pool(), slot, "ops", "mirror.internal/pause:3.10"))).toBe(
      "mirror.internal/pause:3.10",
    );
    expect(
      image(
        placeholderPod(
          pool({ placeholderImage: "pool.mirror/pause:3.10" }),
          slot,
          "ops",
          "mirror.internal/pause:3.10",
        ),
      ),
    ).toBe("pool.mirror/pause:3.10");
  });
});
