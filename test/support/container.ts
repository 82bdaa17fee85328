import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { cacheDir } from "../cluster/config.ts";

// The project's image, as `npm run image` leaves it (an OCI layout), run under runc the way the
// chart runs it: as its own non-root user, with a read-only root filesystem, no capabilities, no
// new privileges and a scratch /tmp. The container shares the machine's network namespace so that
// it reaches the test cluster's API server on loopback and the test reaches its ports.

const run = promisify(execFile);
const root = join(import.meta.dirname, "../..");

export const imageVersion = (
  JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }
).version;
export const imageLayout = join(cacheDir, "image", "oci");

/** Builds the image (idempotent: the base and unchanged steps come from the cache). */
export async function buildImage(): Promise<void> {
  await run("bash", [join(root, "scripts/image/build.sh")], { cwd: root, maxBuffer: 16 << 20 });
}

/** The OCI runtime configuration umoci derives from the image (user, entrypoint, env, cwd). */
export interface RuntimeConfig {
  process: {
    user: { uid: number; gid: number };
    args: string[];
    env: string[];
    cwd: string;
    terminal?: boolean;
    noNewPrivileges?: boolean;
    capabilities?: Record<string, string[]>;
  };
  root: { path: string; readonly?: boolean };
  mounts: { destination: string; type: string; source: string; options?: string[] }[];
  linux: { namespaces: { type: string }[] } & Record<string, unknown>;
  [key: string]: unknown;
}

export interface Bundle {
  dir: string;
  /** The configuration umoci wrote from the image, untouched. */
  imageConfig: RuntimeConfig;
}

/** Unpacks the image's layout tag into an OCI bundle (rootfs/ and config.json) under `dir`. */
export async function unpackImage(dir: string, tag = imageVersion): Promise<Bundle> {
  await run("umoci", ["unpack", "--image", `${imageLayout}:${tag}`, dir], { maxBuffer: 16 << 20 });
  const imageConfig = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as RuntimeConfig;
  return { dir, imageConfig };
}

export interface ContainerOptions {
  /** Replaces the image's command (its entrypoint, node, stays first). */
  args?: string[];
  env?: Record<string, string>;
  /** Files from the machine, mounted read-only: container path -> machine path. */
  files?: Record<string, string>;
}

/** A runc container of the unpacked image, configured as the chart's securityContext asks. */
export class Container {
  readonly id: string;
  private readonly bundleDir: string;
  private readonly stateDir: string;

  constructor(bundle: Bundle, name: string, options: ContainerOptions = {}) {
    this.id = `understudy-test-${name}-${process.pid}`;
    this.bundleDir = join(bundle.dir, "containers", name);
    this.stateDir = join(bundle.dir, "runc-state");
    mkdirSync(this.bundleDir, { recursive: true });
    mkdirSync(this.stateDir, { recursive: true });
    const config = structuredClone(bundle.imageConfig);
    const entrypoint = config.process.args[0]!;
    if (options.args) config.process.args = [entrypoint, ...options.args];
    config.process.env = [
      ...config.process.env,
      ...Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`),
    ];
    config.process.terminal = false;
    // allowPrivilegeEscalation: false, capabilities: drop ALL.
    config.process.noNewPrivileges = true;
    config.process.capabilities = {
      bounding: [],
      effective: [],
      permitted: [],
      inheritable: [],
      ambient: [],
    };
    // readOnlyRootFilesystem: true, and the chart's emptyDir at /tmp.
    config.root = { path: join(bundle.dir, "rootfs"), readonly: true };
    config.mounts = [
      ...config.mounts,
      { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "size=64m"] },
      ...Object.entries(options.files ?? {}).map(([destination, source]) => ({
        destination,
        type: "bind",
        source,
        options: ["rbind", "ro"],
      })),
    ];
    config.linux.namespaces = config.linux.namespaces.filter((ns) => ns.type !== "network");
    writeFileSync(join(this.bundleDir, "config.json"), JSON.stringify(config, null, 2));
  }

  private runc(...args: string[]): string[] {
    return ["--root", this.stateDir, ...args];
  }

  /** Runs the container to completion; its standard output, or a rejection with its stderr. */
  async output(): Promise<string> {
    const { stdout } = await run("runc", this.runc("run", "--bundle", this.bundleDir, this.id));
    return stdout;
  }

  /** Starts the container in the foreground of a child process (its output goes to `onOutput`). */
  start(onOutput: (chunk: string) => void): ChildProcess {
    const child = spawn("runc", this.runc("run", "--bundle", this.bundleDir, this.id), {
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout!.on("data", (chunk: Buffer) => onOutput(chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => onOutput(chunk.toString()));
    return child;
  }

  async kill(signal: "TERM" | "KILL"): Promise<void> {
    await run("runc", this.runc("kill", this.id, signal));
  }

  /** Removes the container, killing it if it still runs. */
  async remove(): Promise<void> {
    await run("runc", this.runc("delete", "--force", this.id)).catch(() => undefined);
  }
}
