// understudy-dataplane: `server` or `head`, configured by flags or UNDERSTUDY_* variables.
import { Command, Option } from "commander";
import { loadServers, loadToken, positiveInt } from "./config.ts";
import { startHead } from "./head.ts";
import { createLogger } from "./log.ts";
import { startServer } from "./server.ts";

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
      new Option("--service-uid <uid>", "the StorageService's UID, named on every reply").env(
        "UNDERSTUDY_SERVICE_UID",
      ),
    )
    .addOption(
      new Option("--pod-name <name>", "this pod's name, named on every reply").env("UNDERSTUDY_POD_NAME"),
    )
    .addOption(new Option("--log-level <level>").env("UNDERSTUDY_LOG_LEVEL").default("info"));
}

/** Who this process says it is on every reply (see identity.ts). */
function identityOf(flags: SharedFlags): { service?: string; pod?: string } {
  return { service: flags.serviceUid, pod: flags.podName };
}

interface SharedFlags {
  listen: string;
  token?: string;
  tokenFile?: string;
  servers?: string;
  partitions: number;
  replicationFactor: number;
  serviceUid?: string;
  podName?: string;
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

shared(program.command("server").description("store partitions durably and apply what heads send"))
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
      flags: SharedFlags & {
        dataDir: string;
        zone: string;
        advertise?: string;
        epoch?: number;
        groupCommitWindowMs: number;
        antiEntropyIntervalMs: number;
      },
    ) => {
      const logger = createLogger("understudy-server", flags.logLevel);
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
        logger,
        processMetrics: true,
      });
      onSignals(handle.close, logger);
    },
  );

shared(program.command("head").description("route client operations to server quorums"))
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
  .action(async (flags: SharedFlags & { epoch: number; readQuorum?: number; serverTimeoutMs: number }) => {
    const logger = createLogger("understudy-head", flags.logLevel);
    if (flags.servers === undefined) throw new Error("a head needs --servers / UNDERSTUDY_SERVERS");
    const handle = await startHead({
      listen: flags.listen,
      token: loadToken(flags.token, flags.tokenFile),
      servers: loadServers(flags.servers),
      epoch: flags.epoch,
      identity: identityOf(flags),
      partitions: flags.partitions,
      replicationFactor: flags.replicationFactor,
      readQuorum: flags.readQuorum,
      serverTimeoutMs: flags.serverTimeoutMs,
      logger,
      processMetrics: true,
    });
    handle.ready.catch((err: unknown) =>
      logger.error({ err: (err as Error).message }, "head cannot take its epoch"),
    );
    onSignals(handle.close, logger);
  });

const argv = [...process.argv];
const role = process.env.UNDERSTUDY_ROLE;
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
