import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  formatHolderIdentity,
  headPodName,
  parseHolderIdentity,
  slotLeaseName,
} from "../../../src/decisions/names.ts";
import type { SlotHolder } from "../../../src/decisions/types.ts";

describe("holder identity", () => {
  it("reads the three forms the operator writes", () => {
    expect(parseHolderIdentity("")).toEqual({ kind: "free" });
    expect(parseHolderIdentity(undefined)).toEqual({ kind: "free" });
    expect(parseHolderIdentity("claim:team/job")).toEqual({ kind: "claim", namespace: "team", name: "job" });
    expect(parseHolderIdentity("service:db/main")).toEqual({
      kind: "service",
      namespace: "db",
      name: "main",
    });
  });

  it("refuses identities the operator never writes", () => {
    for (const identity of ["someone", "claim:job", "claim:a/b/c", "pod:a/b", "claim:/b"]) {
      expect(parseHolderIdentity(identity)).toBeUndefined();
    }
  });

  it("round-trips", () => {
    const dnsName = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/);
    const holder: fc.Arbitrary<SlotHolder> = fc.oneof(
      fc.constant({ kind: "free" as const }),
      fc.record({
        kind: fc.constantFrom("claim" as const, "service" as const),
        namespace: dnsName,
        name: dnsName,
      }),
    );
    fc.assert(
      fc.property(holder, (h) => {
        expect(parseHolderIdentity(formatHolderIdentity(h))).toEqual(h);
      }),
    );
  });
});

describe("names", () => {
  it("spells slot leases and head pods one way", () => {
    expect(slotLeaseName("gold", "zone-a", 3)).toBe("slot-gold-zone-a-3");
    expect(headPodName("orders", 7)).toBe("orders-head-7");
  });
});
