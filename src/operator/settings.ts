// Operator settings: command-line flags (commander), else environment variables, else defaults,
// validated by one zod schema. A bad setting stops the process before it touches the cluster, with
// a message naming both the flag and the variable.
import { Command, CommanderError } from "commander";
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { z } from "zod";
import { parseLabelSelector } from "../kube/label-selector.ts";
import { leaderElectionTimingProblem } from "./leader-election.ts";
import { LOG_LEVELS, type LogLevel } from "./logger.ts";

export interface Settings {
  /** Path of a kubeconfig; undefined means $KUBECONFIG, in-cluster, then ~/.kube/config. */
  kubeconfig: string | undefined;
  /** The operator's own namespace: slot Leases, placeholder pods, its leader-election Lease. */
  namespace: string;
  leaderElection: {
    enabled: boolean;
    leaseName: string;
    namespace: string;
    identity: string;
    leaseDurationMs: number;
    renewDeadlineMs: number;
    retryPeriodMs: number;
  };
  /** Client-side limit on API requests (client-go's QPS and Burst). */
  client: { qps: number; burst: number; priorityLanes: boolean };
  /**
   * Which controllers run (kube-controller-manager's --controllers): all but `disabled` when
   * `all`, else only `enabled`.
   */
  controllers: { all: boolean; enabled: string[]; disabled: string[] };
  /** Workers per controller: the default, and overrides by controller name. */
  concurrency: { default: number; byController: Record<string, number> };
  resyncPeriodMs: number;
  /** Where /healthz, /readyz and /metrics listen; host undefined means every interface. */
  metrics: { address: string; host: string | undefined; port: number };
  logLevel: LogLevel;
  /** How long a graceful shutdown waits for reconciles in flight. */
  shutdownTimeoutMs: number;
  /**
   * Label selector of the ContingencyPools this operator manages (like an ingress class): claims
   * and storage services of other pools are left to the operator that manages those. Empty: all.
   */
  poolSelector: string;
  /** The image of placeholder pods, for pools that name none (spec.placeholderImage). */
  placeholderImage: string;
  /** Fault injection for crash-safety tests: the failover step at which the process exits. */
  crashAt: string | undefined;
}

/** A pause image: it only holds the slot's requests on the node. Air-gapped clusters mirror it. */
export const DEFAULT_PLACEHOLDER_IMAGE = "registry.k8s.io/pause:3.10";

export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SettingsError";
  }
}

/** Each setting: its flag (commander attribute name), its environment variable and its default. */
const SOURCES = {
  kubeconfig: { flag: "--kubeconfig <path>", env: "KUBECONFIG" },
  namespace: { flag: "--namespace <name>", env: "UNDERSTUDY_NAMESPACE" },
  leaderElect: { flag: "--leader-elect", env: "UNDERSTUDY_LEADER_ELECT" },
  leaderElectionId: { flag: "--leader-election-id <name>", env: "UNDERSTUDY_LEADER_ELECTION_ID" },
  leaderElectionNamespace: {
    flag: "--leader-election-namespace <name>",
    env: "UNDERSTUDY_LEADER_ELECTION_NAMESPACE",
  },
  leaderElectionIdentity: {
    flag: "--leader-election-identity <id>",
    env: "UNDERSTUDY_LEADER_ELECTION_IDENTITY",
  },
  leaseDuration: { flag: "--lease-duration <duration>", env: "UNDERSTUDY_LEASE_DURATION" },
  renewDeadline: { flag: "--renew-deadline <duration>", env: "UNDERSTUDY_RENEW_DEADLINE" },
  retryPeriod: { flag: "--retry-period <duration>", env: "UNDERSTUDY_RETRY_PERIOD" },
  kubeApiQps: { flag: "--kube-api-qps <number>", env: "UNDERSTUDY_KUBE_API_QPS" },
  kubeApiBurst: { flag: "--kube-api-burst <number>", env: "UNDERSTUDY_KUBE_API_BURST" },
  priorityLanes: { flag: "--priority-lanes", env: "UNDERSTUDY_PRIORITY_LANES" },
  controllers: { flag: "--controllers <names>", env: "UNDERSTUDY_CONTROLLERS" },
  concurrency: { flag: "--concurrency <workers>", env: "UNDERSTUDY_CONCURRENCY" },
  controllerConcurrency: {
    flag: "--controller-concurrency <name=workers,...>",
    env: "UNDERSTUDY_CONTROLLER_CONCURRENCY",
  },
  resyncPeriod: { flag: "--resync-period <duration>", env: "UNDERSTUDY_RESYNC_PERIOD" },
  metricsBindAddress: { flag: "--metrics-bind-address <host:port>", env: "UNDERSTUDY_METRICS_BIND_ADDRESS" },
  logLevel: { flag: "--log-level <level>", env: "UNDERSTUDY_LOG_LEVEL" },
  shutdownTimeout: { flag: "--shutdown-timeout <duration>", env: "UNDERSTUDY_SHUTDOWN_TIMEOUT" },
  poolSelector: { flag: "--pool-selector <selector>", env: "UNDERSTUDY_POOL_SELECTOR" },
  placeholderImage: { flag: "--placeholder-image <image>", env: "UNDERSTUDY_PLACEHOLDER_IMAGE" },
  crashAt: { flag: undefined, env: "UNDERSTUDY_CRASH_AT" },
} as const;
type Key = keyof typeof SOURCES;

const DESCRIPTIONS: Record<Exclude<Key, "crashAt">, string> = {
  kubeconfig: "kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)",
  namespace: "the operator's namespace (default understudy-system)",
  leaderElect: "elect a leader among replicas through a Lease (default on; --no-leader-elect to turn off)",
  leaderElectionId: "name of the leader-election Lease (default understudy-operator)",
  leaderElectionNamespace: "namespace of the leader-election Lease (default: --namespace)",
  leaderElectionIdentity: "this replica's identity in the Lease (default: <hostname>_<random>)",
  leaseDuration: "how long a standby waits before taking an unrenewed lease (default 15s)",
  renewDeadline: "how long the leader retries renewing before it gives up (default 10s)",
  retryPeriod: "interval between attempts to acquire or renew (default 2s)",
  kubeApiQps: "API requests per second the operator allows itself (default 20)",
  kubeApiBurst: "API requests allowed in a burst above the QPS (default 30)",
  priorityLanes:
    "failover steps go first: their API requests and work-queue keys ahead of routine ones (default on; --no-priority-lanes to turn off)",
  controllers:
    "controllers to run: '*' for all, 'name' to enable, '-name' to disable (default '*'; '' for none)",
  concurrency: "workers per controller (default 1)",
  controllerConcurrency: "workers for named controllers, e.g. claims=4,pools=2",
  resyncPeriod: "how often informers re-deliver every cached object (default 10m; 0 turns it off)",
  metricsBindAddress: "address of /healthz, /readyz and /metrics (default :8080; port 0 picks one)",
  logLevel: `log level: ${LOG_LEVELS.join(", ")} (default info)`,
  shutdownTimeout: "how long a graceful shutdown waits for reconciles in flight (default 30s)",
  poolSelector: "label selector of the ContingencyPools this operator manages (default: all)",
  placeholderImage: `image of the pods holding free slots, for pools that name none (default ${DEFAULT_PLACEHOLDER_IMAGE})`,
};

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** Parses a Go-style duration ("15s", "500ms", "1m30s", "0"); undefined if malformed. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === "0") return 0;
  let rest = trimmed;
  let total = 0;
  if (rest === "") return undefined;
  while (rest !== "") {
    const match = DURATION.exec(rest);
    if (!match) return undefined;
    total += Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
    rest = rest.slice(match[0].length);
  }
  return Math.round(total);
}

/** Parses "host:port", ":port" or "[v6]:port"; undefined if malformed. */
export function parseListenAddress(text: string): { host: string | undefined; port: number } | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  const host = match[1] ?? match[2];
  return { host: host === "" ? undefined : host, port };
}

const duration = (what: string) =>
  z.string().transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({ code: "custom", message: `${what} must be a duration such as 15s, 500ms or 1m30s` });
      return z.NEVER;
    }
    return ms;
  });

const positiveDuration = (what: string) =>
  duration(what).refine((ms) => ms > 0, { message: `${what} must be greater than zero` });

const number = (what: string, check: (n: number) => boolean, rule: string) =>
  z.string().transform((text, ctx) => {
    const n = Number(text);
    if (text.trim() === "" || !Number.isFinite(n) || !check(n)) {
      ctx.addIssue({ code: "custom", message: `${what} must be ${rule}` });
      return z.NEVER;
    }
    return n;
  });

const workers = (what: string) => number(what, (n) => Number.isInteger(n) && n >= 1, "an integer >= 1");

const boolean = z.string().transform((text, ctx) => {
  const value = text.trim().toLowerCase();
  if (["true", "1", "yes", "on"].includes(value)) return true;
  if (["false", "0", "no", "off"].includes(value)) return false;
  ctx.addIssue({ code: "custom", message: "must be true or false" });
  return z.NEVER;
});

// Kubernetes names: namespaces are DNS labels, Lease names DNS subdomains.
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const namespaceName = z
  .string()
  .max(63)
  .regex(DNS_LABEL, "must be a DNS label (lowercase letters, digits and '-')");

const RawSettings = z
  .object({
    kubeconfig: z.string().min(1).optional(),
    namespace: namespaceName.default("understudy-system"),
    leaderElect: boolean.default(true),
    leaderElectionId: z
      .string()
      .max(253)
      .regex(DNS_SUBDOMAIN, "must be a DNS subdomain (lowercase letters, digits, '-' and '.')")
      .default("understudy-operator"),
    leaderElectionNamespace: namespaceName.optional(),
    leaderElectionIdentity: z.string().min(1).max(253).optional(),
    leaseDuration: positiveDuration("the lease duration").default(15_000),
    renewDeadline: positiveDuration("the renew deadline").default(10_000),
    retryPeriod: positiveDuration("the retry period").default(2_000),
    kubeApiQps: number("the API QPS", (n) => n > 0, "a number greater than zero").default(20),
    kubeApiBurst: workers("the API burst").default(30),
    priorityLanes: boolean.default(true),
    controllers: z
      .string()
      .transform((text, ctx) => {
        const result = { all: false, enabled: [] as string[], disabled: [] as string[] };
        for (const entry of text
          .split(",")
          .map((e) => e.trim())
          .filter(Boolean)) {
          const match = /^(-?)([A-Za-z0-9_.-]+|\*)$/.exec(entry);
          if (!match || (match[1] && match[2] === "*")) {
            ctx.addIssue({ code: "custom", message: `"${entry}" is not '*', a controller name or -name` });
            return z.NEVER;
          }
          if (match[2] === "*") result.all = true;
          else (match[1] ? result.disabled : result.enabled).push(match[2]!);
        }
        return result;
      })
      .default({ all: true, enabled: [], disabled: [] }),
    concurrency: workers("the concurrency").default(1),
    controllerConcurrency: z
      .string()
      .transform((text, ctx) => {
        const byController: Record<string, number> = {};
        for (const entry of text
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean)) {
          const match = /^([A-Za-z0-9_.-]+)=(\d+)$/.exec(entry);
          if (!match || Number(match[2]) < 1) {
            ctx.addIssue({ code: "custom", message: `"${entry}" is not name=workers with workers >= 1` });
            return z.NEVER;
          }
          byController[match[1]!] = Number(match[2]);
        }
        return byController;
      })
      .default({}),
    resyncPeriod: duration("the resync period").default(600_000),
    metricsBindAddress: z
      .string()
      .transform((text, ctx) => {
        const parsed = parseListenAddress(text);
        if (!parsed) {
          ctx.addIssue({ code: "custom", message: "must be host:port or :port, e.g. :8080 or 127.0.0.1:0" });
          return z.NEVER;
        }
        return { address: text.trim(), ...parsed };
      })
      .default({ address: ":8080", host: undefined, port: 8080 }),
    logLevel: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(", ")}` }).default("info"),
    shutdownTimeout: positiveDuration("the shutdown timeout").default(30_000),
    placeholderImage: z.string().trim().min(1).max(1024).default(DEFAULT_PLACEHOLDER_IMAGE),
    poolSelector: z
      .string()
      .max(1024)
      .refine(
        (text) => {
          try {
            parseLabelSelector(text);
            return true;
          } catch {
            return false;
          }
        },
        { message: "must be a label selector, e.g. tier=prod or understudy.dev/instance in (a,b)" },
      )
      .default(""),
    crashAt: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9:._-]*$/, "must name a step, e.g. Revoked")
      .optional(),
  })
  .superRefine((s, ctx) => {
    const problem = leaderElectionTimingProblem({
      leaseDurationMs: s.leaseDuration,
      renewDeadlineMs: s.renewDeadline,
      retryPeriodMs: s.retryPeriod,
    });
    if (problem) ctx.addIssue({ code: "custom", path: ["leaseDuration"], message: problem });
  });

/** The command line the operator accepts (also what --help prints). */
export function settingsCommand(): Command {
  const command = new Command("understudy-operator")
    .description("The Understudy operator: reconciles contingency pools, pool claims and storage services.")
    .allowExcessArguments(false)
    .exitOverride();
  for (const key of Object.keys(DESCRIPTIONS) as (keyof typeof DESCRIPTIONS)[]) {
    const flag = SOURCES[key].flag;
    command.option(flag, `${DESCRIPTIONS[key]} [env ${SOURCES[key].env}]`);
    if (key === "leaderElect") command.option("--no-leader-elect", "run without leader election");
    if (key === "priorityLanes")
      command.option("--no-priority-lanes", "queue failover steps with routine work (for comparison)");
  }
  return command;
}

/**
 * Reads settings from `argv` (without the node and script paths) over `env`. Throws
 * SettingsError listing every bad setting; a CommanderError for --help and unknown flags.
 */
export function parseSettings(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
  command: Command = settingsCommand(),
): Settings {
  command.parse([...argv], { from: "user" });
  const flags = command.opts<Record<string, unknown>>();
  const raw: Record<string, string | undefined> = {};
  for (const key of Object.keys(SOURCES) as Key[]) {
    const fromFlag = flags[key];
    const fromEnv = env[SOURCES[key].env];
    if (fromFlag !== undefined) raw[key] = String(fromFlag);
    else if (fromEnv !== undefined && fromEnv !== "") raw[key] = fromEnv;
  }

  const parsed = RawSettings.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const key = issue.path[0] as Key | undefined;
      if (!key) return `  ${issue.message}`;
      const { flag, env: variable } = SOURCES[key];
      const name = [flag?.split(" ")[0], variable].filter(Boolean).join(" / ");
      const given = raw[key] === undefined ? "" : ` (got "${raw[key]}")`;
      return `  ${name}: ${issue.message}${given}`;
    });
    throw new SettingsError(`invalid settings:\n${lines.join("\n")}`);
  }
  const s = parsed.data;
  return {
    kubeconfig: s.kubeconfig,
    namespace: s.namespace,
    leaderElection: {
      enabled: s.leaderElect,
      leaseName: s.leaderElectionId,
      namespace: s.leaderElectionNamespace ?? s.namespace,
      identity: s.leaderElectionIdentity ?? `${hostname()}_${randomUUID().slice(0, 8)}`,
      leaseDurationMs: s.leaseDuration,
      renewDeadlineMs: s.renewDeadline,
      retryPeriodMs: s.retryPeriod,
    },
    client: { qps: s.kubeApiQps, burst: s.kubeApiBurst, priorityLanes: s.priorityLanes },
    controllers: s.controllers,
    concurrency: { default: s.concurrency, byController: s.controllerConcurrency },
    resyncPeriodMs: s.resyncPeriod,
    metrics: s.metricsBindAddress,
    logLevel: s.logLevel,
    shutdownTimeoutMs: s.shutdownTimeout,
    poolSelector: s.poolSelector,
    placeholderImage: s.placeholderImage,
    crashAt: s.crashAt,
  };
}

/** Whether the settings let the controller named `name` run. */
export function controllerEnabled(settings: Pick<Settings, "controllers">, name: string): boolean {
  const { all, enabled, disabled } = settings.controllers;
  if (disabled.includes(name)) return false;
  return all || enabled.includes(name);
}

export { CommanderError };
