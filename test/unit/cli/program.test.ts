import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { io } from "./fixtures.ts";
import { hasKubeconfigSource } from "../../../src/cli/kube.ts";
import { programName, run } from "../../../src/cli/program.ts";

// The command layer without a cluster: argument handling, help and errors.

const argv = (...args: string[]) => ["node", "/usr/local/bin/understudy", ...args];

describe("the command line", () => {
  it("is named as kubectl runs it when installed as a plugin", () => {
    expect(programName("/usr/local/bin/kubectl-understudy")).toBe("kubectl understudy");
    expect(programName("/usr/local/bin/understudy")).toBe("understudy");
    expect(programName("dist/src/cli/main.js")).toBe("understudy");
  });

  it("lists its commands in --help and exits 0", async () => {
    const cli = io();
    expect(await run(argv("--help"), cli)).toBe(0);
    for (const command of ["status", "pool", "claims", "services", "failover", "version"])
      expect(cli.out).toContain(command);
  });

  it("prints package.json's version as `version` and `--version`", async () => {
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
      version: string;
    };
    const plain = io();
    expect(await run(argv("version"), plain)).toBe(0);
    expect(plain.out).toBe(
      `understudy ${pkg.version} (node ${process.version}, ${process.platform}/${process.arch})\n`,
    );
    const json = io();
    expect(await run(argv("version", "-o", "json"), json)).toBe(0);
    expect(JSON.parse(json.out)).toMatchObject({ version: pkg.version, node: process.version });
    const flag = io();
    expect(await run(argv("--version"), flag)).toBe(0);
    expect(flag.out).toBe(`${pkg.version}\n`);
  });

  it("refuses an unknown output format before touching a cluster", async () => {
    const cli = io();
    expect(await run(argv("status", "-o", "yaml"), cli)).not.toBe(0);
    expect(cli.err).toContain("yaml");
  });

  it("needs the service to fail over", async () => {
    const cli = io();
    expect(await run(argv("failover"), cli)).not.toBe(0);
    expect(cli.err).toMatch(/missing required argument 'service'/);
  });

  it("reports a kubeconfig that cannot be read as an error, exit code 1", async () => {
    const cli = io();
    expect(await run(argv("status", "--kubeconfig", "/nonexistent/kubeconfig"), cli)).toBe(1);
    expect(cli.err).toMatch(/^error: .*nonexistent/);
  });

  it("refuses a context the kubeconfig does not have", async () => {
    const cli = io();
    const kubeconfig = new URL("./fixtures/kubeconfig.yaml", import.meta.url).pathname;
    expect(await run(argv("claims", "--kubeconfig", kubeconfig, "--context", "elsewhere"), cli)).toBe(1);
    expect(cli.err).toContain('context "elsewhere" not found in the kubeconfig (known: test)');
  });

  it("knows when there is no kubeconfig at all, instead of trying localhost:8080", () => {
    const nowhere = "/nonexistent-home";
    expect(hasKubeconfigSource({}, nowhere)).toBe(false);
    expect(hasKubeconfigSource({ KUBECONFIG: "/some/file" }, nowhere)).toBe(true);
    expect(hasKubeconfigSource({ KUBERNETES_SERVICE_HOST: "10.96.0.1" }, nowhere)).toBe(true);
  });
});
