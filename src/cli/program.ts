// The command layer: parse arguments, fetch, hand what was listed to a pure render, print.
import { poolResource, serviceAnnotations, storageServiceResource as serviceResource } from "../api/index.ts";
import tab from "@bomb.sh/tab/commander";
import { Argument, Command, CommanderError, Option } from "commander";
import { writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { errorMessage } from "../kube/errors.ts";
import { connect, type Connection } from "./kube.ts";
import { getPool, getService, listClaims, listPools, listServices, listSlotLeases } from "./fetch.ts";
import {
  sortSummaries,
  statusReport,
  summarizeClaim,
  summarizePool,
  summarizeService,
  summarizeSlot,
  type FailoverSummary,
} from "./model.ts";
import {
  renderClaims,
  renderFailover,
  renderPoolDetail,
  renderPools,
  renderServices,
  renderStatus,
  type RenderContext,
} from "./render.ts";
import { renderCharts } from "../plan/bar-chart.ts";
import { planFromCluster } from "../plan/observe-cluster.ts";
import { planCharts } from "../plan/plan.ts";
import { addPlanOptions, planInputs, type PlanFlags } from "./plan-flags.ts";
import { renderPlan } from "./render-plan.ts";
import { makeStyle, wantsColor } from "./style.ts";
import { renderUsage, usageReport } from "./usage.ts";
import { switchoverFinished, switchoverValue } from "./switchover.ts";
import {
  collectReport,
  REPORT_KINDS,
  reportEntries,
  reportName,
  writeArchive,
  type ReportKind,
} from "./report.ts";
import { VERSION } from "../version.ts";

interface OutputStream {
  write(text: string): unknown;
  isTTY?: boolean;
  hasColors?: () => boolean;
}

export interface CliIO {
  stdout: OutputStream;
  stderr: OutputStream;
  now(): number;
}

interface GlobalOptions {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  allNamespaces?: boolean;
  output: "table" | "json";
}

const POLL_MS = 250;

/** `kubectl understudy` when run as a kubectl plugin, `understudy` otherwise. */
export function programName(argv1: string | undefined): string {
  const base = (argv1 ?? "").split(/[\\/]/).pop() ?? "";
  return base.startsWith("kubectl-") ? "kubectl understudy" : "understudy";
}

function buildProgram(io: CliIO, name = "understudy"): Command {
  const program = new Command(name)
    .description(
      "Inspect Understudy contingency pools, claims and storage services, and trigger switchovers.",
    )
    .option("--kubeconfig <path>", "kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
    .option("--context <name>", "kubeconfig context to use")
    .option("-n, --namespace <namespace>", "namespace (default: the context's namespace)")
    .option("-A, --all-namespaces", "list across all namespaces")
    .addOption(
      new Option("-o, --output <format>", "output format").choices(["table", "json"]).default("table"),
    )
    .version(VERSION, "--version", "print the version")
    .showHelpAfterError()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .exitOverride();

  const context = (): RenderContext => ({ style: makeStyle(wantsColor(io.stdout)), now: io.now() });
  const globals = (cmd: Command) => cmd.optsWithGlobals<GlobalOptions>();
  const open = (opts: GlobalOptions): Connection =>
    connect({ kubeconfig: opts.kubeconfig, context: opts.context });
  /** The namespace to list in, or undefined for all of them. */
  const scope = (opts: GlobalOptions, conn: Connection) =>
    opts.allNamespaces ? undefined : (opts.namespace ?? conn.namespace);
  const print = (opts: GlobalOptions, json: unknown, table: () => string) =>
    io.stdout.write(opts.output === "json" ? JSON.stringify(json, null, 2) + "\n" : table());

  program
    .command("status")
    .description(
      "storage services (phase, head, epoch, last failover), pools (slots by zone and state) and claims",
    )
    .action(async (_opts, cmd: Command) => {
      const opts = globals(cmd);
      const conn = open(opts);
      const ns = scope(opts, conn);
      const [pools, claims, services] = await Promise.all([
        listPools(conn.client),
        listClaims(conn.client, ns),
        listServices(conn.client, ns),
      ]);
      const report = statusReport({ pools, claims, services });
      print(opts, report, () => renderStatus(report, context()));
    });

  program
    .command("pool")
    .alias("pools")
    .argument("[name]", "a pool to show in detail, with its slots")
    .description("contingency pools, or one pool with its zones and slots")
    .action(async (name: string | undefined, _opts, cmd: Command) => {
      const opts = globals(cmd);
      const conn = open(opts);
      if (!name) {
        const pools = (await listPools(conn.client)).map(summarizePool).sort(sortSummaries);
        print(opts, pools, () => renderPools(pools, context()));
        return;
      }
      const pool = summarizePool(await getPool(conn.client, name));
      const leases = await listSlotLeases(conn.client, name);
      const slots = leases?.map(summarizeSlot);
      print(opts, { ...pool, slots }, () => renderPoolDetail(pool, slots, context()));
    });

  program
    .command("claims")
    .description("pool claims: phase, slot, zone, node (-A for every namespace)")
    .action(async (_opts, cmd: Command) => {
      const opts = globals(cmd);
      const conn = open(opts);
      const ns = scope(opts, conn);
      const claims = (await listClaims(conn.client, ns)).map(summarizeClaim).sort(sortSummaries);
      print(opts, claims, () => renderClaims(claims, context(), { namespaceColumn: ns === undefined }));
    });

  program
    .command("usage")
    .description(
      "what each claim and namespace used: slot-seconds, seconds waiting for a slot, revocations by reason (-A for every namespace)",
    )
    .action(async (_opts, cmd: Command) => {
      const opts = globals(cmd);
      const conn = open(opts);
      const report = usageReport(await listClaims(conn.client, scope(opts, conn)), io.now());
      print(opts, report, () => renderUsage(report, context()));
    });

  program
    .command("services")
    .description("storage services: phase, epoch, head, servers, failovers (-A for every namespace)")
    .action(async (_opts, cmd: Command) => {
      const opts = globals(cmd);
      const conn = open(opts);
      const services = (await listServices(conn.client, scope(opts, conn)))
        .map(summarizeService)
        .sort(sortSummaries);
      print(opts, services, () => renderServices(services, context()));
    });

  program
    .command("failover")
    .argument("<service>", "the storage service whose head to move")
    .description("manual switchover: ask the operator to fail the head over to a pool slot now")
    .option("--wait", "wait until the failover has finished and print its timeline")
    .option("--timeout <seconds>", "how long --wait waits", (v) => positiveNumber(v, "--timeout"), 120)
    .action(async (service: string, local: { wait?: boolean; timeout: number }, cmd: Command) => {
      const opts = globals(cmd);
      const conn = open(opts);
      const namespace = opts.namespace ?? conn.namespace;
      const current = await getService(conn.client, service, namespace);
      const before = summarizeService(current).lastFailover;
      const value = switchoverValue(io.now(), current.metadata?.annotations?.[serviceAnnotations.switchover]);
      await conn.client.patchCustom(serviceResource, service, namespace, {
        metadata: { annotations: { [serviceAnnotations.switchover]: value } },
      });
      const request = { namespace, name: service, switchover: value };
      if (!local.wait) {
        print(
          opts,
          request,
          () =>
            `switchover requested for ${namespace}/${service} (${serviceAnnotations.switchover}=${value})\n`,
        );
        return;
      }
      if (opts.output !== "json")
        io.stderr.write(
          `switchover requested for ${namespace}/${service}; waiting for the failover to finish\n`,
        );
      const failover = await waitForSwitchover(conn, namespace, service, value, before, {
        timeoutMs: local.timeout * 1000,
        now: io.now,
        onStep: (step) => {
          if (opts.output !== "json") io.stderr.write(`  ${step}\n`);
        },
      });
      print(opts, { ...request, failover }, () => renderFailover(failover, context()));
    });

  program
    .command("version")
    .description("the version of this command, and of the Node.js that runs it")
    .action((_opts, cmd: Command) => {
      const version = {
        version: VERSION,
        node: process.version,
        platform: `${process.platform}/${process.arch}`,
      };
      print(
        globals(cmd),
        version,
        () => `understudy ${VERSION} (node ${version.node}, ${version.platform})\n`,
      );
    });

  program
    .command("failback")
    .argument("<service>", "the storage service whose head to bring back to its primary zone")
    .description(
      "manual failback: ask the operator to move the head from its pool slot back to normal capacity in the primary zone",
    )
    .action(async (service: string, _opts, cmd: Command) => {
      const opts = globals(cmd);
      const conn = open(opts);
      const namespace = opts.namespace ?? conn.namespace;
      const current = await getService(conn.client, service, namespace);
      const value = switchoverValue(io.now(), current.metadata?.annotations?.[serviceAnnotations.failback]);
      await conn.client.patchCustom(serviceResource, service, namespace, {
        metadata: { annotations: { [serviceAnnotations.failback]: value } },
      });
      print(
        opts,
        { namespace, name: service, failback: value },
        () =>
          `failback requested for ${namespace}/${service} (${serviceAnnotations.failback}=${value}); ` +
          `\`understudy services\` shows it, and its Events say why if it is refused\n`,
      );
    });

  for (const [verb, paused] of [
    ["pause", true],
    ["resume", false],
  ] as const)
    program
      .command(verb)
      .argument("[service]", "the storage service (or --pool for every service of a pool)")
      .option("--pool <pool>", "the whole pool: every storage service that fails over to it")
      .description(
        paused
          ? "pause automatic failover and failback of a storage service or of a whole pool, for planned maintenance"
          : "resume automatic failover and failback of a storage service or of a whole pool",
      )
      .action(async (service: string | undefined, local: { pool?: string }, cmd: Command) => {
        const opts = globals(cmd);
        if ((service === undefined) === (local.pool === undefined))
          cmd.error(`error: ${verb} takes a service or --pool <pool>, one of the two`, { exitCode: 2 });
        const conn = open(opts);
        if (local.pool !== undefined) {
          await getPool(conn.client, local.pool);
          await conn.client.patchCustom(poolResource, local.pool, undefined, {
            spec: { failoverPaused: paused },
          });
          print(opts, { pool: local.pool, failoverPaused: paused }, () =>
            paused
              ? `automatic failover paused for every storage service of pool ${local.pool}\n`
              : `automatic failover resumed for pool ${local.pool}\n`,
          );
          return;
        }
        const namespace = opts.namespace ?? conn.namespace;
        await getService(conn.client, service!, namespace);
        await conn.client.patchCustom(serviceResource, service!, namespace, {
          spec: { failover: { paused } },
        });
        print(opts, { namespace, name: service, paused }, () =>
          paused
            ? `automatic failover paused for ${namespace}/${service}: a failed head is reported, not replaced\n`
            : `automatic failover resumed for ${namespace}/${service}\n`,
        );
      });

  addPlanOptions(
    program
      .command("plan")
      .argument("[pool]", "the pool to plan (default: the only pool there is)")
      .description(
        "recommend slots per zone and hot spares for a failover target, from the pool, its storage services, claims and nodes, by simulating days with the operator's own decisions",
      ),
  ).action(async (pool: string | undefined, local: PlanFlags, cmd: Command) => {
    const opts = globals(cmd);
    const conn = open(opts);
    const { overrides, request } = planInputs(local);
    const report = await planFromCluster(conn.client, pool, overrides, request, io.now());
    if (local.svg) {
      writeFileSync(local.svg, renderCharts(planCharts(report)));
      io.stderr.write(`chart: ${local.svg}\n`);
    }
    print(opts, report, () => renderPlan(report, context()));
  });

  program
    .command("report")
    .addArgument(new Argument("<kind>", "what to report on").choices(REPORT_KINDS))
    .argument("<name>", "the storage service (in -n's namespace) or the pool")
    .description(
      "a support bundle in one .tar.gz: the service or pool with everything the operator made for it, their Events, and the operator's logs",
    )
    .option(
      "-f, --file <path>",
      "where to write it (default: ./understudy-report-<kind>-<name>-<time>.tar.gz)",
    )
    .action(async (kind: ReportKind, name: string, local: { file?: string }, cmd: Command) => {
      const opts = globals(cmd);
      const conn = open(opts);
      const target = {
        kind,
        name,
        namespace: kind === "service" ? (opts.namespace ?? conn.namespace) : undefined,
      };
      const collected = await collectReport(conn.client, target);
      const now = io.now();
      const entries = reportEntries(target, collected, now);
      const file = local.file ?? `${reportName(target, now)}.tar.gz`;
      await writeArchive(file, entries);
      const summary = {
        file,
        objects: entries.filter((e) => e.path.includes("/resources/")).length,
        events: collected.events.length,
        logs: collected.logs.filter((l) => l.error === undefined).length,
        problems: collected.problems.length + collected.logs.filter((l) => l.error !== undefined).length,
      };
      print(
        opts,
        summary,
        () =>
          `wrote ${file}: ${summary.objects} objects, ${summary.events} events, ${summary.logs} operator logs` +
          (summary.problems > 0
            ? ` (${summary.problems} could not be read: see problems.txt and logs/)`
            : "") +
          "\n",
      );
    });

  // Shell completion from the command tree above (keep it last): `complete bash|zsh|fish|powershell`
  // prints the script, which then asks `understudy complete -- <words>` for candidates. The script
  // is for the `understudy` command even when run as `kubectl understudy` (tab takes the name now).
  program.name("understudy");
  tab(program);
  program.name(name);
  return program;
}

/** Polls the service until a failover other than `before` has finished; reports each step seen on the way. */
async function waitForSwitchover(
  conn: Connection,
  namespace: string,
  service: string,
  request: string,
  before: FailoverSummary | undefined,
  options: { timeoutMs: number; now: () => number; onStep: (step: string) => void },
): Promise<FailoverSummary> {
  const deadline = options.now() + options.timeoutMs;
  let lastStep: string | undefined;
  let lastWait: string | undefined;
  for (;;) {
    const raw = await getService(conn.client, service, namespace);
    const now = summarizeService(raw);
    if (now.lastFailover && switchoverFinished(request, before, now)) return now.lastFailover;
    // A switchover that would revoke a tenant may wait for the cooldown: say until when.
    const waiting = raw.status?.conditions?.find(
      (c) => c.type === "SwitchoverPending" && c.status === "True",
    );
    if (waiting?.message && waiting.message !== lastWait) options.onStep(`waiting: ${waiting.message}`);
    lastWait = waiting?.message;
    const step = now.failingOver?.step;
    if (step && step !== lastStep) options.onStep(step);
    lastStep = step ?? lastStep;
    if (options.now() >= deadline)
      throw new Error(
        `no failover of ${namespace}/${service} finished within ${options.timeoutMs / 1000}s (last step seen: ${lastStep ?? "none"})`,
      );
    await sleep(POLL_MS);
  }
}

function positiveNumber(value: string, flag: string): number {
  const n = Number(value.replace(/s$/, ""));
  if (!Number.isFinite(n) || n <= 0)
    throw new CommanderError(2, "understudy.invalidArgument", `${flag} must be a positive number of seconds`);
  return n;
}

/** Runs the CLI; resolves to the process exit code. */
export async function run(argv: readonly string[], io: CliIO): Promise<number> {
  const program = buildProgram(io, programName(argv[1]));
  try {
    await program.parseAsync([...argv]);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode; // commander has printed help or the usage error
    io.stderr.write(`error: ${errorMessage(err)}\n`);
    return 1;
  }
}
