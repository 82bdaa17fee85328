// Alert rules evaluated by Prometheus' own engine: `promtool test rules` (built by
// test/cluster/build-binaries.sh) over series made from real scrapes of the operator.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments, stringify } from "yaml";
import { CHART_DIR, MIN_KUBE_VERSION, helmBinary } from "../../scripts/generate-manifests.ts";
import { tools } from "../cluster/config.ts";
import { parseSamples } from "./operator.ts";

const root = join(import.meta.dirname, "../..");

export function promtoolBinary(): string {
  const promtool = process.env.PROMTOOL ?? tools.promtool;
  if (!existsSync(promtool))
    throw new Error(
      `promtool not found at ${promtool}: run \`bash test/cluster/build-binaries.sh promtool\` or set PROMTOOL`,
    );
  return promtool;
}

export interface RuleGroups {
  groups: { name: string; rules: { alert?: string; annotations?: Record<string, string> }[] }[];
}

/** The rule groups of the chart's PrometheusRule, as `helm template` renders it. */
export function chartAlertRules(): RuleGroups {
  const out = execFileSync(
    helmBinary(),
    [
      "template",
      "understudy",
      join(root, CHART_DIR),
      "--kube-version",
      MIN_KUBE_VERSION,
      "--set",
      "metrics.prometheusRule.enabled=true",
      "--show-only",
      "templates/prometheusrule.yaml",
    ],
    { encoding: "utf8" },
  );
  const rule = parseAllDocuments(out)
    .map((d) => d.toJS() as { kind?: string; spec?: RuleGroups } | null)
    .find((o) => o?.kind === "PrometheusRule");
  if (!rule?.spec) throw new Error("the chart rendered no PrometheusRule");
  return rule.spec;
}

/** Labels a Prometheus scrape of the operator adds to every sample (a ServiceMonitor's target). */
export const operatorTargetLabels = (namespace: string): Record<string, string> => ({
  job: "understudy-metrics",
  instance: "10.0.0.7:8080",
  namespace,
  service: "understudy-metrics",
  pod: "understudy-7d9f8-abcde",
  container: "operator",
  endpoint: "metrics",
});

export interface InputSeries {
  series: string;
  values: string;
}

/**
 * Input series for promtool from successive scrapes, one per evaluation interval, as a scrape would
 * store them (with the target's labels), then held for `hold` more intervals: gauges named in
 * `growing` rise by the given amount per interval (an age goes on ageing), every other series keeps
 * its last scraped value. A series absent from a scrape is missing (`_`) at that interval.
 */
export function seriesFromScrapes(
  scrapes: readonly string[],
  options: {
    names: readonly string[];
    /** Only samples with these labels (the test's own service: other runs' may share the operator's view). */
    only: Record<string, string>;
    targetLabels: Record<string, string>;
    hold: number;
    growing?: Record<string, number>;
  },
): InputSeries[] {
  const bySeries = new Map<string, (number | undefined)[]>();
  const parsed = scrapes.map((text) =>
    parseSamples(text).filter(
      (s) =>
        options.names.includes(s.name) &&
        Object.entries(options.only).every(([name, value]) => s.labels[name] === value),
    ),
  );
  parsed.forEach((samples, i) => {
    for (const sample of samples) {
      const labels = { ...sample.labels, ...options.targetLabels };
      const key = `${sample.name}{${Object.entries(labels)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(",")}}`;
      const values = bySeries.get(key) ?? new Array<number | undefined>(scrapes.length).fill(undefined);
      values[i] = sample.value;
      bySeries.set(key, values);
    }
  });
  return [...bySeries].map(([series, values]) => {
    const name = series.slice(0, series.indexOf("{"));
    const last = values.at(-1);
    const head = values.slice(0, -1).map((v) => (v === undefined ? "_" : String(v)));
    const tail =
      last === undefined
        ? `_x${options.hold}`
        : `${last}${options.growing?.[name] !== undefined ? `+${options.growing[name]}` : ""}x${options.hold}`;
    return { series, values: [...head, tail].join(" ") };
  });
}

export interface AlertTest {
  eval_time: string;
  alertname: string;
  exp_alerts: { exp_labels: Record<string, string>; exp_annotations: Record<string, string> }[];
}

/** Runs `promtool test rules` over the rule groups; resolves to its output, throws it on failure. */
export function promtoolTestRules(
  rules: RuleGroups,
  inputSeries: readonly InputSeries[],
  alertTests: readonly AlertTest[],
  intervalMinutes = 1,
): string {
  const dir = mkdtempSync(join(tmpdir(), "understudy-promtool-"));
  try {
    writeFileSync(join(dir, "rules.yaml"), stringify(rules));
    writeFileSync(
      join(dir, "test.yaml"),
      stringify({
        rule_files: ["rules.yaml"],
        evaluation_interval: `${intervalMinutes}m`,
        tests: [
          {
            interval: `${intervalMinutes}m`,
            input_series: inputSeries,
            alert_rule_test: alertTests,
          },
        ],
      }),
    );
    const result = spawnSync(promtoolBinary(), ["test", "rules", "test.yaml"], {
      cwd: dir,
      encoding: "utf8",
    });
    const output = `${result.stdout}${result.stderr}`;
    if (result.status !== 0) throw new Error(`promtool test rules failed:\n${output}`);
    return output;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** An alert's annotations with `{{ $labels.x }}` filled in, as Prometheus expands them. */
export function expectedAnnotations(
  rules: RuleGroups,
  alert: string,
  labels: Record<string, string>,
): Record<string, string> {
  const rule = rules.groups.flatMap((g) => g.rules).find((r) => r.alert === alert);
  if (!rule) throw new Error(`no alert ${alert} in the rules`);
  return Object.fromEntries(
    Object.entries(rule.annotations ?? {}).map(([key, template]) => [
      key,
      template.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, name: string) => labels[name] ?? ""),
    ]),
  );
}
