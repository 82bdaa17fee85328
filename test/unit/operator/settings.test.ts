import { describe, expect, it } from "vitest";
import {
  CommanderError,
  controllerEnabled,
  parseDuration,
  parseListenAddress,
  parseSettings,
  settingsCommand,
  SettingsError,
} from "../../../src/operator/settings.ts";

/** A command that prints nothing, so failing parses keep the test output clean. */
const quiet = () => settingsCommand().configureOutput({ writeOut: () => {}, writeErr: () => {} });
const parse = (argv: string[], env: Record<string, string> = {}) => parseSettings(argv, env, quiet());
const failure = (argv: string[], env: Record<string, string> = {}) => {
  try {
    parse(argv, env);
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected the settings to be refused");
};

describe("parseSettings", () => {
  it("has defaults for everything", () => {
    const s = parse([]);
    expect(s.namespace).toBe("understudy-system");
    expect(s.kubeconfig).toBeUndefined();
    expect(s.leaderElection).toMatchObject({
      enabled: true,
      leaseName: "understudy-operator",
      namespace: "understudy-system",
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
    });
    expect(s.leaderElection.identity).toMatch(/.+_[0-9a-f]{8}$/);
    expect(s.client).toEqual({ qps: 20, burst: 30, priorityLanes: true });
    expect(s.concurrency).toEqual({ default: 1, byController: {} });
    expect(s.controllers.all).toBe(true);
    expect(s.resyncPeriodMs).toBe(600_000);
    expect(s.metrics).toEqual({ address: ":8080", host: undefined, port: 8080 });
    expect(s.logLevel).toBe("info");
    expect(s.shutdownTimeoutMs).toBe(30_000);
    expect(s.placeholderImage).toBe("registry.k8s.io/pause:3.10");
    expect(s.crashAt).toBeUndefined();
  });

  it("reads flags", () => {
    const s = parse([
      "--kubeconfig=/tmp/kc",
      "--namespace",
      "ops",
      "--no-leader-elect",
      "--leader-election-id",
      "my.lease",
      "--leader-election-identity",
      "pod-a",
      "--lease-duration",
      "1m30s",
      "--renew-deadline",
      "1m",
      "--kube-api-qps",
      "7.5",
      "--kube-api-burst",
      "9",
      "--no-priority-lanes",
      "--concurrency",
      "3",
      "--controller-concurrency",
      "claims=4, pools=2",
      "--resync-period",
      "0",
      "--metrics-bind-address",
      "127.0.0.1:0",
      "--log-level",
      "debug",
      "--shutdown-timeout",
      "1500ms",
      "--retry-period",
      "500ms",
    ]);
    expect(s.kubeconfig).toBe("/tmp/kc");
    expect(s.namespace).toBe("ops");
    expect(s.leaderElection).toMatchObject({
      enabled: false,
      leaseName: "my.lease",
      namespace: "ops",
      identity: "pod-a",
      leaseDurationMs: 90_000,
      renewDeadlineMs: 60_000,
      retryPeriodMs: 500,
    });
    expect(s.client).toEqual({ qps: 7.5, burst: 9, priorityLanes: false });
    expect(s.concurrency).toEqual({ default: 3, byController: { claims: 4, pools: 2 } });
    expect(s.resyncPeriodMs).toBe(0);
    expect(s.metrics).toEqual({ address: "127.0.0.1:0", host: "127.0.0.1", port: 0 });
    expect(s.logLevel).toBe("debug");
    expect(s.shutdownTimeoutMs).toBe(1_500);
  });

  it("reads the environment, and a flag wins over it", () => {
    const env = {
      UNDERSTUDY_NAMESPACE: "from-env",
      UNDERSTUDY_LEADER_ELECT: "false",
      UNDERSTUDY_CONCURRENCY: "2",
      UNDERSTUDY_CRASH_AT: "Revoked",
      UNDERSTUDY_LOG_LEVEL: "warn",
      UNDERSTUDY_PLACEHOLDER_IMAGE: "mirror.internal/pause:3.10",
      KUBECONFIG: "/env/kubeconfig",
    };
    const s = parse(["--namespace", "from-flag", "--leader-elect"], env);
    expect(s.namespace).toBe("from-flag");
    expect(s.leaderElection.enabled).toBe(true);
    expect(s.concurrency.default).toBe(2);
    expect(s.crashAt).toBe("Revoked");
    expect(s.logLevel).toBe("warn");
    expect(s.kubeconfig).toBe("/env/kubeconfig");
    expect(s.placeholderImage).toBe("mirror.internal/pause:3.10");
  });

  it("names the flag, the variable and the value of every bad setting at once", () => {
    const err = failure(
      ["--lease-duration", "soon", "--concurrency", "0", "--metrics-bind-address", "8080"],
      {
        UNDERSTUDY_NAMESPACE: "Not_A_Namespace",
        UNDERSTUDY_LOG_LEVEL: "loud",
      },
    );
    expect(err).toBeInstanceOf(SettingsError);
    const message = err.message;
    expect(message).toMatch(/--lease-duration \/ UNDERSTUDY_LEASE_DURATION: .*duration.* \(got "soon"\)/);
    expect(message).toMatch(/--concurrency \/ UNDERSTUDY_CONCURRENCY: .*integer >= 1 \(got "0"\)/);
    expect(message).toMatch(/--metrics-bind-address .*host:port.*\(got "8080"\)/);
    expect(message).toMatch(
      /--namespace \/ UNDERSTUDY_NAMESPACE: must be a DNS label.*\(got "Not_A_Namespace"\)/,
    );
    expect(message).toMatch(/--log-level \/ UNDERSTUDY_LOG_LEVEL: must be one of .*\(got "loud"\)/);
  });

  it("refuses leader-election timings client-go would refuse", () => {
    expect(failure(["--lease-duration", "5s", "--renew-deadline", "10s"]).message).toMatch(
      /lease duration must be greater than the renew deadline/,
    );
    expect(failure(["--renew-deadline", "2s", "--retry-period", "2s"]).message).toMatch(
      /renew deadline must be greater than 1.2 × retry period/,
    );
    expect(
      failure(["--lease-duration", "500ms", "--renew-deadline", "400ms", "--retry-period", "100ms"]).message,
    ).toMatch(/at least 1s/);
  });

  it("refuses bad booleans, bad per-controller concurrency and a crash point that names nothing", () => {
    expect(failure([], { UNDERSTUDY_LEADER_ELECT: "maybe" }).message).toMatch(
      /UNDERSTUDY_LEADER_ELECT: must be true or false/,
    );
    expect(failure(["--controller-concurrency", "claims=0"]).message).toMatch(
      /"claims=0" is not name=workers/,
    );
    expect(failure([], { UNDERSTUDY_CRASH_AT: "two words" }).message).toMatch(
      /UNDERSTUDY_CRASH_AT: must name a step/,
    );
  });

  it("chooses controllers like kube-controller-manager's --controllers", () => {
    const all = parse([]);
    expect(all.controllers).toEqual({ all: true, enabled: [], disabled: [] });
    expect(controllerEnabled(all, "claims")).toBe(true);
    const allButClaims = parse(["--controllers", "*,-claims"]);
    expect(controllerEnabled(allButClaims, "claims")).toBe(false);
    expect(controllerEnabled(allButClaims, "pools")).toBe(true);
    const onlyPools = parse([], { UNDERSTUDY_CONTROLLERS: "pools" });
    expect(controllerEnabled(onlyPools, "pools")).toBe(true);
    expect(controllerEnabled(onlyPools, "claims")).toBe(false);
    const none = parse(["--controllers="]);
    expect(controllerEnabled(none, "pools")).toBe(false);
    expect(failure(["--controllers", "-*"]).message).toMatch(/"-\*" is not '\*', a controller name or -name/);
  });

  it("lets commander refuse unknown flags and stray arguments", () => {
    expect(failure(["--no-such-flag"])).toBeInstanceOf(CommanderError);
    expect(failure(["stray"])).toBeInstanceOf(CommanderError);
  });
});

describe("parseDuration", () => {
  it("reads Go-style durations", () => {
    expect(parseDuration("0")).toBe(0);
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("15s")).toBe(15_000);
    expect(parseDuration("1.5s")).toBe(1_500);
    expect(parseDuration("1m30s")).toBe(90_000);
    expect(parseDuration("2h")).toBe(7_200_000);
  });
  it("refuses numbers without a unit and other text", () => {
    for (const bad of ["", "15", "s", "15 s", "-1s", "1d", "1s2"]) expect(parseDuration(bad)).toBeUndefined();
  });
});

describe("parseListenAddress", () => {
  it("reads host:port, :port and [v6]:port", () => {
    expect(parseListenAddress(":8080")).toEqual({ host: undefined, port: 8080 });
    expect(parseListenAddress("127.0.0.1:0")).toEqual({ host: "127.0.0.1", port: 0 });
    expect(parseListenAddress("[::1]:9000")).toEqual({ host: "::1", port: 9000 });
  });
  it("refuses a missing or out-of-range port", () => {
    for (const bad of ["8080", "host:", "host:65536", "a:b:1"])
      expect(parseListenAddress(bad)).toBeUndefined();
  });
});
