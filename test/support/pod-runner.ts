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
// - readiness comes from the real process, as the kubelet reports it: the runner claims every head
//   and server pod it sees (annotation understudy.dev/kubelet, see test/cluster/stages.ts), so KWOK
//   only marks it Running, and the runner writes the Ready condition and the container status
//   itself: Ready once the container's readinessProbe (httpGet) passes (without a probe: once the
//   process accepts connections), not Ready after failureThreshold failures, at once when the
//   process exits; restarts counted, CrashLoopBackOff while a process that keeps exiting waits to
//   restart. Until its first success it probes every 100 ms rather than every periodSeconds, so a
//   new head is seen Ready as soon as it is;
// - restartPolicy Always/OnFailure: a process that exits while its pod should run is restarted
//   with a backoff (0.5 s doubling to 5 s; the kubelet's CrashLoopBackOff starts at 10 s);
// - addresses: a pod never gets an address a live process holds. KWOK hands a deleted pod's IP to
//   the next pod, while the deleted pod's process may still be draining, or running on because its
//   node is partitioned; the runner then gives the new pod an address never used in this run
//   (counting down from the top of the pod CIDR; KWOK counts up), as a CNI plugin would not reuse
//   an address still in use;
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
import { connect, createServer } from "node:net";
import { constants as osConstants, tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { Agent } from "undici";
import { labels } from "../../src/controllers/labels.ts";
import { KubeClient, mergePatchOptions } from "../../src/kube/client.ts";
import { isNotFound } from "../../src/kube/errors.ts";
import { Informer } from "../../src/kube/informer.ts";
import { core } from "../../src/kube/resources.ts";
import { podCidr } from "../cluster/config.ts";
import { kubeletAnnotation, podNotReadyAnnotation } from "../cluster/stages.ts";
import { entryScript } from "./entry.ts";

const REPO = resolve(import.meta.dirname, "../..");
const RUNNER_ROLES = ["head", "server"] as const;
const DEFAULT_PORT = 7400;
const persistentVolumeClaims = {
  group: "",
  version: "v1",
  plural: "persistentvolumeclaims",
  kind: "PersistentVolumeClaim",
  namespaced: true,
} as const;

const secrets = {
  group: "",
  version: "v1",
  plural: "secrets",
  kind: "Secret",
  namespaced: true,
} as const;

/** A Secret volume of a running container: rewritten when the Secret changes, as the kubelet does. */
interface SecretMount {
  namespace: string;
  secretName: string;
  items: readonly k8s.V1KeyToPath[] | undefined;
  local: string;
}

/**
 * Claims a pod as its kubelet (this pod, by uid): KWOK then only marks it Running and leaves its
 * readiness to the claimant (test/cluster/stages.ts). `by` names the claimant.
 */
export function claimAsKubelet(client: KubeClient, pod: k8s.V1Pod, by: string): Promise<unknown> {
  return client.core.patchNamespacedPod(
    {
      name: pod.metadata!.name!,
      namespace: pod.metadata!.namespace!,
      body: { metadata: { uid: pod.metadata!.uid, annotations: { [kubeletAnnotation]: by } } },
    },
    mergePatchOptions,
  );
}

/** Node 24 runs the .ts sources; the machine's own node may be older. */
function nodeBinary(): string {
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
  /** The container's readiness as the runner reports it on the pod. */
  ready: boolean;
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
  container: { name: string; image: string };
  readiness: Readiness;
  /** Ready per the readiness check; false from every start until it passes. */
  ready: boolean;
  probeFailures: number;
  probeTimer: NodeJS.Timeout | undefined;
  /** How the previous run of this pod's container ended. */
  lastExit: ContainerExit | undefined;
  /** Exits in a row without becoming ready in between. */
  crashes: number;
  secretMounts: SecretMount[];
}

/** How the runner decides a container is ready: its readinessProbe, else that it accepts connections. */
export interface Readiness {
  /** An httpGet probe's URL; undefined: a TCP connect to the process's address. */
  url: string | undefined;
  periodMs: number;
  failureThreshold: number;
  timeoutMs: number;
}

interface ContainerExit {
  exitCode: number;
  reason: string;
  startedAt: string;
  finishedAt: string;
}

/** What the runner knows of a pod's container, to report as the kubelet would. */
export interface ContainerView {
  running: boolean;
  ready: boolean;
  restartCount: number;
  /** When the running process started (ISO). */
  startedAt?: string;
  /** Why it is not running: ContainerCreating, CrashLoopBackOff, Error, ... */
  waiting?: string;
  lastExit?: ContainerExit;
}

/** The readiness check of a container whose process listens at `address` (podIP:port). Pure. */
export function readinessOf(container: k8s.V1Container, address: string): Readiness {
  const probe = container.readinessProbe;
  const ip = address.slice(0, address.lastIndexOf(":"));
  const timing = {
    periodMs: (probe?.periodSeconds ?? 10) * 1000,
    failureThreshold: probe?.failureThreshold ?? 3,
    timeoutMs: (probe?.timeoutSeconds ?? 1) * 1000,
  };
  const http = probe?.httpGet;
  if (!http) return { url: undefined, ...timing };
  const port =
    typeof http.port === "number" || /^\d+$/.test(String(http.port))
      ? Number(http.port)
      : container.ports?.find((p) => p.name === http.port)?.containerPort;
  const host = ip.includes(":") ? `[${ip}]` : ip;
  const scheme = http.scheme === "HTTPS" ? "https" : "http";
  return { url: `${scheme}://${host}:${port ?? portOf(address)}${http.path ?? "/"}`, ...timing };
}

// Which state, not when: the API server keeps times to the second, and a restart shows in restartCount.
const stateKey = (state: k8s.V1ContainerState | undefined) =>
  state?.running
    ? "running"
    : state?.waiting
      ? `waiting:${state.waiting.reason ?? ""}`
      : state?.terminated
        ? "terminated"
        : "";

/**
 * The status patch (JSON merge) a kubelet would write for the pod's first container, or undefined
 * when the pod already shows it. The fault annotation of test/cluster/stages.ts keeps it not Ready.
 * Pure.
 */
export function kubeletStatusPatch(
  pod: k8s.V1Pod,
  view: ContainerView,
  now: string,
): { status: k8s.V1PodStatus } | undefined {
  const container = pod.spec!.containers[0]!;
  const ready = view.ready && view.running && pod.metadata?.annotations?.[podNotReadyAnnotation] !== "true";
  const state: k8s.V1ContainerState = view.running
    ? { running: { startedAt: (view.startedAt ?? now) as unknown as Date } }
    : { waiting: { reason: view.waiting ?? "ContainerCreating" } };
  const current = pod.status?.containerStatuses?.find((c) => c.name === container.name);
  const conditions = pod.status?.conditions ?? [];
  const conditionIs = (type: string) =>
    conditions.find((c) => c.type === type)?.status === (ready ? "True" : "False");
  if (
    conditionIs("Ready") &&
    conditionIs("ContainersReady") &&
    current?.ready === ready &&
    current.restartCount === view.restartCount &&
    stateKey(current.state) === stateKey(state)
  )
    return undefined;
  const condition = (type: string): k8s.V1PodCondition => {
    const old = conditions.find((c) => c.type === type);
    const status = ready ? "True" : "False";
    return {
      type,
      status,
      lastTransitionTime: (old?.status === status ? old.lastTransitionTime : now) as unknown as Date,
      ...(ready
        ? {}
        : { reason: "ContainersNotReady", message: `containers with unready status: [${container.name}]` }),
    };
  };
  const lastState: k8s.V1ContainerState = view.lastExit
    ? {
        terminated: {
          exitCode: view.lastExit.exitCode,
          reason: view.lastExit.reason,
          startedAt: view.lastExit.startedAt as unknown as Date,
          finishedAt: view.lastExit.finishedAt as unknown as Date,
        },
      }
    : {};
  return {
    status: {
      conditions: [
        ...conditions.filter((c) => c.type !== "Ready" && c.type !== "ContainersReady"),
        condition("Ready"),
        condition("ContainersReady"),
      ],
      containerStatuses: [
        {
          name: container.name,
          image: container.image ?? "",
          imageID: current?.imageID ?? "",
          ready,
          started: view.running,
          restartCount: view.restartCount,
          state,
          lastState,
        },
      ],
    },
  };
}

/** The pod CIDR's addresses from the top down (KWOK hands them from the bottom up). IPv4 only. */
export function* addressesFromTop(cidr: string): Generator<string> {
  const [base, bits] = cidr.split("/") as [string, string];
  const start = base.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
  const size = 2 ** (32 - Number(bits));
  for (let i = size - 2; i >= 1; i--) {
    const n = start + i;
    yield [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
  }
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
  readonly #secrets: Informer<k8s.V1Secret>[] = [];
  #provisioner: VolumeProvisioner | undefined;
  /** By namespace/name: at most one process per pod name (a recreated pod waits for the old one). */
  readonly #entries = new Map<string, Entry>();
  readonly #queues = new Map<string, Promise<void>>();
  readonly #deadNodes = new Set<string>();
  readonly #hostsFile: string;
  readonly #preload: string;
  /** The data plane's entry script, chosen once per runner (built when fresh, see entryScript). */
  readonly #entry = entryScript("dataplane/main.ts");
  /** Pods (by uid) this runner has claimed: it reports their readiness. */
  readonly #claimed = new Set<string>();
  /** Pods (by uid) whose status this runner has written. */
  readonly #reported = new Set<string>();
  /** Pods (by uid) given a fresh address, and that address (until the informer shows it). */
  readonly #movedTo = new Map<string, string>();
  /** Pods (by uid) claimed after KWOK made them Ready (logged once each). */
  readonly #lateClaims = new Set<string>();
  /** Every pod IP seen in this run: never handed out again by the runner. */
  readonly #seenIPs = new Set<string>();
  readonly #freshAddresses = addressesFromTop(podCidr);
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
    runner.#log(`data-plane processes run ${relative(REPO, runner.#entry)}`);
    await runner.#watch();
    return runner;
  }

  async #watch(): Promise<void> {
    const selector = `${labels.role} in (${this.#roles.join(",")})`;
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
        if (e.object.status?.podIP) this.#seenIPs.add(e.object.status.podIP);
        if (e.type !== "delete") this.#claim(e.object);
        this.#enqueue(`${e.object.metadata!.namespace}/${e.object.metadata!.name}`);
      });
      this.#pods.push(pods);
      const secretInformer = new Informer<k8s.V1Secret>(this.#options.kubeConfig, {
        resource: secrets,
        namespace,
        resyncMs: 5_000,
        maxBackoffMs: 1_000,
        onError: this.#watchError(`secret watch in ${namespace}`),
      });
      secretInformer.on((e) => {
        if (e.type !== "delete") this.#refreshSecret(e.object);
      });
      this.#secrets.push(secretInformer);
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
    await Promise.all([
      ...this.#pods.map((i) => i.start()),
      ...this.#secrets.map((i) => i.start()),
      this.#provisioner?.start(),
    ]);
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

  /**
   * Claims a pod as its kubelet: from then on KWOK leaves its readiness to this runner. Done at once
   * (not in the pod's queue, which may be busy stopping an older pod of the same name), before KWOK
   * would make an unclaimed pod Ready on its own.
   */
  #claim(pod: k8s.V1Pod): void {
    const uid = pod.metadata?.uid;
    const role = pod.metadata?.labels?.[labels.role];
    if (!uid || this.#claimed.has(uid) || pod.metadata?.deletionTimestamp) return;
    if (role === undefined || !this.#roles.includes(role)) return;
    this.#claimed.add(uid);
    if (pod.metadata?.annotations?.[kubeletAnnotation]) return;
    void claimAsKubelet(this.#client, pod, "pod-runner").catch((err: unknown) => {
      if (!isNotFound(err)) this.#log(`claiming pod ${pod.metadata!.name}: ${String(err)}`);
    });
  }

  /** A Secret changed: the files of every running container that mounts it are rewritten. */
  #refreshSecret(secret: k8s.V1Secret): void {
    const data = secretData(secret);
    for (const entry of this.#entries.values()) {
      for (const mount of entry.secretMounts) {
        if (mount.namespace === secret.metadata?.namespace && mount.secretName === secret.metadata?.name)
          writeVolumeFiles(mount.local, data, mount.items);
      }
    }
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
    const role = pod.metadata?.labels?.[labels.role];
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
    if (entry?.child !== undefined && (await this.#keepAddress(pod, entry))) return;
    if (!entry?.child && !entry?.heldDown && !entry?.restartTimer) {
      if (await this.#moveOffHeldAddress(key, pod)) return; // the pod's update brings us back here
      await this.#startProcess(key, pod, entry);
    }
    await this.#report(pod, this.#entries.get(key));
  }

  /** Writes the pod's Ready condition and container status from its process, when they differ. */
  async #report(pod: k8s.V1Pod, entry: Entry | undefined): Promise<void> {
    if (entry !== undefined && entry.uid !== pod.metadata!.uid) entry = undefined;
    const view: ContainerView =
      entry === undefined
        ? { running: false, ready: false, restartCount: 0 }
        : {
            running: entry.child !== undefined,
            ready: entry.ready,
            restartCount: Math.max(0, entry.starts - 1),
            startedAt: new Date(entry.startedAt).toISOString(),
            ...(entry.child === undefined
              ? {
                  waiting:
                    entry.crashes >= 2 ? "CrashLoopBackOff" : entry.lastExit ? "Error" : "ContainerCreating",
                }
              : {}),
            ...(entry.lastExit ? { lastExit: entry.lastExit } : {}),
          };
    // Claimed too late (a loaded machine): KWOK made the pod Ready before the claim reached it, and
    // the operator may have seen it so. Taking that back while the process starts would read as a
    // failed head; leave it until the process is ready or exits, as before claims existed.
    const uid = pod.metadata!.uid!;
    const readyByKwok = pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
    if (!this.#reported.has(uid) && readyByKwok && view.running && !view.ready && !view.lastExit) {
      if (!this.#lateClaims.has(uid)) this.#log(`${pod.metadata!.name}: claimed after KWOK made it Ready`);
      this.#lateClaims.add(uid);
      return;
    }
    const patch = kubeletStatusPatch(pod, view, new Date().toISOString());
    if (!patch) return;
    this.#reported.add(uid);
    try {
      await this.#client.core.patchNamespacedPodStatus(
        { name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: patch },
        mergePatchOptions,
      );
    } catch (err) {
      if (!isNotFound(err)) this.#log(`${pod.metadata!.name}: reporting status: ${String(err)}`);
    }
  }

  /** Writes the pod's IP (this pod, by uid), as the kubelet reports it. */
  async #setPodIP(pod: k8s.V1Pod, ip: string): Promise<void> {
    await this.#client.core.patchNamespacedPodStatus(
      {
        name: pod.metadata!.name!,
        namespace: pod.metadata!.namespace!,
        body: { metadata: { uid: pod.metadata!.uid }, status: { podIP: ip, podIPs: [{ ip }] } },
      },
      mergePatchOptions,
    );
  }

  /**
   * A kubelet never changes a running pod's IP; KWOK may (its status patches race, and a later one
   * computed from a stale copy allocates a second address). The process keeps its address, so the
   * pod's IP is put back to it. Returns whether it patched the pod.
   */
  async #keepAddress(pod: k8s.V1Pod, entry: Entry): Promise<boolean> {
    const held = entry.address.slice(0, entry.address.lastIndexOf(":"));
    const ip = pod.status!.podIP!;
    if (ip === held) return false;
    this.#log(`${entry.key}: pod IP changed to ${ip} while its process holds ${held}; put back`);
    await this.#setPodIP(pod, held);
    return true;
  }

  /**
   * A CNI plugin never hands out an address still in use; KWOK does (it recycles a deleted pod's IP
   * at once). When another live process holds the pod's IP, the pod gets an address never used in
   * this run instead. Returns whether it moved the pod.
   */
  async #moveOffHeldAddress(key: string, pod: k8s.V1Pod): Promise<boolean> {
    const ip = pod.status!.podIP!;
    const movedTo = this.#movedTo.get(pod.metadata!.uid!);
    if (movedTo !== undefined && movedTo !== ip) return true; // our move is on its way to the informer
    this.#movedTo.delete(pod.metadata!.uid!);
    const ports = (pod.spec?.containers ?? []).flatMap((c) => (c.ports ?? []).map((p) => p.containerPort));
    const holder = [...this.#entries.values()].find(
      (e) => e.key !== key && e.child !== undefined && e.address.startsWith(`${ip}:`),
    );
    if (holder === undefined) return false;
    let fresh: string | undefined;
    for (let tries = 0; fresh === undefined && tries < 1000; tries++) {
      const candidate = this.#freshAddresses.next();
      if (candidate.done) break;
      if (this.#seenIPs.has(candidate.value)) continue;
      if ((await Promise.all(ports.map((p) => bindable(candidate.value, p)))).every(Boolean))
        fresh = candidate.value;
    }
    if (fresh === undefined) throw new Error(`no free address found in ${podCidr}`);
    this.#seenIPs.add(fresh);
    this.#movedTo.set(pod.metadata!.uid!, fresh);
    this.#log(`${key}: address ${ip} is held by the process of ${holder.key}; the pod gets ${fresh}`);
    await this.#setPodIP(pod, fresh);
    return true;
  }

  async #stop(entry: Entry, graceMs: number): Promise<void> {
    entry.stopping = true;
    clearTimeout(entry.probeTimer);
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
    const role = pod.metadata!.labels![labels.role]!;
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
      ["--import", pathToFileURL(this.#preload).href, this.#entry, ...resolved.argv],
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
      container: { name: container.name, image: container.image ?? "" },
      readiness: readinessOf(container, resolved.address),
      ready: false,
      probeFailures: 0,
      probeTimer: undefined,
      lastExit: same ? previous.lastExit : undefined,
      crashes: same ? previous.crashes : 0,
      secretMounts: resolved.secretMounts,
    };
    this.#entries.set(key, entry);
    child.once("exit", (code, signal) => this.#exited(entry, code, signal));
    this.#probe(entry, 0);
  }

  /**
   * The readiness check, as the kubelet runs it: every period once ready (every 100 ms before, so
   * a new head is seen Ready as soon as it is); a change is written to the pod.
   */
  #probe(entry: Entry, delayMs: number): void {
    entry.probeTimer = setTimeout(async () => {
      if (entry.child === undefined || entry.partitioned) return;
      const { url, timeoutMs, failureThreshold, periodMs } = entry.readiness;
      const ok =
        url === undefined ? await canConnect(entry.address, timeoutMs) : await httpReady(url, timeoutMs);
      if (entry.child === undefined || entry.partitioned) return;
      const was = entry.ready;
      if (ok) {
        entry.probeFailures = 0;
        entry.ready = true;
        entry.crashes = 0;
      } else if (++entry.probeFailures >= failureThreshold) {
        entry.ready = false;
      }
      if (entry.ready !== was) void this.#enqueue(entry.key);
      this.#probe(entry, entry.ready ? periodMs : Math.min(periodMs, 100));
    }, delayMs);
    entry.probeTimer.unref();
  }

  #exited(entry: Entry, code: number | null, signal: NodeJS.Signals | null): void {
    entry.child = undefined;
    entry.ready = false;
    clearTimeout(entry.probeTimer);
    const finishedAt = new Date().toISOString();
    const fd = openSync(entry.logFile, "a");
    writeSync(fd, `=== ${finishedAt} exited code=${code} signal=${signal}\n`);
    closeSync(fd);
    // As the kubelet: exit code 128 + n for a signal, and how it ended in lastState.
    const exitCode = code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);
    entry.lastExit = {
      exitCode,
      reason: exitCode === 0 ? "Completed" : "Error",
      startedAt: new Date(entry.startedAt).toISOString(),
      finishedAt,
    };
    entry.crashes++;
    if (entry.stopping || entry.heldDown || entry.partitioned || this.#stopped) {
      if (!entry.stopping && !entry.partitioned && !this.#stopped) void this.#enqueue(entry.key);
      return;
    }
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
    void this.#enqueue(entry.key); // report the exit now: not Ready, waiting to restart
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
  ): Promise<{
    env: Record<string, string>;
    argv: string[];
    address: string;
    dataDir?: string;
    secretMounts: SecretMount[];
  }> {
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
    const { mounts, secretMounts } = await this.#mountVolumes(pod, container);
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
    return { env: Object.fromEntries(vars), argv, address, dataDir, secretMounts };
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
      return secretData(await this.#client.core.readNamespacedSecret({ name, namespace }));
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
  ): Promise<{ mounts: { mountPath: string; local: string }[]; secretMounts: SecretMount[] }> {
    const namespace = pod.metadata!.namespace!;
    const volumes = new Map((pod.spec?.volumes ?? []).map((v) => [v.name, v]));
    const mounts: { mountPath: string; local: string }[] = [];
    const secretMounts: SecretMount[] = [];
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
          writeVolumeFiles(local, data, items);
          if (volume.secret)
            secretMounts.push({ namespace, secretName: volume.secret.secretName!, items, local });
        }
      }
      mkdirSync(local, { recursive: true });
      mounts.push({
        mountPath: mount.mountPath.replace(/\/$/, ""),
        local: mount.subPath ? join(local, mount.subPath) : local,
      });
    }
    return { mounts: mounts.sort((a, b) => b.mountPath.length - a.mountPath.length), secretMounts };
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
        ready: e.ready,
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
    for (const i of [...this.#pods, ...this.#secrets]) i.stop();
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

function secretData(secret: k8s.V1Secret): Record<string, string> {
  return {
    ...Object.fromEntries(
      Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
    ),
    ...(secret.stringData ?? {}),
  };
}

/** A Secret's or ConfigMap's keys as files under `local`, each replaced whole (rename). */
function writeVolumeFiles(
  local: string,
  data: Record<string, string>,
  items: readonly k8s.V1KeyToPath[] | undefined,
): void {
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

/** The kubelet's HTTPS probes do not check the certificate. */
const unverified = new Agent({ connect: { rejectUnauthorized: false } });

/** An httpGet probe's verdict: a status from 200 to 399 within the timeout. */
async function httpReady(url: string, timeoutMs: number): Promise<boolean> {
  try {
    const res = await fetch(url, {
      signal: AbortSignal.timeout(timeoutMs),
      ...(url.startsWith("https:") ? { dispatcher: unverified } : {}),
    } as RequestInit);
    await res.body?.cancel();
    return res.status >= 200 && res.status < 400;
  } catch {
    return false;
  }
}

/** Whether nothing listens on ip:port (a bind there succeeds). */
function bindable(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, ip, () => server.close(() => resolve(true)));
  });
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
