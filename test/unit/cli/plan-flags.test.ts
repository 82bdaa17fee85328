import { describe, expect, it } from "vitest";
import { io } from "./fixtures.ts";
import { run } from "../../../src/cli/program.ts";

// `understudy plan` refuses bad flags before it touches a cluster, naming the flag and the rule.

const argv = (...args: string[]) => ["node", "/usr/local/bin/understudy", "plan", ...args];

describe("understudy plan flags", () => {
  it.each([
    [
      ["--target", "1.5"],
      "option '--target <share>' argument '1.5' is invalid. It must be a share above 0 and at most 1 (for example 0.999).",
    ],
    [["--target", "0"], "option '--target <share>' argument '0' is invalid."],
    [["--target", "high"], "option '--target <share>' argument 'high' is invalid."],
    [
      ["--days", "2.5"],
      "option '--days <n>' argument '2.5' is invalid. It must be a whole number from 1 to 60.",
    ],
    [["--days", "0"], "option '--days <n>' argument '0' is invalid."],
    [
      ["--zoned-share", "-0.1"],
      "option '--zoned-share <share>' argument '-0.1' is invalid. It must be a share from 0 to 1",
    ],
    [
      ["--head-mtbf-hours", "0"],
      "option '--head-mtbf-hours <hours>' argument '0' is invalid. It must be a positive number.",
    ],
    [["--services", ""], "option '--services <n>' argument '' is invalid."],
    [["--free-target", "2"], "option '--free-target <share>' argument '2' is invalid."],
  ])("refuses %j with a message naming the flag", async (args, message) => {
    const cli = io();
    expect(await run(argv(...args, "--kubeconfig", "/nonexistent/kubeconfig"), cli)).toBe(1);
    expect(cli.err).toContain(`error: ${message}`);
    expect(cli.out).toBe("");
  });

  it("refuses an unknown flag", async () => {
    const cli = io();
    expect(await run(argv("--slots", "3"), cli)).toBe(1);
    expect(cli.err).toContain("error: unknown option '--slots'");
  });

  it("lists every assumption's flag in its help", async () => {
    const cli = io();
    expect(await run(argv("--help"), cli)).toBe(0);
    for (const flag of [
      "--target",
      "--free-target",
      "--svg",
      "--services",
      "--head-mtbf-hours",
      "--headroom-per-zone",
      "--requeue-share",
    ])
      expect(cli.out).toContain(flag);
  });
});
