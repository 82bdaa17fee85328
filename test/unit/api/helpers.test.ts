import { describe, expect, it } from "vitest";
import { poolAdmitsNamespace, poolZoneSummary, totalSlots } from "../../../src/api/index.ts";

describe("pool helpers", () => {
  it("summarise free and total slots by zone for kubectl get", () => {
    expect(
      poolZoneSummary([
        { name: "zone-a", slots: 2, free: 0 },
        { name: "zone-b", slots: 2, free: 1 },
        { name: "zone-c" },
      ]),
    ).toBe("zone-a:0/2,zone-b:1/2,zone-c:0/0");
  });

  it("admit the listed namespaces, every namespace for *, and none by default", () => {
    expect(poolAdmitsNamespace({ allowedNamespaces: ["tenants"] }, "tenants")).toBe(true);
    expect(poolAdmitsNamespace({ allowedNamespaces: ["tenants"] }, "storage")).toBe(false);
    expect(poolAdmitsNamespace({ allowedNamespaces: ["*"] }, "storage")).toBe(true);
    expect(poolAdmitsNamespace({ allowedNamespaces: [] }, "tenants")).toBe(false);
  });

  it("count slots over all zones", () => {
    expect(
      totalSlots({
        zones: [
          { name: "a", slots: 2 },
          { name: "b", slots: 0 },
          { name: "c", slots: 3 },
        ],
      }),
    ).toBe(5);
  });
});
