// Test scaffolding: real servers and heads on 127.0.0.1 with ephemeral ports and temp dirs.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { startHead, type HeadHandle, type HeadOptions } from "../../../src/dataplane/head.ts";
import { createLogger } from "../../../src/dataplane/log.ts";
import type { ServerAddress } from "../../../src/dataplane/placement.ts";
import { startServer, type ServerHandle, type ServerOptions } from "../../../src/dataplane/server.ts";

export const TOKEN = "test-token-0123456789";
export const quiet = createLogger("test", "silent");
const ZONES = ["zone-a", "zone-b", "zone-c"];
const REPO = resolve(import.meta.dirname, "../../..");

/** Ports the kernel just handed out and released (so a server list can name them up front). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<import("node:net").Server>((ok, fail) => {
          const s = createServer();
          s.once("error", fail);
          s.listen(0, "127.0.0.1", () => ok(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as import("node:net").AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
  return ports;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `understudy-${prefix}-`));
}

export interface ServerSlot {
  readonly zone: string;
  readonly address: string;
  readonly dataDir: string;
}

/** Addresses and data directories for `count` servers, one zone each. */
export async function planServers(count = 3): Promise<ServerSlot[]> {
  const ports = await freePorts(count);
  return ports.map((port, i) => ({
    zone: ZONES[i % ZONES.length]!,
    address: `127.0.0.1:${port}`,
    dataDir: tempDir(`server${i}`),
  }));
}

export function serverList(slots: readonly ServerSlot[]): ServerAddress[] {
  return slots.map((s) => ({ zone: s.zone, address: s.address }));
}

export function startInProcess(
  slot: ServerSlot,
  slots: readonly ServerSlot[],
  extra: Partial<ServerOptions> = {},
): Promise<ServerHandle> {
  return startServer({
    listen: slot.address,
    dataDir: slot.dataDir,
    zone: slot.zone,
    token: TOKEN,
    servers: serverList(slots),
    antiEntropyIntervalMs: 0,
    logger: quiet,
    ...extra,
  });
}

export async function startHeadFor(
  slots: readonly ServerSlot[],
  epoch: number,
  extra: Partial<HeadOptions> = {},
): Promise<HeadHandle> {
  return startHead({
    listen: "127.0.0.1:0",
    token: TOKEN,
    servers: serverList(slots),
    epoch,
    logger: quiet,
    serverTimeoutMs: 2000,
    ...extra,
  });
}

export function cleanup(slots: readonly ServerSlot[]): void {
  for (const s of slots) rmSync(s.dataDir, { recursive: true, force: true });
}

/** A server running as `node src/dataplane/main.ts server` in a child process. */
export interface ChildServer {
  readonly process: ChildProcess;
  readonly exited: Promise<number | null>;
}

/** The data plane's entry from the TypeScript sources (what the tests run). */
export const DATAPLANE_SOURCE_ENTRY = join(REPO, "src/dataplane/main.ts");

export interface SpawnOptions {
  /** The script to run: the sources by default, or the built `dist/src/dataplane/main.js`. */
  readonly entry?: string;
  /** Node options before the script (e.g. `--cpu-prof`). */
  readonly nodeArgs?: readonly string[];
}

/** `node src/dataplane/main.ts <role>` in a child process, once it logged that it listens. */
export async function spawnDataplane(
  role: "server" | "head",
  env: Record<string, string>,
  { entry = DATAPLANE_SOURCE_ENTRY, nodeArgs = [] }: SpawnOptions = {},
): Promise<ChildServer & { url: string; stderr(): string }> {
  const child = spawn(join(REPO, "node_modules/.bin/node"), [...nodeArgs, entry, role], {
    cwd: REPO,
    env: { ...process.env, UNDERSTUDY_TOKEN: TOKEN, UNDERSTUDY_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((ok) => child.once("exit", (code) => ok(code)));
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((ok, fail) => {
    lines.on("line", (line) => {
      if (line.includes('"msg":"listening"')) ok((JSON.parse(line) as { url: string }).url);
    });
    void exited.then((code) => fail(new Error(`${role} exited with ${code} before listening: ${stderr}`)));
  });
  return { process: child, exited, url, stderr: () => stderr };
}

export async function spawnServer(
  slot: ServerSlot,
  slots: readonly ServerSlot[],
  extraEnv: Record<string, string> = {},
): Promise<ChildServer> {
  const { process: child, exited } = await spawnDataplane("server", {
    UNDERSTUDY_LISTEN: slot.address,
    UNDERSTUDY_DATA_DIR: slot.dataDir,
    UNDERSTUDY_ZONE: slot.zone,
    UNDERSTUDY_SERVERS: slots.map((s) => `${s.zone}=${s.address}`).join(","),
    UNDERSTUDY_ANTI_ENTROPY_INTERVAL_MS: "500",
    ...extraEnv,
  });
  return { process: child, exited };
}

/** A head running as `node src/dataplane/main.ts head` in a child process. */
export interface ChildHead extends ChildServer {
  readonly url: string;
  /** Everything the head wrote to stderr (an unhandled rejection would land here before exit). */
  stderr(): string;
}

export function spawnHead(
  servers: readonly ServerAddress[],
  epoch: number,
  extraEnv: Record<string, string> = {},
  options: SpawnOptions = {},
): Promise<ChildHead> {
  return spawnDataplane(
    "head",
    {
      UNDERSTUDY_LISTEN: "127.0.0.1:0",
      UNDERSTUDY_EPOCH: String(epoch),
      UNDERSTUDY_SERVERS: servers.map((s) => `${s.zone}=${s.address}`).join(","),
      ...extraEnv,
    },
    options,
  );
}

/** Resident memory of a process now and at its peak (VmRSS, VmHWM), in bytes. */
export function residentMemory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)![1]) * 1024;
  return { rss: kib("VmRSS"), peak: kib("VmHWM") };
}

/** Polls `probe` until it returns true (bounded: fails the test after `limitMs`). */
export async function eventually(
  probe: () => Promise<boolean> | boolean,
  what: string,
  limitMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { raw: text };
  }
  return { status: res.status, body: parsed };
}

export const op = (headUrl: string, body: unknown) => post(`${headUrl}/v1/op`, body);

/** Requests a server answered 200 on `route` (e.g. "/v1/read") so far, from its /metrics. */
export async function servedRequests(serverUrl: string, route: string): Promise<number> {
  const text = await (await fetch(`${serverUrl}/metrics`)).text();
  const line = text
    .split("\n")
    .find((l) => l.startsWith(`understudy_server_requests_total{route="${route}",status="200"}`));
  return Number(line?.split(" ")[1] ?? 0);
}
