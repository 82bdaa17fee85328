// understudy-dataplane: `server` or `head`, configured by flags or UNDERSTUDY_* variables (entry:
// main.ts). A role's own modules are imported when that role starts, so a head does not load the
// server's storage engine and anti-entropy, nor a server the head's routing.
import { Command, Option } from "commander";
import { HEAD_SERVING_LIMITS, SERVER_SERVING_LIMITS, type ServingLimits } from "./admission.ts";
import { loadServers, loadToken, positiveInt } from "./config.ts";
import { CLIENT_TOKENS_RELOAD_INTERVAL_MS, ClientTokens } from "./client-auth.ts";
import { createLogger } from "./log.ts";
import { TLS_MODES, TLS_RELOAD_INTERVAL_MS, TlsMaterial, type TlsMode } from "./tls.ts";

const ROLES = ["server", "head"];

function shared(cmd: Command): Command {
  return cmd
    .addOption(
      new Option("--listen <host:port>", "address to listen on")
        .env("UNDERSTUDY_LISTEN")
        .default("0.0.0.0:7400"),
    )
    .addOption(
      new Option("--token <token>", "shared token for head-to-server traffic").env("UNDERSTUDY_TOKEN"),
    )
    .addOption(
      new Option("--token-file <path>", "file holding the shared token").env("UNDERSTUDY_TOKEN_FILE"),
    )
    .addOption(
      new Option("--servers <list>", "zone=host:port,... or a JSON file of [{zone, address}]").env(
        "UNDERSTUDY_SERVERS",
      ),
    )
    .addOption(
      new Option("--partitions <n>", "partitions keys are hashed into (fixed for the service's life)")
        .env("UNDERSTUDY_PARTITIONS")
        .argParser(positiveInt("partitions"))
        .default(64),
    )
    .addOption(
      new Option("--replication-factor <n>", "replicas of each partition, in distinct zones")
        .env("UNDERSTUDY_REPLICATION_FACTOR")
        .argParser(positiveInt("replication factor"))
        .default(3),
    )
    .addOption(
      new Option("--metrics-listen <host:port>", "also serve GET /metrics on this address alone").env(
        "UNDERSTUDY_METRICS_LISTEN",
      ),
    )
    .addOption(
      new Option("--service-uid <uid>", "the StorageService's UID, named on every reply").env(
        "UNDERSTUDY_SERVICE_UID",
      ),
    )
    .addOption(
      new Option("--pod-name <name>", "this pod's name, named on every reply").env("UNDERSTUDY_POD_NAME"),
    )
    .addOption(
      new Option("--tls-mode <mode>", "disabled: plain HTTP; permissive: TLS and plain; required: TLS only")
        .env("UNDERSTUDY_TLS_MODE")
        .choices(TLS_MODES)
        .default("disabled"),
    )
    .addOption(
      new Option("--tls-cert-file <path>", "this process's certificate (PEM), re-read when it changes").env(
        "UNDERSTUDY_TLS_CERT_FILE",
      ),
    )
    .addOption(
      new Option("--tls-key-file <path>", "the certificate's private key (PEM)").env(
        "UNDERSTUDY_TLS_KEY_FILE",
      ),
    )
    .addOption(
      new Option("--tls-ca-file <path>", "the CA (PEM) that peers' certificates must chain to").env(
        "UNDERSTUDY_TLS_CA_FILE",
      ),
    )
    .addOption(
      new Option("--tls-reload-interval-ms <ms>", "how often the TLS files are checked for a change")
        .env("UNDERSTUDY_TLS_RELOAD_INTERVAL_MS")
        .argParser(positiveInt("TLS reload interval"))
        .default(TLS_RELOAD_INTERVAL_MS),
    )
    .addOption(new Option("--log-level <level>").env("UNDERSTUDY_LOG_LEVEL").default("info"));
}

/** The TLS material from the flags, watched for renewals; undefined when TLS is disabled. */
function tlsOf(
  flags: SharedFlags,
  log: ReturnType<typeof createLogger>,
): { mode: TlsMode; material: TlsMaterial } | undefined {
  if (flags.tlsMode === "disabled") return undefined;
  const { tlsCertFile: certFile, tlsKeyFile: keyFile, tlsCaFile: caFile } = flags;
  if (certFile === undefined || keyFile === undefined || caFile === undefined)
    throw new Error(`--tls-mode ${flags.tlsMode} needs --tls-cert-file, --tls-key-file and --tls-ca-file`);
  const material = TlsMaterial.fromFiles({ certFile, keyFile, caFile });
  material.onChange(() => log.info({ certFile }, "TLS certificate reloaded"));
  material.watch(flags.tlsReloadIntervalMs, (err) =>
    log.warn({ err: err.message }, "TLS files changed but cannot be used yet; keeping the current ones"),
  );
  return { mode: flags.tlsMode, material };
}

/** Who this process says it is on every reply (see identity.ts). */
function identityOf(flags: SharedFlags): { service?: string; pod?: string } {
  return { service: flags.serviceUid, pod: flags.podName };
}

/** Flag, variable and meaning of each serving limit; the defaults depend on the role. */
const LIMIT_FLAGS: Record<keyof ServingLimits, [flag: string, env: string, help: string]> = {
  maxConnections: ["--max-connections <n>", "UNDERSTUDY_MAX_CONNECTIONS", "open connections"],
  maxRequestsInFlight: [
    "--max-requests-in-flight <n>",
    "UNDERSTUDY_MAX_REQUESTS_IN_FLIGHT",
    "requests handled at once (past it: 503 + Retry-After)",
  ],
  maxBufferedBodyBytes: [
    "--max-buffered-body-bytes <n>",
    "UNDERSTUDY_MAX_BUFFERED_BODY_BYTES",
    "request body bytes held at once by all requests (past it: 503 + Retry-After)",
  ],
  headersTimeoutMs: [
    "--headers-timeout-ms <ms>",
    "UNDERSTUDY_HEADERS_TIMEOUT_MS",
    "time a connection has to send its request headers",
  ],
  requestTimeoutMs: [
    "--request-timeout-ms <ms>",
    "UNDERSTUDY_REQUEST_TIMEOUT_MS",
    "time a request has to arrive whole",
  ],
  keepAliveTimeoutMs: [
    "--keep-alive-timeout-ms <ms>",
    "UNDERSTUDY_KEEP_ALIVE_TIMEOUT_MS",
    "idle time after which a keep-alive connection is closed",
  ],
  maxRequestsPerSocket: [
    "--max-requests-per-socket <n>",
    "UNDERSTUDY_MAX_REQUESTS_PER_SOCKET",
    "requests one connection may carry (0 = no limit)",
  ],
};

function withLimits(cmd: Command, defaults: ServingLimits): Command {
  for (const [key, [flag, env, help]] of Object.entries(LIMIT_FLAGS)) {
    cmd.addOption(
      new Option(flag, help)
        .env(env)
        .argParser(positiveInt(env))
        .default(defaults[key as keyof ServingLimits]),
    );
  }
  return cmd;
}

function limitsOf(flags: ServingLimits): ServingLimits {
  return Object.fromEntries(
    Object.keys(LIMIT_FLAGS).map((key) => [key, flags[key as keyof ServingLimits]]),
  ) as unknown as ServingLimits;
}

interface SharedFlags {
  listen: string;
  token?: string;
  tokenFile?: string;
  servers?: string;
  partitions: number;
  replicationFactor: number;
  metricsListen?: string;
  serviceUid?: string;
  podName?: string;
  tlsMode: TlsMode;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  tlsCaFile?: string;
  tlsReloadIntervalMs: number;
  logLevel: string;
}

function onSignals(close: () => Promise<void>, log: ReturnType<typeof createLogger>): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

const program = new Command("understudy-dataplane").description(
  "Understudy storage service: head and server roles",
);

withLimits(
  shared(program.command("server").description("store partitions durably and apply what heads send")),
  SERVER_SERVING_LIMITS,
)
  .addOption(
    new Option("--data-dir <path>", "directory of the server's database")
      .env("UNDERSTUDY_DATA_DIR")
      .makeOptionMandatory(),
  )
  .addOption(new Option("--zone <zone>", "this server's zone").env("UNDERSTUDY_ZONE").makeOptionMandatory())
  .addOption(
    new Option("--advertise <host:port>", "this server's address in --servers").env("UNDERSTUDY_ADVERTISE"),
  )
  .addOption(new Option("--epoch <n>", "epoch floor").env("UNDERSTUDY_EPOCH").argParser(positiveInt("epoch")))
  .addOption(
    new Option(
      "--group-commit-window-ms <ms>",
      "extra wait to gather a commit batch (0 = next event-loop turn)",
    )
      .env("UNDERSTUDY_GROUP_COMMIT_WINDOW_MS")
      .argParser(positiveInt("group commit window"))
      .default(0),
  )
  .addOption(
    new Option("--anti-entropy-interval-ms <ms>", "pause between anti-entropy rounds (0 = only at start)")
      .env("UNDERSTUDY_ANTI_ENTROPY_INTERVAL_MS")
      .argParser(positiveInt("anti-entropy interval"))
      .default(5000),
  )
  .action(
    async (
      flags: SharedFlags &
        ServingLimits & {
          dataDir: string;
          zone: string;
          advertise?: string;
          epoch?: number;
          groupCommitWindowMs: number;
          antiEntropyIntervalMs: number;
        },
    ) => {
      const logger = createLogger("understudy-server", flags.logLevel);
      const { startServer } = await import("./server.ts");
      const handle = await startServer({
        listen: flags.listen,
        dataDir: flags.dataDir,
        zone: flags.zone,
        identity: identityOf(flags),
        token: loadToken(flags.token, flags.tokenFile),
        servers: flags.servers !== undefined ? loadServers(flags.servers) : undefined,
        advertise: flags.advertise,
        partitions: flags.partitions,
        replicationFactor: flags.replicationFactor,
        epoch: flags.epoch,
        groupCommitWindowMs: flags.groupCommitWindowMs,
        antiEntropyIntervalMs: flags.antiEntropyIntervalMs,
        limits: limitsOf(flags),
        metricsListen: flags.metricsListen,
        tls: tlsOf(flags, logger),
        logger,
        processMetrics: true,
      });
      onSignals(() => handle.close(), logger);
    },
  );

withLimits(
  shared(program.command("head").description("route client operations to server quorums")),
  HEAD_SERVING_LIMITS,
)
  .addOption(
    new Option("--epoch <n>", "this head's epoch (raised by the operator at every failover)")
      .env("UNDERSTUDY_EPOCH")
      .argParser(positiveInt("epoch"))
      .makeOptionMandatory(),
  )
  .addOption(
    new Option("--read-quorum <n>", "replies a read waits for (default R - W + 1)")
      .env("UNDERSTUDY_READ_QUORUM")
      .argParser(positiveInt("read quorum")),
  )
  .addOption(
    new Option("--server-timeout-ms <ms>", "timeout of one request to a server")
      .env("UNDERSTUDY_SERVER_TIMEOUT_MS")
      .argParser(positiveInt("server timeout"))
      .default(2000),
  )
  .addOption(
    new Option(
      "--client-tokens-file <path>",
      "JSON {client: sha256 hex of its token}; set, only those clients may operate (re-read when it changes)",
    ).env("UNDERSTUDY_CLIENT_TOKENS_FILE"),
  )
  .action(
    async (
      flags: SharedFlags &
        ServingLimits & {
          epoch: number;
          readQuorum?: number;
          serverTimeoutMs: number;
          clientTokensFile?: string;
        },
    ) => {
      const logger = createLogger("understudy-head", flags.logLevel);
      if (flags.servers === undefined) throw new Error("a head needs --servers / UNDERSTUDY_SERVERS");
      const clientTokens =
        flags.clientTokensFile === undefined ? undefined : ClientTokens.fromFile(flags.clientTokensFile);
      clientTokens?.watch(
        CLIENT_TOKENS_RELOAD_INTERVAL_MS,
        (clients) => logger.info({ clients }, "client credentials reloaded"),
        (err) =>
          logger.warn(
            { err: err.message },
            "client credentials file cannot be used; keeping the current ones",
          ),
      );
      const { startHead } = await import("./head.ts");
      const handle = await startHead({
        listen: flags.listen,
        token: loadToken(flags.token, flags.tokenFile),
        servers: loadServers(flags.servers),
        epoch: flags.epoch,
        partitions: flags.partitions,
        replicationFactor: flags.replicationFactor,
        readQuorum: flags.readQuorum,
        serverTimeoutMs: flags.serverTimeoutMs,
        identity: identityOf(flags),
        limits: limitsOf(flags),
        metricsListen: flags.metricsListen,
        tls: tlsOf(flags, logger),
        ...(clientTokens !== undefined ? { clientTokens } : {}),
        logger,
        processMetrics: true,
      });
      handle.ready.catch((err: unknown) =>
        logger.error({ err: (err as Error).message }, "head cannot take its epoch"),
      );
      onSignals(() => handle.close(), logger);
    },
  );

/** Runs the program on `node <entry> ...` arguments; UNDERSTUDY_ROLE names the role when they do not. */
export function run(processArgv: readonly string[], role = process.env.UNDERSTUDY_ROLE): void {
  const argv = [...processArgv];
  if (
    role !== undefined &&
    !ROLES.includes(argv[2] ?? "") &&
    !["help", "-h", "--help"].includes(argv[2] ?? "")
  ) {
    argv.splice(2, 0, role);
  }
  program.parseAsync(argv).catch((err: unknown) => {
    console.error(`understudy-dataplane: ${(err as Error).message}`);
    process.exit(2);
  });
}
