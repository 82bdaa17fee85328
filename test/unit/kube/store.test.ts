import { describe, expect, it } from "vitest";
import { Store, type Indexer } from "../../../src/kube/store.ts";

interface Item {
  name: string;
  group?: string;
}

const byGroup: Indexer<Item> = { name: "group", keyOf: (i) => i.group };
const names = (items: readonly Item[]) => items.map((i) => i.name).sort();

describe("Store", () => {
  it("builds an index on first use from what it holds, then follows every change", () => {
    const store = new Store<Item>();
    store.set("a", { name: "a", group: "x" });
    store.set("b", { name: "b", group: "y" });
    store.set("c", { name: "c" });
    expect(names(store.byIndex(byGroup, "x"))).toEqual(["a"]);

    store.set("c", { name: "c", group: "x" });
    store.set("a", { name: "a", group: "y" });
    expect(names(store.byIndex(byGroup, "x"))).toEqual(["c"]);
    expect(names(store.byIndex(byGroup, "y"))).toEqual(["a", "b"]);

    store.delete("b");
    store.set("c", { name: "c" });
    expect(names(store.byIndex(byGroup, "y"))).toEqual(["a"]);
    expect(store.byIndex(byGroup, "x")).toEqual([]);
    expect(store.delete("b")).toBe(false);
  });

  it("hands out the same group until a member changes, and a new one after", () => {
    const store = new Store<Item>();
    store.set("a", { name: "a", group: "x" });
    store.set("b", { name: "b", group: "y" });
    const x = store.byIndex(byGroup, "x");
    const y = store.byIndex(byGroup, "y");
    store.set("b", { name: "b", group: "y" });
    expect(store.byIndex(byGroup, "x")).toBe(x);
    const y2 = store.byIndex(byGroup, "y");
    expect(y2).not.toBe(y);
    expect(y2[0]).toBe(store.get("b"));
  });

  it("keeps two indexes apart, each by its definition", () => {
    const store = new Store<Item>();
    const byName: Indexer<Item> = { name: "group", keyOf: (i) => i.name };
    store.set("a", { name: "a", group: "x" });
    expect(names(store.byIndex(byGroup, "x"))).toEqual(["a"]);
    expect(names(store.byIndex(byName, "a"))).toEqual(["a"]);
    expect(store.byIndex(byName, "x")).toEqual([]);
  });
});
