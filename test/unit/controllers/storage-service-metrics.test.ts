import * as prom from "prom-client";
import { describe, expect, it } from "vitest";
import type { StorageService } from "../../../src/api/index.ts";
import { failoverMetrics, serviceSignals } from "../../../src/controllers/storage-service/metrics.ts";
import { ledgerMetrics } from "../../../src/controllers/metrics.ts";
import { OperatorMetrics } from "../../../src/operator/metrics.ts";
import { metricValue } from "../../support/operator.ts";
import { service } from "./fixtures.ts";

// The storage service metrics as a scrape renders them: each service's state read from its status,
// labels that a scrape's target labels cannot overwrite, and no series left of what was deleted.

const T0 = Date.parse("2026-01-01T00:00:00Z");

function withStatus(status: Record<string, unknown>, name = "kv"): StorageService {
  const s = service();
  return { ...s, metadata: { ...s.metadata, name }, status: status as StorageService["status"] };
}

const failingOver = withStatus({
  phase: "FailingOver",
  epoch: 4,
  conditions: [{ type: "HeadAvailable", status: "False", reason: "PodNotReady", message: "x" }],
  failover: { step: "Detected", startedAt: new Date(T0).toISOString(), reason: "PodNotReady", epoch: 4 },
  lastFailover: { durationMilliseconds: 2500 },
});

describe("serviceSignals", () => {
  it("reads phase, head, the failover in progress with its age, the last failover and the epoch from status", () => {
    expect(serviceSignals(failingOver, T0 + 42_000)).toEqual({
      labels: { service_namespace: "storage", service_name: "kv", pool: "contingency" },
      phase: "FailingOver",
      headReady: false,
      failoverInProgress: true,
      failoverAgeSeconds: 42,
      failoverReason: "PodNotReady",
      lastFailoverSeconds: 2.5,
      epoch: 4,
    });
  });

  it("a serving service without a failover: head ready, age 0", () => {
    const ready = withStatus({
      phase: "Ready",
      epoch: 1,
      conditions: [{ type: "HeadAvailable", status: "True", reason: "HeadServing", message: "x" }],
    });
    expect(serviceSignals(ready, T0)).toMatchObject({
      headReady: true,
      failoverInProgress: false,
      failoverAgeSeconds: 0,
      lastFailoverSeconds: undefined,
    });
  });
});

describe("failoverMetrics", () => {
  it("exports each service's state at scrape time, labelled service_namespace/service_name/pool", async () => {
    const registry = new prom.Registry();
    let now = T0 + 10_000;
    let services: StorageService[] = [failingOver];
    failoverMetrics(registry, { services: () => services, now: () => now });
    const kv = { service_namespace: "storage", service_name: "kv", pool: "contingency" };

    let text = await registry.metrics();
    expect(metricValue(text, "understudy_storage_service_phase", { ...kv, phase: "FailingOver" })).toBe(1);
    expect(metricValue(text, "understudy_storage_service_phase", { ...kv, phase: "Ready" })).toBe(0);
    expect(metricValue(text, "understudy_storage_service_head_ready", kv)).toBe(0);
    expect(metricValue(text, "understudy_storage_service_failover_in_progress", kv)).toBe(1);
    expect(metricValue(text, "understudy_storage_service_failover_age_seconds", kv)).toBe(10);
    expect(metricValue(text, "understudy_storage_service_last_failover_duration_seconds", kv)).toBe(2.5);
    expect(metricValue(text, "understudy_storage_service_epoch", kv)).toBe(4);
    expect(text).not.toMatch(/understudy_storage_service_epoch\{[^}]*\bnamespace=/);
    // The failover in progress has its outcomes at 0, so the first to end is an increase.
    for (const outcome of ["Succeeded", "ReplenishDeferred", "SlotAbandoned"])
      expect(metricValue(text, "understudy_failovers_total", { ...kv, reason: "PodNotReady", outcome })).toBe(
        0,
      );

    now += 5_000;
    text = await registry.metrics();
    expect(metricValue(text, "understudy_storage_service_failover_age_seconds", kv)).toBe(15);

    // Gone from the cache: its state series go with it (its counters go when the reconcile forgets it).
    services = [];
    text = await registry.metrics();
    expect(text.split("\n").filter((l) => l.includes('service_name="kv"'))).toEqual(
      expect.not.arrayContaining([expect.stringMatching(/^understudy_storage_service_/)]),
    );
    expect(metricValue(text, "understudy_storage_service_epoch", kv)).toBeUndefined();
  });

  it("counts failovers and switch times per service, and forgets a deleted service's series", async () => {
    const registry = new prom.Registry();
    const metrics = failoverMetrics(registry, { services: () => [], now: () => T0 });
    const kv = { service_namespace: "storage", service_name: "kv", pool: "contingency" };
    const other = { ...kv, service_name: "other" };
    metrics.failover(kv, "PodNotReady", "SlotAbandoned");
    metrics.failover(kv, "PodNotReady", "Succeeded");
    metrics.switched(kv, "PodNotReady", 1.5);
    metrics.failover(other, "Manual", "Succeeded");
    let text = await registry.metrics();
    expect(
      metricValue(text, "understudy_failovers_total", {
        ...kv,
        reason: "PodNotReady",
        outcome: "SlotAbandoned",
      }),
    ).toBe(1);
    expect(metricValue(text, "understudy_failover_switch_seconds_count", kv)).toBe(1);

    await metrics.forget("storage", "kv");
    text = await registry.metrics();
    expect(text).not.toContain('service_name="kv"');
    expect(metricValue(text, "understudy_failovers_total", { ...other, outcome: "Succeeded" })).toBe(1);
  });
});

describe("ledgerMetrics", () => {
  it("forgets every series of a deleted pool, and only those", async () => {
    const operator = new OperatorMetrics({ defaultMetrics: false });
    const ledger = ledgerMetrics(operator);
    for (const pool of ["gone", "kept"]) {
      ledger.setSlots(pool, "zone-a", "free", 2);
      ledger.granted(pool);
      ledger.revoked(pool, "Failover");
    }
    await ledger.forgetPool("gone");
    const { body } = await operator.render();
    expect(body).not.toContain('pool="gone"');
    expect(metricValue(body, "understudy_slots", { pool: "kept", zone: "zone-a", state: "free" })).toBe(2);
    expect(metricValue(body, "understudy_leases_granted_total", { pool: "kept" })).toBe(1);
    expect(metricValue(body, "understudy_leases_revoked_total", { pool: "kept" })).toBe(1);
  });
});
