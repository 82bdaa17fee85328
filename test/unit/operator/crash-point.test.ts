import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

// crashPoint exits the real process, so it is tested in one: a child that passes one step and
// crashes at the configured one, with its last log line written before the exit.

const root = join(import.meta.dirname, "../../..");
const script = `
import { createLogger } from "./src/operator/logger.ts";
import { configureCrashPoint, crashPoint, parseSettings } from "./src/operator/settings.ts";
const settings = parseSettings([], process.env);
const log = createLogger();
configureCrashPoint(settings.crashAt, (step) => log.fatal({ step }, "crash point reached"));
crashPoint("SlotChosen");
log.info("passed SlotChosen");
crashPoint("Revoked");
log.info("passed Revoked");
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

describe("crashPoint", () => {
  it("exits with 137 at the configured step, after logging it", () => {
    const { status, messages, stderr } = run("Revoked");
    expect(status, stderr).toBe(137);
    expect(messages.map((m) => m.msg)).toEqual(["passed SlotChosen", "crash point reached"]);
    expect(messages[1]!.step).toBe("Revoked");
  });

  it("does nothing when no crash point is set", () => {
    const { status, messages, stderr } = run(undefined);
    expect(status, stderr).toBe(0);
    expect(messages.map((m) => m.msg)).toEqual(["passed SlotChosen", "passed Revoked"]);
  });
});
