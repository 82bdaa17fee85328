import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

// Shell completion, through the real command: the scripts it prints for bash and zsh, and the
// candidates those scripts ask it for (`understudy complete -- <words>`, one "value\tdescription"
// line each, then ":<directive>").

const root = join(import.meta.dirname, "../../..");
const run = promisify(execFile);
const understudy = async (...args: string[]) =>
  (await run(join(root, "node_modules/.bin/node"), [join(root, "src/cli/main.ts"), ...args], { cwd: root }))
    .stdout;
const candidates = async (...words: string[]) =>
  (await understudy("complete", "--", ...words))
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith(":"))
    .map((line) => line.split("\t")[0]);

describe("shell completion", () => {
  it("prints a bash script that bash accepts and that completes the understudy command", async () => {
    const script = await understudy("complete", "bash");
    expect(script).toContain("complete -F __understudy_complete understudy");
    expect(script).toContain("understudy complete -- ");
    await expect(run("bash", ["-n", "-c", script])).resolves.toBeDefined();
  });

  it("completes the understudy command when run as a kubectl plugin too", async () => {
    // kubectl runs the plugin as kubectl-understudy: the command then calls itself "kubectl understudy".
    const bin = mkdtempSync(join(tmpdir(), "understudy-plugin-"));
    try {
      symlinkSync(join(root, "src/cli/main.ts"), join(bin, "kubectl-understudy"));
      const plugin = (...args: string[]) =>
        run(join(root, "node_modules/.bin/node"), [join(bin, "kubectl-understudy"), ...args], { cwd: root });
      expect((await plugin("--help")).stdout).toMatch(/^Usage: kubectl understudy /);
      expect((await plugin("complete", "bash")).stdout).toContain(
        "complete -F __understudy_complete understudy",
      );
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it("prints a zsh script for compdef", async () => {
    const script = await understudy("complete", "zsh");
    expect(script.split("\n").slice(0, 2)).toEqual(["#compdef understudy", "compdef _understudy understudy"]);
  });

  it("offers the commands, a command's flags and an option's choices", async () => {
    expect(await candidates("")).toEqual(
      expect.arrayContaining([
        "status",
        "pool",
        "claims",
        "services",
        "failover",
        "plan",
        "version",
        "pause",
        "resume",
        "failback",
      ]),
    );
    expect(await candidates("fail")).toEqual(["failover", "failback"]);
    expect(await candidates("failover", "--")).toEqual(expect.arrayContaining(["--wait", "--timeout"]));
    expect(await candidates("-o", "")).toEqual(["table", "json"]);
  });
});
