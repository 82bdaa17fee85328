import { describe, expect, it } from "vitest";
import { CacheExpectations } from "../../../src/controllers/cache-expectations.ts";

describe("CacheExpectations", () => {
  it("is met once the cache shows each written object at another version, or without it", () => {
    const expectations = new CacheExpectations(10_000);
    const cache = new Map([
      ["slot-a", "10"],
      ["slot-b", "11"],
    ]);
    const version = (name: string) => cache.get(name);
    expect(expectations.met("pool", version, 0)).toBe(true);

    expectations.expect("pool", "slot-a", "10", 0);
    expectations.expect("pool", "slot-b", "11", 0);
    expect(expectations.met("pool", version, 1)).toBe(false);
    cache.set("slot-a", "12"); // the grant reached the cache
    expect(expectations.met("pool", version, 2)).toBe(false);
    cache.delete("slot-b"); // deleted meanwhile: nothing to wait for
    expect(expectations.met("pool", version, 3)).toBe(true);
  });

  it("keeps owners apart", () => {
    const expectations = new CacheExpectations();
    expectations.expect("p1", "slot-a", "10", 0);
    expect(expectations.met("p2", () => "10", 0)).toBe(true);
    expect(expectations.met("p1", () => "10", 0)).toBe(false);
  });

  it("gives up on a write the cache never shows after the timeout", () => {
    const expectations = new CacheExpectations(1_000);
    expectations.expect("pool", "slot-a", "10", 0);
    expect(expectations.met("pool", () => "10", 999)).toBe(false);
    expect(expectations.met("pool", () => "10", 1_001)).toBe(true);
  });
});
