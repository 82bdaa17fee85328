import { describe, expect, it } from "vitest";
import { certificateAction, renewalTime } from "../../../src/decisions/certificate-renewal.ts";

const DAY = 86_400_000;
const start = new Date("2026-01-01T00:00:00Z");
const cert = (overrides: Partial<Parameters<typeof certificateAction>[0] & object> = {}) => ({
  notBefore: start,
  notAfter: new Date(start.getTime() + 90 * DAY),
  dnsNames: ["kv-head.ns.svc", "kv-server-zone-a-0.kv-server-zone-a.ns.svc"],
  signedByCa: true,
  ...overrides,
});
const names = ["kv-head.ns.svc", "kv-server-zone-a-0.kv-server-zone-a.ns.svc"];

describe("certificateAction", () => {
  it("issues when there is no certificate", () => {
    expect(certificateAction(undefined, names, start)).toMatchObject({ action: "issue" });
  });

  it("keeps a certificate until a third of its life is left, then renews", () => {
    const renewAt = renewalTime(start, new Date(start.getTime() + 90 * DAY));
    expect(renewAt.getTime()).toBe(start.getTime() + 60 * DAY);
    expect(certificateAction(cert(), names, new Date(renewAt.getTime() - 1))).toEqual({
      action: "keep",
      renewAt,
    });
    expect(certificateAction(cert(), names, renewAt)).toMatchObject({ action: "issue" });
    expect(certificateAction(cert(), names, new Date(start.getTime() + 100 * DAY))).toMatchObject({
      action: "issue",
    });
  });

  it("issues when a name the service needs is missing (servers scaled up)", () => {
    const more = [...names, "kv-server-zone-a-1.kv-server-zone-a.ns.svc"];
    const decision = certificateAction(cert(), more, start);
    expect(decision).toMatchObject({ action: "issue" });
    expect(decision.action === "issue" && decision.reason).toContain("kv-server-zone-a-1");
  });

  it("issues when the certificate is not from the service's CA", () => {
    expect(certificateAction(cert({ signedByCa: false }), names, start)).toMatchObject({ action: "issue" });
  });
});
