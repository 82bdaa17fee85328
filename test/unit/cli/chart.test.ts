import type * as k8s from "@kubernetes/client-node";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import {
  CHART_DIR,
  MANIFESTS_NAMESPACE,
  MIN_KUBE_VERSION,
  generatedFiles,
  helmBinary,
} from "../../../scripts/generate-manifests.ts";

// The Helm chart as `helm template` renders it, and the files generated from it: the committed
// plain manifests and chart inputs are exactly what the generator writes today, the defaults are
// the secure, highly available install the docs promise, and the alerts and dashboard speak of
// metrics the docs list.

const root = join(import.meta.dirname, "../../..");
const read = (path: string) => readFileSync(join(root, path), "utf8");
const helm = helmBinary();

type Obj = k8s.KubernetesObject & Record<string, unknown>;

function template(...set: string[]): Obj[] {
  const out = execFileSync(
    helm,
    [
      "template",
      "understudy",
      join(root, CHART_DIR),
      "-n",
      "ops",
      "--kube-version",
      MIN_KUBE_VERSION,
      ...set.flatMap((s) => ["--set", s]),
    ],
    { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
  );
  return parseAllDocuments(out)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
}

function templateFails(...set: string[]): string {
  try {
    template(...set);
  } catch (err) {
    return String((err as { stderr?: string }).stderr ?? err);
  }
  throw new Error(`helm template accepted ${set.join(" ")}`);
}

const find = <T>(objects: Obj[], kind: string, name?: string) =>
  objects.find((o) => o.kind === kind && (name === undefined || o.metadata?.name === name)) as T | undefined;

const defaults = template();
const deployment = find<k8s.V1Deployment>(defaults, "Deployment")!;
const pod = deployment.spec!.template.spec!;
const container = pod.containers[0]!;
const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
/** The value the rendered operator container gives the variable `name`; undefined when it sets none. */
const operatorEnv = (objects: Obj[], name: string) =>
  find<k8s.V1Deployment>(objects, "Deployment")!.spec!.template.spec!.containers[0]!.env?.find(
    (e) => e.name === name,
  )?.value;

describe("generated files", () => {
  it("are committed as the generator writes them (run npm run generate:manifests)", () => {
    for (const file of generatedFiles(helm)) {
      expect(read(file.path), file.path).toBe(file.content);
    }
  });

  it("carry package.json's version as the chart's appVersion and the image tag", () => {
    const { version } = JSON.parse(read("package.json")) as { version: string };
    expect((parse(read(`${CHART_DIR}/Chart.yaml`)) as { appVersion: string }).appVersion).toBe(version);
    expect(container.image).toBe(`understudy:${version}`);
  });

  it("put the plain manifests in their own namespace, created first", () => {
    const objects = parseAllDocuments(read("deploy/manifests/understudy.yaml"))
      .map((d) => d.toJS() as Obj | null)
      .filter((o): o is Obj => o !== null);
    expect(objects[0]).toMatchObject({ kind: "Namespace", metadata: { name: MANIFESTS_NAMESPACE } });
    for (const o of objects.filter((o) => o.metadata?.namespace))
      expect([MANIFESTS_NAMESPACE, "kube-node-lease"]).toContain(o.metadata!.namespace);
    expect(objects.some((o) => o.kind === "CustomResourceDefinition")).toBe(false);
  });
});

describe("the CRDs", () => {
  const crds = defaults.filter((o) => o.kind === "CustomResourceDefinition");

  it("are the chart's templates, exactly crds/ with the keep policy, so that helm upgrade updates them", () => {
    const files = readdirSync(join(root, "crds")).filter((f) => f.endsWith(".yaml"));
    expect(crds.map((c) => `${c.metadata!.name}.yaml`).sort()).toEqual(files.sort());
    for (const crd of crds) {
      const { annotations, ...metadata } = crd.metadata!;
      expect(annotations).toEqual({ "helm.sh/resource-policy": "keep" });
      expect({ ...crd, metadata }).toEqual(parse(read(`crds/${crd.metadata!.name}.yaml`)));
    }
  });

  it("are left out with crds.create=false", () => {
    expect(template("crds.create=false").filter((o) => o.kind === "CustomResourceDefinition")).toEqual([]);
    expect(templateFails("crds.create=yes")).toContain("/crds/create");
  });
});

describe("the operator Deployment by default", () => {
  it("runs two replicas under leader election, spread over zones", () => {
    expect(deployment.spec!.replicas).toBe(2);
    expect(env.UNDERSTUDY_LEADER_ELECT).toBe("true");
    expect(env.UNDERSTUDY_LEADER_ELECTION_IDENTITY).toEqual({ fieldRef: { fieldPath: "metadata.name" } });
    expect(env.UNDERSTUDY_NAMESPACE).toEqual({ fieldRef: { fieldPath: "metadata.namespace" } });
    expect(pod.topologySpreadConstraints?.map((c) => c.topologyKey)).toContain("topology.kubernetes.io/zone");
    expect(find(defaults, "PodDisruptionBudget")).toBeDefined();
  });

  it("is probed on /healthz and /readyz of the metrics port", () => {
    expect(container.ports).toEqual([{ name: "metrics", containerPort: 8080, protocol: "TCP" }]);
    expect(env.UNDERSTUDY_METRICS_BIND_ADDRESS).toBe(":8080");
    expect(container.livenessProbe?.httpGet).toEqual({ path: "/healthz", port: "metrics" });
    expect(container.readinessProbe?.httpGet).toEqual({ path: "/readyz", port: "metrics" });
  });

  it("meets the restricted Pod Security Standard with a read-only root filesystem", () => {
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(container.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(container.resources?.requests).toEqual({ cpu: "100m", memory: "128Mi" });
    expect(container.args).toEqual(["dist/src/operator/main.js"]);
  });

  it("gives the pod time to finish reconciles in flight on shutdown", () => {
    expect(env.UNDERSTUDY_SHUTDOWN_TIMEOUT).toBe("30s");
    expect(pod.terminationGracePeriodSeconds).toBe(40);
  });
});

describe("RBAC", () => {
  const clusterRole = find<k8s.V1ClusterRole>(defaults, "ClusterRole")!;
  const roles = defaults.filter((o) => o.kind === "Role") as unknown as k8s.V1Role[];

  it("names every resource and verb: no wildcards", () => {
    for (const rule of [...clusterRole.rules!, ...roles.flatMap((r) => r.rules!)]) {
      expect(rule.verbs).not.toContain("*");
      expect(rule.resources).not.toContain("*");
      expect(rule.apiGroups).not.toContain("*");
    }
  });

  it("grants Leases only in the operator's namespace (read-write) and kube-node-lease (read)", () => {
    const grants = (r: { rules?: k8s.V1PolicyRule[] }) =>
      r.rules!.filter((rule) => rule.resources!.includes("leases")).flatMap((rule) => rule.verbs);
    expect(grants(clusterRole)).toEqual([]);
    const byNamespace = Object.fromEntries(roles.map((r) => [r.metadata!.namespace, grants(r)]));
    expect(byNamespace["kube-node-lease"]).toEqual(["list", "watch"]);
    expect(byNamespace.ops).toEqual(expect.arrayContaining(["create", "update", "delete"]));
  });

  it("binds each role to the chart's ServiceAccount", () => {
    const sa = find<k8s.V1ServiceAccount>(defaults, "ServiceAccount")!;
    expect(pod.serviceAccountName).toBe(sa.metadata!.name);
    const bindings = defaults.filter(
      (o) => o.kind === "RoleBinding" || o.kind === "ClusterRoleBinding",
    ) as unknown as k8s.V1RoleBinding[];
    expect(bindings).toHaveLength(3);
    for (const b of bindings)
      expect(b.subjects).toEqual([{ kind: "ServiceAccount", name: sa.metadata!.name, namespace: "ops" }]);
  });
});

describe("monitoring", () => {
  const alerts = parse(read("deploy/monitoring/alerts.yaml")) as {
    groups: {
      name: string;
      rules: {
        alert: string;
        expr: string;
        labels: Record<string, string>;
        annotations: Record<string, string>;
      }[];
    }[];
  };
  const dashboard = JSON.parse(read("deploy/monitoring/grafana-dashboard.json")) as {
    panels: { type: string; title: string; targets?: { expr: string }[] }[];
  };
  // The metrics table of docs/OPERATIONS.md: | `name` | type | labels | meaning |
  const documented = new Set(
    [...read("docs/OPERATIONS.md").matchAll(/^\| `(understudy_\w+)` \|/gm)].map((m) => m[1]),
  );
  const metricsIn = (expr: string) =>
    [...expr.matchAll(/\b(understudy_\w+)/g)].map((m) => m[1]!.replace(/_(bucket|count|sum)$/, ""));

  it("are optional: no ServiceMonitor, PrometheusRule or dashboard unless asked for", () => {
    for (const kind of ["ServiceMonitor", "PodMonitor", "PrometheusRule", "ConfigMap"])
      expect(find(defaults, kind)).toBeUndefined();
  });

  it("install the alert rules file as the PrometheusRule and the dashboard as a ConfigMap", () => {
    const objects = template(
      "metrics.serviceMonitor.enabled=true",
      "metrics.prometheusRule.enabled=true",
      "metrics.grafanaDashboard.enabled=true",
    );
    const rule = find<{ spec: unknown }>(objects, "PrometheusRule")!;
    expect(rule.spec).toEqual(alerts);
    const monitor = find<{ spec: { endpoints: { port: string }[] } }>(objects, "ServiceMonitor")!;
    expect(monitor.spec.endpoints[0]!.port).toBe("metrics");
    const dashboards = find<k8s.V1ConfigMap>(objects, "ConfigMap")!;
    expect(JSON.parse(dashboards.data!["understudy.json"]!)).toEqual(dashboard);
    expect(dashboards.metadata!.labels!.grafana_dashboard).toBe("1");
  });

  it("scrape head and server pods with a PodMonitor, labelled by their service", () => {
    type PodMonitor = {
      spec: {
        selector: { matchExpressions: { key: string; operator: string; values?: string[] }[] };
        namespaceSelector: { any?: boolean; matchNames?: string[] };
        podMetricsEndpoints: { port: string; relabelings: { targetLabel: string }[] }[];
      };
    };
    const monitor = find<PodMonitor>(template("metrics.podMonitor.enabled=true"), "PodMonitor")!;
    expect(monitor.spec.selector.matchExpressions).toContainEqual({
      key: "understudy.dev/role",
      operator: "In",
      values: ["head", "server"],
    });
    expect(monitor.spec.namespaceSelector).toEqual({ any: true });
    const endpoint = monitor.spec.podMetricsEndpoints[0]!;
    expect(endpoint.port).toBe("metrics");
    expect(endpoint.relabelings.map((r) => r.targetLabel)).toEqual(
      expect.arrayContaining(["service_namespace", "service_name", "role", "zone"]),
    );
    const scoped = find<PodMonitor>(
      template("metrics.podMonitor.enabled=true", "metrics.podMonitor.namespaces={storage}"),
      "PodMonitor",
    )!;
    expect(scoped.spec.namespaceSelector).toEqual({ matchNames: ["storage"] });
  });

  it("name services by labels a scrape's target labels cannot overwrite", () => {
    const exprs = alerts.groups.flatMap((g) => g.rules.map((r) => r.expr)).join("\n");
    expect(exprs).toContain("service_namespace, service_name, pool");
    expect(exprs).not.toMatch(/by \([^)]*\b(namespace|service|pod|name)\b[^)]*\)/);
  });

  it("alert on no contingency, failed failovers and a pool exhausted in a zone, each with a severity and a summary", () => {
    const rules = alerts.groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        "UnderstudyNoContingencyAvailable",
        "UnderstudyFailoverFailed",
        "UnderstudyPoolExhaustedInZone",
        "UnderstudyFailoverStuck",
        "UnderstudyServiceWithoutHead",
      ]),
    );
    for (const rule of rules) {
      expect(["critical", "warning"]).toContain(rule.labels.severity);
      expect(rule.annotations.summary).toBeTruthy();
      expect(rule.annotations.description).toBeTruthy();
    }
  });

  it("use only metrics listed in docs/OPERATIONS.md", () => {
    expect(documented.size).toBeGreaterThanOrEqual(9);
    const used = [
      ...alerts.groups.flatMap((g) => g.rules.flatMap((r) => metricsIn(r.expr))),
      ...dashboard.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => metricsIn(t.expr))),
    ];
    expect(used.length).toBeGreaterThan(0);
    for (const metric of used) expect(documented, metric).toContain(metric);
  });

  it("cover every documented operator metric in the dashboard", () => {
    const shown = new Set(
      dashboard.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => metricsIn(t.expr))),
    );
    for (const metric of documented)
      if (metric !== "understudy_reconcile_total") expect(shown, metric).toContain(metric);
  });
});

describe("the placeholder image", () => {
  const imageEnv = (objects: Obj[]) => operatorEnv(objects, "UNDERSTUDY_PLACEHOLDER_IMAGE");

  it("defaults to the pause image and is set from operator.placeholderImage", () => {
    expect(imageEnv(defaults)).toBe("registry.k8s.io/pause:3.10");
    expect(imageEnv(template("operator.placeholderImage=mirror.internal/pause:3.10"))).toBe(
      "mirror.internal/pause:3.10",
    );
  });
});

describe("Node's flags for the operator", () => {
  const nodeOptions = (objects: Obj[]) => operatorEnv(objects, "NODE_OPTIONS");

  it("keep the young generation at 8 MB by default, and can be set or left out", () => {
    expect(nodeOptions(defaults)).toBe("--max-semi-space-size=8");
    expect(nodeOptions(template("operator.nodeOptions=--max-semi-space-size=16"))).toBe(
      "--max-semi-space-size=16",
    );
    expect(nodeOptions(template("operator.nodeOptions="))).toBeUndefined();
  });
});

describe("values.schema.json", () => {
  it("refuses values the operator could not run with", () => {
    expect(templateFails("replicaCount=0")).toMatch(/replicaCount/);
    expect(templateFails("leaderElection.enabled=false")).toMatch(/leaderElection/);
    expect(templateFails("leaderElection.leaseDuration=fifteen")).toMatch(/leaseDuration/);
    expect(templateFails("operator.logLevel=verbose")).toMatch(/logLevel/);
    expect(templateFails("replicasCount=3")).toMatch(/replicasCount/);
  });

  it("allows one replica without leader election", () => {
    const objects = template("replicaCount=1", "leaderElection.enabled=false");
    const d = find<k8s.V1Deployment>(objects, "Deployment")!;
    expect(d.spec!.replicas).toBe(1);
    expect(operatorEnv(objects, "UNDERSTUDY_LEADER_ELECT")).toBe("false");
    expect(find(objects, "PodDisruptionBudget")).toBeUndefined();
  });
});
