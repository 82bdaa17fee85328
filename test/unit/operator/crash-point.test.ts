import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

// A crash point exits the real process, so it is tested in one: a child that passes some calls and
// crashes at the configured one, with its last log line written before the exit.

const root = join(import.meta.dirname, "../../..");
const script = `
import { createLogger } from "./src/operator/logger.ts";
import { crashPointAt } from "./src/operator/crash-point.ts";
import { parseSettings } from "./src/operator/settings.ts";
const settings = parseSettings([], process.env);
const log = createLogger();
const crashPoint = crashPointAt(settings.crashAt, (step) => log.fatal({ step }, "crash point reached"));
crashPoint("SlotChosen");
log.info("passed SlotChosen");
crashPoint("Revoked");
log.info("passed Revoked");
crashPoint("Revoked");
log.info("passed Revoked:2");
`;

function run(crashAt: string | undefined) {
  const env: Record<string, string | undefined> = { ...process.env, UNDERSTUDY_CRASH_AT: crashAt };
  if (crashAt === undefined) delete env.UNDERSTUDY_CRASH_AT;
  const result = spawnSync(join(root, "node_modules/.bin/node"), ["--input-type=module", "-e", script], {
    cwd: root,
    env,
    encoding: "utf8",
  });
  const messages = result.stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { msg: string; step?: string });
  return { status: result.status, messages, stderr: result.stderr };
}

describe("crashPointAt", () => {
  it("exits with 137 at the configured step, after logging it", () => {
    const { status, messages, stderr } = run("Revoked");
    expect(status, stderr).toBe(137);
    expect(messages.map((m) => m.msg)).toEqual(["passed SlotChosen", "crash point reached"]);
    expect(messages[1]!.step).toBe("Revoked");
  });

  it("answers to <step>:<n> for the n-th call with a step", () => {
    const { status, messages, stderr } = run("Revoked:2");
    expect(status, stderr).toBe(137);
    expect(messages.map((m) => m.msg)).toEqual([
      "passed SlotChosen",
      "passed Revoked",
      "crash point reached",
    ]);
    expect(messages[2]!.step).toBe("Revoked:2");
  });

  it("does nothing when no crash point is set, or another one", () => {
    for (const crashAt of [undefined, "HeadStarted"]) {
      const { status, messages, stderr } = run(crashAt);
      expect(status, stderr).toBe(0);
      expect(messages.map((m) => m.msg)).toEqual(["passed SlotChosen", "passed Revoked", "passed Revoked:2"]);
    }
  });
});
