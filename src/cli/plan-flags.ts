// The flags of `understudy plan`: the search's own, and one per assumption to override what was
// observed. Each is checked as it is parsed, so a bad value fails with the flag's name and the rule.
import { InvalidArgumentError, Option, type Command } from "commander";
import { flagFor, type AssumptionOverrides } from "../plan/assumptions.ts";
import type { PlanRequest } from "../plan/observe-cluster.ts";
import { DEFAULT_SEARCH } from "../plan/plan.ts";

type Parser = (value: string) => number;

const number =
  (rule: string, holds: (n: number) => boolean): Parser =>
  (value) => {
    const n = value.trim() === "" ? NaN : Number(value);
    if (!Number.isFinite(n) || !holds(n)) throw new InvalidArgumentError(`It must be ${rule}.`);
    return n;
  };

const share = number("a share from 0 to 1 (for example 0.25)", (n) => n >= 0 && n <= 1);
const target = number("a share above 0 and at most 1 (for example 0.999)", (n) => n > 0 && n <= 1);
const positive = number("a positive number", (n) => n > 0);
const nonNegative = number("a number, 0 or more", (n) => n >= 0);
const count = (min: number, max: number) =>
  number(`a whole number from ${min} to ${max}`, (n) => Number.isInteger(n) && n >= min && n <= max);

export interface PlanFlags extends AssumptionOverrides {
  target: number;
  freeTarget?: number;
  days: number;
  tickSeconds: number;
  seed: number;
  maxSlotsPerZone?: number;
  svg?: string;
}

/** The override flags, named after the assumptions they replace (flagFor). */
const OVERRIDES: [keyof AssumptionOverrides, string, string, Parser][] = [
  ["services", "<n>", "storage services, spread evenly over the pool's zones", count(1, 10_000)],
  ["slotsPerZone", "<n>", "the pool's slots per zone now", count(0, 1000)],
  ["hotSpares", "<n>", "the pool's hot spares now", count(0, 16_000)],
  ["headroomPerZone", "<n>", "room for more slots in each zone beyond the pool's", count(0, 16_000)],
  ["headMtbfHours", "<hours>", "mean time between failures of one head", positive],
  ["meanRepairMinutes", "<minutes>", "how long a failed-over head stays on its slot", positive],
  [
    "zoneOutageMinutes",
    "<minutes>",
    "length of the one zone outage a day",
    number("0 to 1440", (n) => n >= 0 && n <= 1440),
  ],
  ["peakArrivalsPerHour", "<n>", "tenant claims arriving per hour at the daily peak", nonNegative],
  ["meanTenantMinutes", "<minutes>", "how long a tenant's work runs on a slot", positive],
  ["patienceMinutes", "<minutes>", "how long a Pending claim waits before it is withdrawn", positive],
  ["zonedShare", "<share>", "share of claims that name a zone", share],
  ["requeueShare", "<share>", "share of claims requeued when revoked", share],
];

export function addPlanOptions(command: Command): Command {
  command
    .addOption(
      new Option("--target <share>", "share of failovers that must find capacity at once")
        .argParser(target)
        .default(DEFAULT_SEARCH.target),
    )
    .addOption(
      new Option(
        "--free-target <share>",
        "share of failovers that must find a free slot (no tenant revoked); sizes the hot spares",
      ).argParser(share),
    )
    .addOption(
      new Option("--days <n>", "simulated days per pool size")
        .argParser(count(1, 60))
        .default(DEFAULT_SEARCH.days),
    )
    .addOption(
      new Option("--tick-seconds <n>", "simulation step")
        .argParser(count(1, 600))
        .default(DEFAULT_SEARCH.tickSeconds),
    )
    .addOption(
      new Option("--seed <n>", "first seed").argParser(count(0, 2 ** 31)).default(DEFAULT_SEARCH.seed),
    )
    .addOption(
      new Option(
        "--max-slots-per-zone <n>",
        "largest pool size to try (default: one slot per service)",
      ).argParser(count(1, 1000)),
    )
    .addOption(new Option("--svg <file>", "write a chart of found capacity and leased share per pool size"));
  for (const [key, value, description, parser] of OVERRIDES)
    command.addOption(
      new Option(`${flagFor(key)} ${value}`, `${description} (overrides the observed value)`).argParser(
        parser,
      ),
    );
  return command;
}

/** Splits parsed flags into the assumptions they override and the search's request. */
export function planInputs(flags: PlanFlags): { overrides: AssumptionOverrides; request: PlanRequest } {
  const overrides: AssumptionOverrides = {};
  for (const [key] of OVERRIDES) if (flags[key] !== undefined) overrides[key] = flags[key];
  return {
    overrides,
    request: {
      target: flags.target,
      freeTarget: flags.freeTarget,
      days: flags.days,
      tickSeconds: flags.tickSeconds,
      seed: flags.seed,
      maxSlotsPerZone: flags.maxSlotsPerZone,
    },
  };
}
