// The end-to-end harness's kubelet: KWOK reports pods Running but runs nothing, so this runner
// starts the real data-plane process (`node src/dataplane/main.ts <role> ...`) for every head and
// server pod KWOK marks Running, bound to the pod's IP (KWOK hands them from 127.10.0.0/16, all
// bindable on Linux loopback). Test tooling only: the product never imports it.
//
// What it plays, and how closely:
// - the container's command/args are read from the pod spec generically (whatever follows the
//   data plane's script path or role word), env is resolved as the kubelet does (plain values with
//   $(VAR) expansion, envFrom, configMapKeyRef, secretKeyRef, fieldRef), and secret/configMap
//   volumes are written to files; paths under a volume's mountPath are rewritten to a local folder;
// - storage: PVCs waiting for a volume get a hostPath PV bound by claimRef (no provisioner here);
// - the listen address becomes <podIP>:<port>; a server's data lives in a folder per pod name (per
//   PVC claim name when the data directory sits on a PVC), kept across restarts as a PVC would be;
// - cluster DNS: KWOK has none, so every child is started with a small preload that answers
//   lookups of <hostname>.<subdomain>.<ns>.svc[.cluster.local] (StatefulSet pods). Service names
//   are not answered: the API server refuses loopback addresses in EndpointSlices, so the test
//   cluster's Services never have endpoints to resolve to;
// - restartPolicy Always/OnFailure: a process that exits while its pod should run is restarted
//   with a backoff (0.5 s doubling to 5 s; the kubelet's CrashLoopBackOff starts at 10 s);
// - a pod deleted, terminating, Failed or Succeeded: SIGTERM, then SIGKILL after the pod's grace
//   period (capped by `maxGraceMs`); a pod only made NotReady keeps its process (split brain);
// - faults the kubelet cannot show: kill(pod) kills the process alone, killNode(node) kills every
//   process on a node and keeps them down until reviveNode(node) (a machine lost and back), and
//   partition(pod) keeps a process running whatever happens to its pod (a node cut off from the
//   API server but not from clients: split brain).
import type * as k8s from "@kubernetes/client-node";
import { spawn, type ChildProcess } from "node:child_process";
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { KubeClient } from "../../src/kube/client.ts";
import { isNotFound } from "../../src/kube/errors.ts";
import { Informer } from "../../src/kube/informer.ts";
import { core } from "../../src/kube/resources.ts";

const REPO = resolve(import.meta.dirname, "../..");
export const DATAPLANE_MAIN = join(REPO, "src/dataplane/main.ts");
export const ROLE_LABEL = "understudy.dev/role";
export const RUNNER_ROLES = ["head", "server"] as const;
const DEFAULT_PORT = 7400;
const persistentVolumeClaims = {
  group: "",
  version: "v1",
  plural: "persistentvolumeclaims",
  kind: "PersistentVolumeClaim",
  namespaced: true,
} as const;

/** Node 24 runs the .ts sources; the machine's own node may be older. */
export function nodeBinary(): string {
  return Number(process.versions.node.split(".")[0]) === 24
    ? process.execPath
    : join(REPO, "node_modules/.bin/node");
}

export interface PodRunnerOptions {
  kubeConfig: k8s.KubeConfig;
  namespaces: readonly string[];
  /** Folder for data, logs and files; a fresh temp folder by default (kept after stop, for debugging). */
  root?: string;
  roles?: readonly string[];
  /** Upper bound of SIGTERM-to-SIGKILL, whatever the pod's terminationGracePeriodSeconds. */
  maxGraceMs?: number;
  restartBackoff?: { initialMs: number; maxMs: number };
  /** Bind a hostPath PV to every PVC that waits for one (the test cluster has no provisioner). Default true. */
  provisionVolumes?: boolean;
  /** Extra env for every process (set last): e.g. UNDERSTUDY_LOG_LEVEL. */
  extraEnv?: Record<string, string>;
  /**
   * Env computed afresh at every process start, after the pod's own (what an image's entrypoint
   * script would set; e.g. a head epoch from the clock for a Deployment without an operator).
   */
  envAtStart?: (pod: k8s.V1Pod, role: string) => Record<string, string>;
  log?: (message: string) => void;
}

export interface ProcessInfo {
  namespace: string;
  pod: string;
  uid: string;
  role: string;
  node: string;
  /** host:port the process listens on (pod IP and container port). */
  address: string;
  pid: number | undefined;
  running: boolean;
  /** Times this pod's process was started (restarts included). */
  starts: number;
  logFile: string;
  /** The exact command line, for debugging. */
  argv: string[];
  /** A server's data directory on this machine. */
  dataDir: string | undefined;
}

interface Entry {
  key: string;
  uid: string;
  role: string;
  node: string;
  address: string;
  argv: string[];
  dataDir: string | undefined;
  child: ChildProcess | undefined;
  exited: Promise<void>;
  /** Stopped on purpose: do not restart on exit. */
  stopping: boolean;
  /** kill(..., { restart: false }): stay down while the pod lives. */
  heldDown: boolean;
  /** partition(): the pod's kubelet no longer hears from the API server; the process runs on. */
  partitioned: boolean;
  starts: number;
  startedAt: number;
  backoffMs: number;
  restartTimer: NodeJS.Timeout | undefined;
  logFile: string;
}

type EnvVar = k8s.V1EnvVar;

/** Kubernetes' $(VAR) expansion: defined names are replaced, $$ escapes, unknown refs stay as they are. */
export function expandVars(text: string, vars: ReadonlyMap<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match, name: string | undefined) => {
    if (match === "$$") return "$";
    return vars.has(name!) ? vars.get(name!)! : match;
  });
}

/**
 * The data plane's arguments from a container's command and args, whatever shape the image's
 * entrypoint has: what follows the script (`.../main.ts|js`, `understudy-dataplane`), else from the
 * role word on, else the role alone followed by everything.
 */
export function dataplaneArgs(words: readonly string[], role: string): string[] {
  const script = words.findIndex((w) => /(^|\/)(main\.[cm]?[jt]s|understudy-dataplane)$/.test(w));
  let rest = script >= 0 ? words.slice(script + 1) : words.slice();
  if (script < 0) {
    const roleAt = rest.findIndex((w) => (RUNNER_ROLES as readonly string[]).includes(w));
    if (roleAt >= 0) rest = rest.slice(roleAt);
  }
  return (RUNNER_ROLES as readonly string[]).includes(rest[0] ?? "") ? rest : [role, ...rest];
}

/** Replaces the value of `--flag v` / `--flag=v` in argv; returns whether it was there. */
function replaceFlag(argv: string[], flag: string, value: (old: string) => string): boolean {
  let found = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === flag && i + 1 < argv.length) {
      argv[i + 1] = value(argv[i + 1]!);
      found = true;
    } else if (argv[i]!.startsWith(`${flag}=`)) {
      argv[i] = `${flag}=${value(argv[i]!.slice(flag.length + 1))}`;
      found = true;
    }
  }
  return found;
}

function flagValue(argv: readonly string[], flag: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === flag) return argv[i + 1];
    if (argv[i]!.startsWith(`${flag}=`)) return argv[i]!.slice(flag.length + 1);
  }
  return undefined;
}

const portOf = (hostPort: string | undefined) => {
  const m = hostPort?.match(/:(\d+)$/);
  return m ? Number(m[1]) : undefined;
};

/** DNS names a pod answers to: StatefulSet pods get hostname + subdomain (the governing Service). */
export function podHostnames(pod: k8s.V1Pod): string[] {
  const { hostname, subdomain } = pod.spec ?? {};
  const ns = pod.metadata?.namespace;
  if (!hostname || !subdomain || !ns) return [];
  const base = `${hostname}.${subdomain}.${ns}`;
  return [base, `${base}.svc`, `${base}.svc.cluster.local`];
}

// The preload every child gets: answers cluster names from the runner's hosts file, and ends the
// process if the runner dies (a kubelet's containers do not outlive a lost test run here).
const DNS_PRELOAD = `
import dns from "node:dns";
import { readFileSync } from "node:fs";
const hostsFile = process.env.UNDERSTUDY_E2E_HOSTS_FILE;
delete process.env.UNDERSTUDY_E2E_HOSTS_FILE;
const parent = process.ppid;
setInterval(() => { if (process.ppid !== parent) process.kill(process.pid, "SIGKILL"); }, 500).unref();
const original = dns.lookup;
const clusterName = (host) => /\\.svc(\\.cluster\\.local)?\\.?$/.test(host);
dns.lookup = function lookup(host, options, callback) {
  if (typeof options === "function") { callback = options; options = {}; }
  if (typeof options === "number") options = { family: options };
  let addresses;
  try { addresses = JSON.parse(readFileSync(hostsFile, "utf8"))[String(host).replace(/\\.$/, "")]; } catch { addresses = undefined; }
  if (addresses === undefined && !clusterName(String(host))) return original.call(this, host, options, callback);
  if (!addresses || addresses.length === 0) {
    const err = Object.assign(new Error("getaddrinfo ENOTFOUND " + host), { code: "ENOTFOUND", hostname: host, syscall: "getaddrinfo" });
    return process.nextTick(callback, err);
  }
  if (options && options.all) return process.nextTick(callback, null, addresses.map((address) => ({ address, family: 4 })));
  return process.nextTick(callback, null, addresses[0], 4);
};
`;

export class PodRunner {
  readonly root: string;
  readonly #options: PodRunnerOptions;
  readonly #client: KubeClient;
  readonly #roles: readonly string[];
  readonly #pods: Informer<k8s.V1Pod>[] = [];
  #provisioner: VolumeProvisioner | undefined;
  /** By namespace/name: at most one process per pod name (a recreated pod waits for the old one). */
  readonly #entries = new Map<string, Entry>();
  readonly #queues = new Map<string, Promise<void>>();
  readonly #deadNodes = new Set<string>();
  readonly #hostsFile: string;
  readonly #preload: string;
  #stopped = false;
  #onExit = () => {
    for (const e of this.#entries.values()) e.child?.kill("SIGKILL");
  };

  private constructor(options: PodRunnerOptions) {
    this.#options = options;
    this.#client = new KubeClient(options.kubeConfig, "understudy-e2e-runner");
    this.#roles = options.roles ?? RUNNER_ROLES;
    this.root = options.root ?? mkdtempSync(join(tmpdir(), "understudy-pods-"));
    for (const dir of ["logs", "data", "volumes", "work"])
      mkdirSync(join(this.root, dir), { recursive: true });
    this.#hostsFile = join(this.root, "hosts.json");
    this.#preload = join(this.root, "cluster-dns.mjs");
    writeFileSync(this.#preload, DNS_PRELOAD);
    writeFileSync(this.#hostsFile, "{}");
  }

  /** Starts watching; resolves once the pods already there are known (their processes start soon after). */
  static async start(options: PodRunnerOptions): Promise<PodRunner> {
    const runner = new PodRunner(options);
    await runner.#watch();
    return runner;
  }

  async #watch(): Promise<void> {
    const selector = `${ROLE_LABEL} in (${this.#roles.join(",")})`;
    for (const namespace of this.#options.namespaces) {
      const pods = new Informer<k8s.V1Pod>(this.#options.kubeConfig, {
        resource: core.pods,
        namespace,
        labelSelector: selector,
        resyncMs: 5_000,
        maxBackoffMs: 1_000,
        onError: this.#watchError(`pod watch in ${namespace}`),
      });
      pods.on((e) => {
        this.#writeHosts();
        this.#enqueue(`${e.object.metadata!.namespace}/${e.object.metadata!.name}`);
      });
      this.#pods.push(pods);
    }
    if (this.#options.provisionVolumes ?? true) {
      this.#provisioner = new VolumeProvisioner(
        this.#options.kubeConfig,
        this.#options.namespaces,
        join(this.root, "volumes", "pvc"),
        (m: string) => this.#log(m),
      );
    }
    process.on("exit", this.#onExit);
    await Promise.all([...this.#pods.map((i) => i.start()), this.#provisioner?.start()]);
  }

  /** client-node ends a watch quiet for 30 s with a TimeoutError; the informer resumes it. */
  #watchError(what: string): (err: unknown) => void {
    return (err) => {
      if ((err as { name?: string }).name !== "TimeoutError") this.#log(`${what}: ${String(err)}`);
    };
  }

  #log(message: string): void {
    (this.#options.log ?? ((m: string) => process.stderr.write(`[pod-runner] ${m}\n`)))(message);
  }

  #pod(key: string): k8s.V1Pod | undefined {
    const [namespace, name] = key.split("/") as [string, string];
    for (const informer of this.#pods) {
      const pod = informer.get(name, namespace);
      if (pod) return pod;
    }
    return undefined;
  }

  /** Per pod, changes are handled one at a time, in order. */
  #enqueue(key: string): Promise<void> {
    const next = (this.#queues.get(key) ?? Promise.resolve())
      .then(() => this.#sync(key))
      .catch((err: unknown) => this.#log(`${key}: ${(err as Error).stack ?? String(err)}`));
    this.#queues.set(key, next);
    return next;
  }

  #shouldRun(pod: k8s.V1Pod | undefined): pod is k8s.V1Pod {
    if (this.#stopped || pod === undefined) return false;
    const role = pod.metadata?.labels?.[ROLE_LABEL];
    return (
      role !== undefined &&
      this.#roles.includes(role) &&
      !pod.metadata?.deletionTimestamp &&
      pod.status?.phase === "Running" &&
      !!pod.status.podIP &&
      !this.#deadNodes.has(pod.spec?.nodeName ?? "")
    );
  }

  async #sync(key: string): Promise<void> {
    const pod = this.#pod(key);
    let entry = this.#entries.get(key);
    if (entry?.partitioned) return;
    if (entry && (!this.#shouldRun(pod) || pod.metadata!.uid !== entry.uid)) {
      const grace = (pod?.spec?.terminationGracePeriodSeconds ?? 30) * 1000;
      const failed = pod?.status?.phase === "Failed" || this.#deadNodes.has(entry.node);
      await this.#stop(entry, failed ? 0 : grace);
      this.#entries.delete(key);
      entry = undefined;
    }
    if (!this.#shouldRun(pod)) return;
    if (entry?.child || entry?.heldDown || entry?.restartTimer) return;
    await this.#startProcess(key, pod, entry);
  }

  async #stop(entry: Entry, graceMs: number): Promise<void> {
    entry.stopping = true;
    clearTimeout(entry.restartTimer);
    entry.restartTimer = undefined;
    const child = entry.child;
    if (!child) return;
    const cap = Math.min(graceMs, this.#options.maxGraceMs ?? 5_000);
    child.kill(cap > 0 ? "SIGTERM" : "SIGKILL");
    const killed = await Promise.race([entry.exited.then(() => true), sleep(cap).then(() => false)]);
    if (!killed) {
      child.kill("SIGKILL");
      await entry.exited;
    }
  }

  async #startProcess(key: string, pod: k8s.V1Pod, previous: Entry | undefined): Promise<void> {
    const role = pod.metadata!.labels![ROLE_LABEL]!;
    const container = pod.spec!.containers[0]!;
    const podIP = pod.status!.podIP!;
    let resolved: Awaited<ReturnType<PodRunner["resolveContainer"]>>;
    try {
      resolved = await this.resolveContainer(pod, container, role, podIP);
    } catch (err) {
      // As the kubelet's CreateContainerConfigError: retried until the reference resolves.
      this.#log(`${key}: cannot start yet: ${(err as Error).message}`);
      setTimeout(() => void this.#enqueue(key), 1_000).unref();
      return;
    }
    const same = previous !== undefined && previous.uid === pod.metadata!.uid;
    const logFile = join(this.root, "logs", `${key.replace("/", "_")}.log`);
    const fd = openSync(logFile, "a");
    writeSync(fd, `\n=== ${new Date().toISOString()} start ${resolved.argv.join(" ")}\n`);
    const child = spawn(
      nodeBinary(),
      ["--import", pathToFileURL(this.#preload).href, DATAPLANE_MAIN, ...resolved.argv],
      {
        cwd: this.#workDir(pod),
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          HOME: process.env.HOME ?? "/tmp",
          ...resolved.env,
          ...this.#options.extraEnv,
          ...this.#options.envAtStart?.(pod, role),
          UNDERSTUDY_E2E_HOSTS_FILE: this.#hostsFile,
        },
        stdio: ["ignore", fd, fd],
      },
    );
    closeSync(fd);
    const entry: Entry = {
      key,
      uid: pod.metadata!.uid!,
      role,
      node: pod.spec!.nodeName ?? "",
      address: resolved.address,
      argv: resolved.argv,
      dataDir: resolved.dataDir,
      child,
      exited: new Promise((ok) => child.once("exit", () => ok())),
      stopping: false,
      heldDown: false,
      partitioned: false,
      starts: (same ? previous.starts : 0) + 1,
      startedAt: Date.now(),
      backoffMs: same ? previous.backoffMs : 0,
      restartTimer: undefined,
      logFile,
    };
    this.#entries.set(key, entry);
    child.once("exit", (code, signal) => this.#exited(entry, code, signal));
  }

  #exited(entry: Entry, code: number | null, signal: NodeJS.Signals | null): void {
    entry.child = undefined;
    const fd = openSync(entry.logFile, "a");
    writeSync(fd, `=== ${new Date().toISOString()} exited code=${code} signal=${signal}\n`);
    closeSync(fd);
    if (entry.stopping || entry.heldDown || entry.partitioned || this.#stopped) return;
    const pod = this.#pod(entry.key);
    const policy = pod?.spec?.restartPolicy ?? "Always";
    if (policy === "Never" || (policy === "OnFailure" && code === 0)) return;
    const { initialMs, maxMs } = this.#options.restartBackoff ?? { initialMs: 500, maxMs: 5_000 };
    // A process that ran a while gets a fresh backoff, as the kubelet resets it after 10 minutes.
    entry.backoffMs =
      Date.now() - entry.startedAt > 10_000 ? initialMs : Math.min(maxMs, entry.backoffMs * 2 || initialMs);
    entry.restartTimer = setTimeout(() => {
      entry.restartTimer = undefined;
      void this.#enqueue(entry.key);
    }, entry.backoffMs);
    entry.restartTimer.unref();
  }

  #workDir(pod: k8s.V1Pod): string {
    const dir = join(this.root, "work", `${pod.metadata!.namespace}_${pod.metadata!.name}`);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** Env and argv as the container would see them, with addresses and paths made local. */
  private async resolveContainer(
    pod: k8s.V1Pod,
    container: k8s.V1Container,
    role: string,
    podIP: string,
  ): Promise<{ env: Record<string, string>; argv: string[]; address: string; dataDir?: string }> {
    const namespace = pod.metadata!.namespace!;
    const vars = new Map<string, string>();
    for (const source of container.envFrom ?? []) {
      const data = source.configMapRef
        ? await this.#configMap(namespace, source.configMapRef.name!, source.configMapRef.optional)
        : source.secretRef
          ? await this.#secret(namespace, source.secretRef.name!, source.secretRef.optional)
          : {};
      for (const [k, v] of Object.entries(data)) vars.set(`${source.prefix ?? ""}${k}`, v);
    }
    for (const env of container.env ?? []) {
      const value = await this.#envValue(pod, container, env, vars);
      if (value !== undefined) vars.set(env.name, value);
    }
    const words = [...(container.command ?? []), ...(container.args ?? [])].map((w) => expandVars(w, vars));
    const argv = dataplaneArgs(words, role);

    // Volumes: files for secrets and configMaps, folders for the rest; their paths made local.
    const mounts = await this.#mountVolumes(pod, container);
    const local = (path: string) => {
      for (const m of mounts) {
        if (path === m.mountPath || path.startsWith(`${m.mountPath}/`))
          return m.local + path.slice(m.mountPath.length);
      }
      return path;
    };
    for (const [k, v] of vars) if (v.startsWith("/")) vars.set(k, local(v));
    for (let i = 0; i < argv.length; i++) {
      const eq = argv[i]!.indexOf("=");
      if (argv[i]!.startsWith("/")) argv[i] = local(argv[i]!);
      else if (argv[i]!.startsWith("--") && eq > 0 && argv[i]![eq + 1] === "/")
        argv[i] = argv[i]!.slice(0, eq + 1) + local(argv[i]!.slice(eq + 1));
    }

    // Listen on the pod's IP: the port the process was told, else the container's port.
    const named = container.ports?.find((p) => /http|api|client|head|server/.test(p.name ?? ""));
    const port =
      portOf(flagValue(argv, "--listen")) ??
      portOf(vars.get("UNDERSTUDY_LISTEN")) ??
      (named ?? container.ports?.[0])?.containerPort ??
      DEFAULT_PORT;
    const address = `${podIP}:${port}`;
    replaceFlag(argv, "--listen", () => address);
    vars.set("UNDERSTUDY_LISTEN", address);
    // The metrics listener too: every process here shares one host, so each binds its pod's IP.
    const metricsPort = portOf(vars.get("UNDERSTUDY_METRICS_LISTEN"));
    if (metricsPort !== undefined) vars.set("UNDERSTUDY_METRICS_LISTEN", `${podIP}:${metricsPort}`);

    // A server's data directory: a folder per pod name unless it already sits on a mounted volume.
    let dataDir: string | undefined;
    if (role === "server") {
      dataDir = flagValue(argv, "--data-dir") ?? vars.get("UNDERSTUDY_DATA_DIR");
      const onVolume = dataDir !== undefined && mounts.some((m) => dataDir!.startsWith(m.local));
      if (!onVolume) {
        const folder = join(this.root, "data", `${namespace}_${pod.metadata!.name}`);
        mkdirSync(folder, { recursive: true });
        if (!replaceFlag(argv, "--data-dir", () => folder)) vars.set("UNDERSTUDY_DATA_DIR", folder);
        dataDir = folder;
      }
    }
    return { env: Object.fromEntries(vars), argv, address, dataDir };
  }

  async #envValue(
    pod: k8s.V1Pod,
    container: k8s.V1Container,
    env: EnvVar,
    vars: ReadonlyMap<string, string>,
  ): Promise<string | undefined> {
    if (env.value !== undefined) return expandVars(env.value, vars);
    const from = env.valueFrom;
    if (!from) return "";
    const namespace = pod.metadata!.namespace!;
    if (from.configMapKeyRef) {
      const data = await this.#configMap(
        namespace,
        from.configMapKeyRef.name!,
        from.configMapKeyRef.optional,
      );
      return pick(
        data,
        from.configMapKeyRef.key,
        from.configMapKeyRef.optional,
        `configmap ${from.configMapKeyRef.name}`,
      );
    }
    if (from.secretKeyRef) {
      const data = await this.#secret(namespace, from.secretKeyRef.name!, from.secretKeyRef.optional);
      return pick(
        data,
        from.secretKeyRef.key,
        from.secretKeyRef.optional,
        `secret ${from.secretKeyRef.name}`,
      );
    }
    if (from.fieldRef) return fieldValue(pod, from.fieldRef.fieldPath);
    if (from.resourceFieldRef) {
      const [kind, resource] = from.resourceFieldRef.resource.split(".") as ["limits" | "requests", string];
      return String(container.resources?.[kind]?.[resource] ?? "0");
    }
    return "";
  }

  async #configMap(namespace: string, name: string, optional?: boolean): Promise<Record<string, string>> {
    try {
      const cm = await this.#client.core.readNamespacedConfigMap({ name, namespace });
      const binary = Object.fromEntries(
        Object.entries(cm.binaryData ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
      );
      return { ...binary, ...(cm.data ?? {}) };
    } catch (err) {
      if (isNotFound(err) && optional) return {};
      throw new Error(`configmap ${namespace}/${name}: ${isNotFound(err) ? "not found" : String(err)}`, {
        cause: err,
      });
    }
  }

  async #secret(namespace: string, name: string, optional?: boolean): Promise<Record<string, string>> {
    try {
      const secret = await this.#client.core.readNamespacedSecret({ name, namespace });
      return {
        ...Object.fromEntries(
          Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
        ),
        ...(secret.stringData ?? {}),
      };
    } catch (err) {
      if (isNotFound(err) && optional) return {};
      throw new Error(`secret ${namespace}/${name}: ${isNotFound(err) ? "not found" : String(err)}`, {
        cause: err,
      });
    }
  }

  async #mountVolumes(
    pod: k8s.V1Pod,
    container: k8s.V1Container,
  ): Promise<{ mountPath: string; local: string }[]> {
    const namespace = pod.metadata!.namespace!;
    const volumes = new Map((pod.spec?.volumes ?? []).map((v) => [v.name, v]));
    const mounts: { mountPath: string; local: string }[] = [];
    for (const mount of container.volumeMounts ?? []) {
      const volume = volumes.get(mount.name);
      let local: string;
      if (volume?.persistentVolumeClaim) {
        local = join(this.root, "volumes", "pvc", `${namespace}_${volume.persistentVolumeClaim.claimName}`);
      } else {
        // Secrets, configMaps and emptyDirs live as long as the pod (uid): written afresh for a new pod.
        local = join(this.root, "volumes", pod.metadata!.uid!, mount.name);
        if (volume?.secret || volume?.configMap) {
          const data = volume.secret
            ? await this.#secret(namespace, volume.secret.secretName!, volume.secret.optional)
            : await this.#configMap(namespace, volume.configMap!.name!, volume.configMap!.optional);
          const items = (volume.secret ?? volume.configMap)!.items;
          const files = items ? items.map((i) => [i.path, data[i.key]] as const) : Object.entries(data);
          for (const [path, content] of files) {
            if (content === undefined) continue;
            const file = join(local, path);
            mkdirSync(dirname(file), { recursive: true });
            const tmp = `${file}.tmp`;
            writeFileSync(tmp, content, { mode: 0o600 });
            renameSync(tmp, file);
          }
        }
      }
      mkdirSync(local, { recursive: true });
      mounts.push({
        mountPath: mount.mountPath.replace(/\/$/, ""),
        local: mount.subPath ? join(local, mount.subPath) : local,
      });
    }
    return mounts.sort((a, b) => b.mountPath.length - a.mountPath.length);
  }

  /** The cluster DNS the children see: pod hostnames. */
  #writeHosts(): void {
    const hosts: Record<string, string[]> = {};
    for (const informer of this.#pods) {
      for (const pod of informer.list()) {
        const ip = pod.status?.podIP;
        if (!ip || pod.metadata?.deletionTimestamp) continue;
        for (const name of podHostnames(pod)) hosts[name] = [ip];
      }
    }
    const tmp = `${this.#hostsFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(hosts));
    renameSync(tmp, this.#hostsFile);
  }

  // ---- what tests see and do ----

  processes(): ProcessInfo[] {
    return [...this.#entries.values()].map((e) => {
      const [namespace, pod] = e.key.split("/") as [string, string];
      return {
        namespace,
        pod,
        uid: e.uid,
        role: e.role,
        node: e.node,
        address: e.address,
        pid: e.child?.pid,
        running: e.child !== undefined,
        starts: e.starts,
        logFile: e.logFile,
        argv: e.argv,
        dataDir: e.dataDir,
      };
    });
  }

  process(pod: string, namespace?: string): ProcessInfo | undefined {
    return this.processes().find(
      (p) => p.pod === pod && (namespace === undefined || p.namespace === namespace),
    );
  }

  /** Resolves once the pod's process accepts TCP connections at its pod IP; returns it. */
  async waitForListening(pod: string, namespace?: string, timeoutMs = 30_000): Promise<ProcessInfo> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const info = this.process(pod, namespace);
      if (info?.running && (await canConnect(info.address))) return info;
      await sleep(50);
    }
    throw new Error(`no process of pod ${pod} listening after ${timeoutMs} ms (logs: ${this.root}/logs)`);
  }

  /**
   * Signals a pod's process without touching the pod ("the head process was killed"). With
   * `restart: false` it stays down while the pod lives; otherwise it restarts per restartPolicy.
   * Resolves once the process has exited (for SIGKILL; other signals only when it exits).
   */
  async kill(
    pod: string,
    signal: NodeJS.Signals = "SIGKILL",
    options: { namespace?: string; restart?: boolean } = {},
  ): Promise<void> {
    const entry = [...this.#entries.values()].find(
      (e) =>
        e.key.endsWith(`/${pod}`) &&
        (options.namespace === undefined || e.key === `${options.namespace}/${pod}`),
    );
    if (!entry?.child) throw new Error(`no running process for pod ${pod}`);
    if (options.restart === false) entry.heldDown = true;
    entry.child.kill(signal);
    await entry.exited;
  }

  /**
   * Split brain: the pod's node is cut off from the API server, so its process keeps running and
   * serving whatever happens to the pod (made NotReady, deleted). Only kill() or stop() end it.
   */
  partition(pod: string, namespace?: string): ProcessInfo {
    const entry = [...this.#entries.values()].find(
      (e) => e.key.endsWith(`/${pod}`) && (namespace === undefined || e.key === `${namespace}/${pod}`),
    );
    if (!entry?.child) throw new Error(`no running process for pod ${pod}`);
    entry.partitioned = true;
    return this.process(pod, namespace)!;
  }

  /** Lets a process held down by kill(..., { restart: false }) start again. */
  async release(pod: string, namespace?: string): Promise<void> {
    for (const e of this.#entries.values()) {
      if (e.key.endsWith(`/${pod}`) && (namespace === undefined || e.key === `${namespace}/${pod}`)) {
        e.heldDown = false;
        await this.#enqueue(e.key);
      }
    }
  }

  /** The node's machine is lost: every process on it dies and none starts there until reviveNode. */
  async killNode(node: string): Promise<ProcessInfo[]> {
    this.#deadNodes.add(node);
    const victims = [...this.#entries.values()].filter((e) => e.node === node);
    const before = this.processes().filter((p) => p.node === node);
    await Promise.all(victims.map((e) => this.#enqueue(e.key)));
    return before;
  }

  /** The machine is back: processes of pods still Running on it start again. */
  async reviveNode(node: string): Promise<void> {
    this.#deadNodes.delete(node);
    const keys = this.#pods.flatMap((i) =>
      i
        .list()
        .filter((p) => p.spec?.nodeName === node)
        .map((p) => `${p.metadata!.namespace}/${p.metadata!.name}`),
    );
    await Promise.all(keys.map((k) => this.#enqueue(k)));
  }

  /** Stops watching and every process (SIGTERM, then SIGKILL). The root folder stays, for its logs. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const i of this.#pods) i.stop();
    await Promise.all([...this.#entries.values()].map((e) => this.#stop(e, 2_000)));
    this.#entries.clear();
    await this.#provisioner?.stop();
    process.off("exit", this.#onExit);
  }

  /** Removes the root folder (data, logs). */
  removeFiles(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/**
 * The test cluster has no storage provisioner: a PVC that waits for a volume gets a hostPath PV
 * bound to it by claimRef, so StatefulSet pods schedule. Its folder (under `root`) is named after
 * the claim, so it outlives the pods that mount it, as a volume would. stop() deletes the PVs.
 */
export class VolumeProvisioner {
  readonly #client: KubeClient;
  readonly #informers: Informer<k8s.V1PersistentVolumeClaim>[];
  readonly #volumes = new Set<string>();
  readonly #root: string;
  readonly #log: (message: string) => void;

  constructor(
    kc: k8s.KubeConfig,
    namespaces: readonly string[],
    root: string,
    log: (message: string) => void = () => {},
  ) {
    this.#client = new KubeClient(kc, "understudy-e2e-provisioner");
    this.#root = root;
    this.#log = log;
    this.#informers = namespaces.map((namespace) => {
      const informer = new Informer<k8s.V1PersistentVolumeClaim>(kc, {
        resource: persistentVolumeClaims,
        namespace,
        resyncMs: 5_000,
        maxBackoffMs: 1_000,
        onError: (err) => {
          if ((err as { name?: string }).name !== "TimeoutError")
            log(`pvc watch in ${namespace}: ${String(err)}`);
        },
      });
      informer.on((e) => {
        if (e.type !== "delete") void this.#provision(e.object);
      });
      return informer;
    });
  }

  async start(): Promise<void> {
    await Promise.all(this.#informers.map((i) => i.start()));
  }

  get provisioned(): number {
    return this.#volumes.size;
  }

  async #provision(claim: k8s.V1PersistentVolumeClaim): Promise<void> {
    if (claim.spec?.volumeName || claim.status?.phase === "Bound" || claim.metadata?.deletionTimestamp)
      return;
    const namespace = claim.metadata!.namespace!;
    const name = `e2e-${namespace}-${claim.metadata!.name}`.slice(0, 253).replace(/\.+$/, "");
    if (this.#volumes.has(name)) return;
    this.#volumes.add(name);
    const folder = join(this.#root, `${namespace}_${claim.metadata!.name}`);
    mkdirSync(folder, { recursive: true });
    try {
      await this.#client.core.createPersistentVolume({
        body: {
          metadata: { name, labels: { "understudy.dev/e2e-pod-runner": "true" } },
          spec: {
            capacity: { storage: claim.spec?.resources?.requests?.storage ?? "1Gi" },
            accessModes: claim.spec?.accessModes ?? ["ReadWriteOnce"],
            persistentVolumeReclaimPolicy: "Retain",
            storageClassName: claim.spec?.storageClassName ?? "",
            hostPath: { path: folder, type: "DirectoryOrCreate" },
            claimRef: { namespace, name: claim.metadata!.name!, uid: claim.metadata!.uid },
          },
        },
      });
    } catch (err) {
      if ((err as { code?: number }).code !== 409) {
        this.#volumes.delete(name);
        this.#log(`provisioning a volume for ${namespace}/${claim.metadata!.name}: ${String(err)}`);
      }
    }
  }

  async stop(): Promise<void> {
    for (const i of this.#informers) i.stop();
    const names = [...this.#volumes];
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(
        names.slice(i, i + 50).map((name) =>
          this.#client.core.deletePersistentVolume({ name }).catch((err: unknown) => {
            if (!isNotFound(err)) this.#log(`deleting volume ${name}: ${String(err)}`);
          }),
        ),
      );
    }
    this.#volumes.clear();
  }
}

function pick(
  data: Record<string, string>,
  key: string,
  optional: boolean | undefined,
  what: string,
): string | undefined {
  if (key in data) return data[key];
  if (optional) return undefined;
  throw new Error(`${what} has no key ${key}`);
}

/** The downward API's fieldRef paths. */
export function fieldValue(pod: k8s.V1Pod, path: string): string {
  const m = path.match(/^metadata\.(labels|annotations)\['(.+)'\]$/);
  if (m) return pod.metadata?.[m[1] as "labels" | "annotations"]?.[m[2]!] ?? "";
  switch (path) {
    case "metadata.name":
      return pod.metadata?.name ?? "";
    case "metadata.namespace":
      return pod.metadata?.namespace ?? "";
    case "metadata.uid":
      return pod.metadata?.uid ?? "";
    case "spec.nodeName":
      return pod.spec?.nodeName ?? "";
    case "spec.serviceAccountName":
      return pod.spec?.serviceAccountName ?? "";
    case "status.podIP":
      return pod.status?.podIP ?? "";
    case "status.podIPs":
      return (pod.status?.podIPs ?? []).map((p) => p.ip).join(",");
    case "status.hostIP":
      return pod.status?.hostIP ?? "";
    default:
      throw new Error(`fieldRef ${path} is not supported by the pod runner`);
  }
}

export function canConnect(address: string, timeoutMs = 500): Promise<boolean> {
  const i = address.lastIndexOf(":");
  return new Promise((resolve) => {
    const socket = connect({
      host: address.slice(0, i),
      port: Number(address.slice(i + 1)),
      timeout: timeoutMs,
    });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
  });
}
