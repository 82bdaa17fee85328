// `understudy report service|pool <name>`: a support bundle in one .tar.gz, as `kubectl cnpg report`
// makes one: the resource and everything the operator made for it, the Events about them, and the
// operator's logs. Collecting reads the API server; what goes in the archive is decided by
// reportEntries alone. Secrets are never read. Whatever cannot be read is named in problems.txt
// instead of failing the report: a support bundle is most needed when something is broken.
import type * as k8s from "@kubernetes/client-node";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import * as tar from "tar";
import { stringify } from "yaml";
import { labels, operatorPodLabels } from "../controllers/labels.ts";
import { serviceIdentity } from "../controllers/storage-service/names.ts";
import type { KubeClient } from "../kube/client.ts";
import { errorMessage } from "../kube/errors.ts";
import { VERSION } from "../version.ts";
import { getPool, getService, listClaims, listServices, listSlotLeases } from "./fetch.ts";

export const REPORT_KINDS = ["service", "pool"] as const;
export type ReportKind = (typeof REPORT_KINDS)[number];

export interface ReportTarget {
  kind: ReportKind;
  name: string;
  /** The service's namespace; pools are cluster-scoped. */
  namespace?: string;
}

export interface PodLog {
  namespace: string;
  pod: string;
  container: string;
  previous: boolean;
  text?: string;
  error?: string;
}

export interface Collected {
  objects: k8s.KubernetesObject[];
  events: k8s.CoreV1Event[];
  logs: PodLog[];
  /** What could not be read, and why. */
  problems: string[];
}

export interface ReportEntry {
  path: string;
  content: string;
}

/** A container log is cut to its last bytes: the report's size stays bounded. */
export const LOG_LIMIT_BYTES = 4 << 20;

/** The namespaced kinds the operator makes for a storage service, found by its service label. */
const SERVICE_KINDS = [
  ["v1", "Pod"],
  ["apps/v1", "StatefulSet"],
  ["v1", "Service"],
  ["v1", "ConfigMap"],
  ["v1", "PersistentVolumeClaim"],
  ["networking.k8s.io/v1", "NetworkPolicy"],
] as const;

const selector = (set: Record<string, string>) =>
  Object.entries(set)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");

/** Reads everything the report holds about `target`. Fails only when the target itself cannot be read. */
export async function collectReport(client: KubeClient, target: ReportTarget): Promise<Collected> {
  const collected: Collected = { objects: [], events: [], logs: [], problems: [] };
  const attempt = async <T>(what: string, read: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await read();
    } catch (err) {
      collected.problems.push(`${what}: ${errorMessage(err)}`);
      return undefined;
    }
  };
  const add = (...objects: k8s.KubernetesObject[]) => collected.objects.push(...objects);

  if (target.kind === "service") {
    const namespace = target.namespace!;
    const service = await getService(client, target.name, namespace);
    add(service);
    for (const [apiVersion, kind] of SERVICE_KINDS) {
      const list = await attempt(`${kind}s of the service`, () =>
        client.objects.list(
          apiVersion,
          kind,
          namespace,
          undefined,
          undefined,
          undefined,
          undefined,
          selector({ [labels.service]: target.name }),
        ),
      );
      add(...(list?.items ?? []).map((o) => ({ ...o, apiVersion, kind })));
    }
    const pool = service.spec?.pool;
    if (pool) {
      const found = await attempt(`its pool ${pool}`, () => getPool(client, pool));
      if (found) add(found);
      const holder = serviceIdentity({ namespace, name: target.name });
      const leases = await attempt(`the slot Leases of pool ${pool}`, () => listSlotLeases(client, pool));
      add(...(leases ?? []).filter((l) => l.spec?.holderIdentity === holder).map(asLease));
    }
  } else {
    add(await getPool(client, target.name));
    const leases = await attempt("the pool's slot Leases", () => listSlotLeases(client, target.name));
    add(...(leases ?? []).map(asLease));
    const pods = await attempt("the pool's pods", () =>
      client.core.listPodForAllNamespaces({ labelSelector: selector({ [labels.pool]: target.name }) }),
    );
    add(...(pods?.items ?? []).map(asPod));
    const claims = await attempt("the pool's claims", () => listClaims(client, undefined));
    add(...(claims ?? []).filter((c) => c.spec?.pool === target.name));
    const services = await attempt("the pool's storage services", () => listServices(client, undefined));
    add(...(services ?? []).filter((s) => s.spec?.pool === target.name));
  }

  // Events about any of these objects; those of cluster-scoped objects are kept in "default".
  const uids = new Set(collected.objects.map((o) => o.metadata?.uid).filter(Boolean));
  const namespaces = new Set(collected.objects.map((o) => o.metadata?.namespace ?? "default"));
  for (const namespace of [...namespaces].sort()) {
    const events = await attempt(`Events in ${namespace}`, () =>
      client.core.listNamespacedEvent({ namespace }),
    );
    collected.events.push(...(events?.items ?? []).filter((e) => uids.has(e.involvedObject.uid)));
  }

  // The operator's logs: its pods carry the chart's labels, in whichever namespace it runs.
  const operators = await attempt("the operator's pods", () =>
    client.core.listPodForAllNamespaces({ labelSelector: selector(operatorPodLabels) }),
  );
  for (const pod of operators?.items ?? []) {
    add(asPod(pod));
    const namespace = pod.metadata!.namespace!;
    const name = pod.metadata!.name!;
    for (const container of pod.spec?.containers ?? []) {
      const restarted = (pod.status?.containerStatuses ?? []).some(
        (s) => s.name === container.name && s.restartCount > 0,
      );
      for (const previous of restarted ? [true, false] : [false]) {
        const log: PodLog = { namespace, pod: name, container: container.name, previous };
        try {
          log.text = await client.core.readNamespacedPodLog({
            name,
            namespace,
            container: container.name,
            previous,
            limitBytes: LOG_LIMIT_BYTES,
          });
        } catch (err) {
          log.error = errorMessage(err);
        }
        collected.logs.push(log);
      }
    }
  }
  return collected;
}

// Items of a list come without their kind.
const asLease = (lease: k8s.V1Lease): k8s.KubernetesObject => ({
  ...lease,
  apiVersion: "coordination.k8s.io/v1",
  kind: "Lease",
});
const asPod = (pod: k8s.V1Pod): k8s.KubernetesObject => ({ ...pod, apiVersion: "v1", kind: "Pod" });

/** An object as the report shows it: plain data, without managedFields (noise, and large). */
function plain(object: k8s.KubernetesObject): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(object)) as { metadata?: Record<string, unknown> };
  delete copy.metadata?.managedFields;
  return copy;
}

const stamp = (iso: string) => iso.replace(/[-:]/g, "").replace(/\.\d+/, "");

/** The archive's top folder: understudy-report-<kind>-[<namespace>-]<name>-<UTC time>. */
export function reportName(target: ReportTarget, now: number): string {
  const who = [target.namespace, target.name].filter(Boolean).join("-");
  return `understudy-report-${target.kind}-${who}-${stamp(new Date(now).toISOString())}`;
}

const eventTime = (e: k8s.CoreV1Event) =>
  String(e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata.creationTimestamp ?? "");

/** What the archive holds, by path under its top folder. */
export function reportEntries(target: ReportTarget, collected: Collected, now: number): ReportEntry[] {
  const top = reportName(target, now);
  const seen = new Set<string>();
  const resources: ReportEntry[] = [];
  for (const object of collected.objects) {
    const path = `${top}/resources/${object.metadata?.namespace ?? "_cluster"}/${object.kind}-${object.metadata?.name}.yaml`;
    if (seen.has(path)) continue;
    seen.add(path);
    resources.push({ path, content: stringify(plain(object), { lineWidth: 0 }) });
  }
  const events = [...collected.events]
    .map((e) => plain(e as k8s.KubernetesObject) as unknown as k8s.CoreV1Event)
    .sort((a, b) => eventTime(a).localeCompare(eventTime(b)));
  const logs = collected.logs.map((log) => {
    const base = `${top}/logs/${log.namespace}/${log.pod}/${log.container}${log.previous ? ".previous" : ""}`;
    return log.error === undefined
      ? { path: `${base}.log`, content: log.text ?? "" }
      : { path: `${base}.error.txt`, content: `the log could not be read: ${log.error}\n` };
  });
  const what =
    target.kind === "service" ? `storage service ${target.namespace}/${target.name}` : `pool ${target.name}`;
  const readme = [
    `Understudy report of the ${what}`,
    `made ${new Date(now).toISOString()} by understudy ${VERSION}`,
    "",
    `resources/   ${resources.length} objects, by namespace (_cluster: cluster-scoped), without managedFields; no Secrets`,
    `events.yaml  ${events.length} Events about them, oldest first`,
    `logs/        the operator's logs (the last ${LOG_LIMIT_BYTES >> 20} MiB of each container; .previous: before its last restart)`,
    ...(collected.problems.length > 0
      ? [`problems.txt what could not be read (${collected.problems.length})`]
      : []),
    "",
  ];
  return [
    { path: `${top}/README.txt`, content: readme.join("\n") },
    ...resources,
    { path: `${top}/events.yaml`, content: stringify(events, { lineWidth: 0 }) },
    ...logs,
    ...(collected.problems.length > 0
      ? [{ path: `${top}/problems.txt`, content: collected.problems.join("\n") + "\n" }]
      : []),
  ];
}

/** Writes the entries as a gzipped tar at `file`, through a scratch folder that is removed after. */
export async function writeArchive(file: string, entries: ReportEntry[]): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), "understudy-report-"));
  try {
    for (const entry of entries) {
      mkdirSync(dirname(join(scratch, entry.path)), { recursive: true });
      writeFileSync(join(scratch, entry.path), entry.content);
    }
    const tops = [...new Set(entries.map((e) => e.path.split("/")[0]!))];
    await tar.create({ gzip: true, file, cwd: scratch, portable: true }, tops);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
