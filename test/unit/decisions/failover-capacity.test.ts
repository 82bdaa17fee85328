import { describe, expect, it } from "vitest";
import { estimateFailoverCapacity } from "../../../src/decisions/failover-capacity.ts";
import { chooseFailoverSlot } from "../../../src/decisions/failover-slot.ts";
import { seededRandom } from "../../support/random.ts";
import { FREE, claim, claimHolder, node, serviceHolder, slot } from "./fixtures.ts";

// The pool's readiness for failovers now: a head failing alone, and a whole zone failing.

const nodes = [node("a1", "a"), node("b1", "b"), node("c1", "c")];
const head = (name: string, zone: string) => ({ namespace: "s", name, zone });

describe("estimateFailoverCapacity", () => {
  it("finds a slot for every head alone, and for a zone's heads while the other zones hold enough", () => {
    const estimate = estimateFailoverCapacity({
      slots: [slot("a", 0, "a1"), slot("b", 0, "b1", claimHolder("batch")), slot("c", 0, "c1")],
      nodes,
      claims: [claim("batch", { phase: "Bound" })],
      services: [head("kv-a", "a"), head("kv-b", "b"), head("kv-c", "c")],
    });
    expect(estimate).toEqual({ services: 3, singleFailure: 1, zoneOutage: 1, worstZone: "a" });
  });

  it("reports the zone whose outage would leave heads without a slot, and how many", () => {
    // Three heads in zone a; the other zones hold two slots, one already held by a head.
    const estimate = estimateFailoverCapacity({
      slots: [
        slot("a", 0, "a1"),
        slot("b", 0, "b1"),
        slot("c", 0, "c1"),
        slot("c", 1, "c1", serviceHolder("kv-x")),
      ],
      nodes,
      claims: [],
      services: [head("kv-1", "a"), head("kv-2", "a"), head("kv-3", "a"), head("kv-x", "c")],
    });
    expect(estimate.worstZone).toBe("a");
    expect(estimate.zoneOutage).toBeCloseTo(2 / 3, 10);
    // Failing alone, each head finds one of the three slots nobody holds.
    expect(estimate.singleFailure).toBe(1);
  });

  it("counts no slot on a NotReady node and none held by a service", () => {
    const estimate = estimateFailoverCapacity({
      slots: [slot("b", 0, "b1"), slot("c", 0, "c1", serviceHolder("kv-c"))],
      nodes: [node("a1", "a"), node("b1", "b", { ready: false }), node("c1", "c")],
      claims: [],
      services: [head("kv-a", "a"), head("kv-c", "c")],
    });
    expect(estimate).toEqual({ services: 2, singleFailure: 0, zoneOutage: 0, worstZone: "a" });
  });

  it("counts for each head only the slots on nodes that fit its placement", () => {
    const estimate = estimateFailoverCapacity({
      slots: [slot("b", 0, "b1"), slot("c", 0, "c1")],
      nodes: [node("a1", "a"), node("b1", "b"), node("c1", "c", { labels: { disk: "ssd" } })],
      claims: [],
      services: [
        { ...head("kv-ssd", "a"), placement: { nodeSelector: { disk: "ssd" }, tolerations: [] } },
        { ...head("kv-gpu", "a"), placement: { nodeSelector: { gpu: "yes" }, tolerations: [] } },
      ],
    });
    // Alone, only kv-ssd finds a slot; in zone a's outage, kv-gpu finds none either way.
    expect(estimate).toEqual({ services: 2, singleFailure: 0.5, zoneOutage: 0.5, worstZone: "a" });
  });

  it("is vacuously ready with no storage service", () => {
    expect(estimateFailoverCapacity({ slots: [], nodes, claims: [], services: [] })).toEqual({
      services: 0,
      singleFailure: 1,
      zoneOutage: 1,
    });
  });
});

/** The estimate as it is defined: every head's failover played by chooseFailoverSlot itself. */
function played(input: Parameters<typeof estimateFailoverCapacity>[0]) {
  const services = [...input.services].sort((a, b) =>
    a.namespace === b.namespace ? (a.name < b.name ? -1 : 1) : a.namespace < b.namespace ? -1 : 1,
  );
  const base = { slots: input.slots, nodes: input.nodes, claims: input.claims };
  const place = (s: (typeof services)[number]) => (s.placement ? { placement: s.placement } : {});
  const alone = services.filter(
    (s) => chooseFailoverSlot({ ...base, service: s, failedZone: s.zone, ...place(s) }).kind === "slot",
  ).length;
  let zoneOutage = 1;
  let worstZone: string | undefined;
  for (const zone of [...new Set(services.map((s) => s.zone))].sort()) {
    const heads = services.filter((s) => s.zone === zone);
    const nodes = input.nodes.map((n) => (n.zone === zone ? { ...n, ready: false } : n));
    let slots = [...input.slots];
    let found = 0;
    for (const head of heads) {
      const choice = chooseFailoverSlot({
        service: head,
        slots,
        nodes,
        claims: input.claims,
        failedZone: zone,
        failedZones: [zone],
        ...place(head),
      });
      if (choice.kind !== "slot") continue;
      found++;
      slots = slots.map((s) =>
        s.leaseName === choice.slot.leaseName ? { ...s, holder: serviceHolder(head.name) } : s,
      );
    }
    if (worstZone === undefined || found / heads.length < zoneOutage) {
      zoneOutage = found / heads.length;
      worstZone = zone;
    }
  }
  return {
    services: services.length,
    singleFailure: services.length ? alone / services.length : 1,
    zoneOutage,
    worstZone,
  };
}

describe("estimateFailoverCapacity against every failover played one by one", () => {
  it("agrees on 500 random pools, with and without placements", () => {
    const random = seededRandom(17);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    for (let run = 0; run < 500; run++) {
      const zones = ["a", "b", "c"];
      const nodes = Array.from({ length: 2 + Math.floor(random() * 6) }, (_, i) =>
        node(`n${i}`, pick(zones), {
          ready: random() > 0.15,
          labels: (random() > 0.5 ? { disk: "ssd" } : {}) as Record<string, string>,
          taints: random() > 0.8 ? [{ key: "dedicated", value: "db", effect: "NoSchedule" as const }] : [],
        }),
      );
      const claims = Array.from({ length: 4 }, (_, i) => claim(`c${i}`, { bid: Math.floor(random() * 50) }));
      const slots = Array.from({ length: Math.floor(random() * 12) }, (_, i) => {
        const on = pick(nodes);
        const holder = pick([FREE, claimHolder(pick(claims).name), serviceHolder(`held${i}`)]);
        return slot(on.zone!, i, on.name, holder);
      });
      const withPlacements = run % 2 === 1;
      const services = Array.from({ length: 1 + Math.floor(random() * 8) }, (_, i) => ({
        namespace: "s",
        name: `kv${i}`,
        zone: pick(zones),
        ...(withPlacements && random() > 0.4
          ? {
              placement: {
                nodeSelector: (random() > 0.5 ? { disk: "ssd" } : {}) as Record<string, string>,
                tolerations:
                  random() > 0.5
                    ? [{ key: "dedicated", operator: "Exists" as const, effect: "NoSchedule" as const }]
                    : [],
              },
            }
          : {}),
      }));
      const input = { slots, nodes, claims, services };
      expect(estimateFailoverCapacity(input), `run ${run}`).toEqual(played(input));
    }
  });
});
