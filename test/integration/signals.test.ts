import { describe, expect, it } from "vitest";
import { GROUP, POOL_PLURAL, VERSION } from "../../src/api/index.ts";
import { mergePatchOptions } from "../../src/kube/client.ts";
import { neverReadyImage } from "../cluster/stages.ts";
import {
  createService,
  deleteService,
  getService,
  setHeadImage,
  TEST_IMAGE,
  waitForFailover,
  waitForServing,
} from "../support/failover.ts";
import { eventually, isPodReady, makePodNotReady, testClient } from "../support/kube.ts";
import { metricValue } from "../support/operator.ts";
import { operatorSuite } from "../support/operator-suite.ts";
import { deletePool } from "../support/pools.ts";
import {
  chartAlertRules,
  expectedAnnotations,
  operatorTargetLabels,
  promtoolTestRules,
  seriesFromScrapes,
  type AlertTest,
} from "../support/prometheus.ts";

// The operator's signals on the real test cluster, and the chart's alert rules evaluated on them by
// Prometheus' own engine (promtool test rules): the operator's /metrics is scraped during a failover
// stuck for lack of capacity and during one whose new head never gets Ready, and those samples,
// with the labels a scrape adds, are the rules' input series.

const client = testClient();
const suite = operatorSuite("sig");
const { world } = suite;

/** A scrape of the operator once `ready` holds for it. */
const scrapeWhen = (what: string, ready: (text: string) => boolean) =>
  eventually(what, async () => {
    const text = await suite.operator().metrics();
    return ready(text) && text;
  });

const SERVICE_SERIES = [
  "understudy_storage_service_phase",
  "understudy_storage_service_head_ready",
  "understudy_storage_service_failover_in_progress",
  "understudy_storage_service_failover_age_seconds",
  "understudy_storage_service_epoch",
  "understudy_failovers_total",
];

const firing = (
  rules: ReturnType<typeof chartAlertRules>,
  alertname: string,
  evalTime: string,
  labels: Record<string, string>,
): AlertTest => ({
  eval_time: evalTime,
  alertname,
  exp_alerts: [
    {
      exp_labels: { severity: "critical", ...labels },
      exp_annotations: expectedAnnotations(rules, alertname, labels),
    },
  ],
});
const silent = (alertname: string, evalTime: string): AlertTest => ({
  eval_time: evalTime,
  alertname,
  exp_alerts: [],
});

describe("a failover stuck for lack of capacity", () => {
  it("shows in the service's metrics, and the chart's stuck and no-head alerts fire on the scraped samples", async () => {
    const { pool, ns } = await world({ "zone-b": 0 });
    await createService(client, suite.scope, ns, "kv", pool);
    await waitForServing(client, ns, "kv", 1);
    const kv = { service_namespace: ns, service_name: "kv", pool };

    const serving = await scrapeWhen(
      "the head ready",
      (t) => metricValue(t, "understudy_storage_service_head_ready", kv) === 1,
    );
    expect(metricValue(serving, "understudy_storage_service_failover_in_progress", kv)).toBe(0);
    expect(metricValue(serving, "understudy_storage_service_epoch", kv)).toBe(1);

    await makePodNotReady(client, ns, "kv-head-1");
    await eventually("a failover waiting for a slot", async () => {
      const s = await getService(client, ns, "kv");
      return s.status?.failover?.step === "Detected" && s.status.phase === "FailingOver";
    });
    const stuck = await scrapeWhen(
      "the failover in the metrics",
      (t) => metricValue(t, "understudy_storage_service_failover_in_progress", kv) === 1,
    );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const later = await suite.operator().metrics();
    expect(metricValue(stuck, "understudy_storage_service_head_ready", kv)).toBe(0);
    expect(metricValue(stuck, "understudy_storage_service_phase", { ...kv, phase: "FailingOver" })).toBe(1);
    expect(metricValue(stuck, "understudy_storage_service_phase", { ...kv, phase: "Ready" })).toBe(0);
    // The age is an age: it rises with the clock while the failover waits, with no reconcile.
    const age1 = metricValue(stuck, "understudy_storage_service_failover_age_seconds", kv)!;
    const age2 = metricValue(later, "understudy_storage_service_failover_age_seconds", kv)!;
    expect(age2 - age1).toBeGreaterThanOrEqual(1.4);
    expect(age2).toBeLessThan(60);

    // Scraped at 0m, 1m and 2m of the rules' clock, then the state holds (the age going on ageing).
    const rules = chartAlertRules();
    const input = seriesFromScrapes([serving, stuck, later], {
      names: SERVICE_SERIES,
      only: kv,
      targetLabels: operatorTargetLabels(suite.operatorNamespace()),
      hold: 12,
      growing: { understudy_storage_service_failover_age_seconds: 60 },
    });
    expect(input.some((s) => s.series.includes(`namespace="${suite.operatorNamespace()}"`))).toBe(true);
    const output = promtoolTestRules(rules, input, [
      silent("UnderstudyServiceWithoutHead", "2m"),
      firing(rules, "UnderstudyServiceWithoutHead", "4m", kv),
      silent("UnderstudyFailoverStuck", "6m"),
      firing(rules, "UnderstudyFailoverStuck", "8m", kv),
      silent("UnderstudyFailoverFailed", "8m"),
    ]);
    expect(output).toMatch(/SUCCESS/);

    // Capacity comes: the failover finishes and the signals say so.
    await client.custom.patchClusterCustomObject(
      {
        group: GROUP,
        version: VERSION,
        plural: POOL_PLURAL,
        name: pool,
        body: { spec: { zones: [{ name: "zone-b", slots: 1 }] } },
      },
      mergePatchOptions,
    );
    await waitForFailover(client, ns, "kv", 1);
    const done = await scrapeWhen(
      "the failover done in the metrics",
      (t) =>
        metricValue(t, "understudy_storage_service_failover_in_progress", kv) === 0 &&
        metricValue(t, "understudy_storage_service_head_ready", kv) === 1,
    );
    expect(metricValue(done, "understudy_storage_service_failover_age_seconds", kv)).toBe(0);
    expect(
      metricValue(done, "understudy_storage_service_last_failover_duration_seconds", kv),
    ).toBeGreaterThan(age2);
    expect(metricValue(done, "understudy_storage_service_epoch", kv)).toBe(2);
    expect(
      metricValue(done, "understudy_failovers_total", { ...kv, reason: "PodNotReady", outcome: "Succeeded" }),
    ).toBe(1);
    expect(
      metricValue(done, "understudy_failover_switch_seconds_count", { ...kv, reason: "PodNotReady" }),
    ).toBe(1);
  });
});

describe("a failover that gives its slot up", () => {
  it("counts the attempt as SlotAbandoned, UnderstudyFailoverFailed fires on it, and deleting the service and pool removes their series", async () => {
    const { pool, ns } = await world({ "zone-b": 1, "zone-c": 1 }, 2);
    await createService(client, suite.scope, ns, "kv", pool, { failover: { headStartDeadlineSeconds: 5 } });
    await waitForServing(client, ns, "kv", 1);
    const kv = { service_namespace: ns, service_name: "kv", pool };
    const abandoned = { ...kv, reason: "ImageRollout", outcome: "SlotAbandoned" };

    // A new head image, rolled out as a switchover, whose heads never get Ready.
    await setHeadImage(client, ns, "kv", neverReadyImage);
    await eventually("kv-head-2 Running but not Ready", async () => {
      const pod = await client.core.readNamespacedPod({ name: "kv-head-2", namespace: ns });
      return pod.status?.phase === "Running" && !isPodReady(pod);
    });
    // While the run is in progress, its outcomes are at 0.
    const before = await suite.operator().metrics();
    expect(metricValue(before, "understudy_failovers_total", abandoned)).toBe(0);
    await setHeadImage(client, ns, "kv", TEST_IMAGE);
    const after = await scrapeWhen(
      "the attempt given up",
      (t) => metricValue(t, "understudy_failovers_total", abandoned) === 1,
    );

    const rules = chartAlertRules();
    const input = seriesFromScrapes([before, after], {
      names: SERVICE_SERIES,
      only: kv,
      targetLabels: operatorTargetLabels(suite.operatorNamespace()),
      hold: 20,
    });
    const output = promtoolTestRules(rules, input, [
      silent("UnderstudyFailoverFailed", "0m"),
      firing(rules, "UnderstudyFailoverFailed", "5m", abandoned),
      silent("UnderstudyFailoverFailed", "20m"),
    ]);
    expect(output).toMatch(/SUCCESS/);

    const service = await waitForFailover(client, ns, "kv", 1);
    expect(service.status!.lastFailover!.abandonedSlots).toHaveLength(1);

    // Deleted: the service's series go, then the pool's.
    await deleteService(client, ns, "kv");
    const gone = await scrapeWhen(
      "the service's series removed",
      (t) => !t.includes(`service_namespace="${ns}"`),
    );
    expect(gone).toContain(`pool="${pool}"`);
    await deletePool(client, pool);
    await scrapeWhen("the pool's series removed", (t) => !t.includes(`pool="${pool}"`));
  });
});
