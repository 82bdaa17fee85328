// A memory cgroup for one child process, so a benchmark runs the operator under its pod's memory limit.
// Node sizes its heap from the cgroup's limit (a 512Mi container gets a 259 MiB heap and a young
// generation of 2 MB instead of 64 MB), so a process measured without the limit does not behave like
// the pod. Needs root and a writable cgroup filesystem (v1's memory controller, or v2 with memory
// enabled for child groups). The group is made at the top of the hierarchy, like a pod's, outside
// whatever group runs the benchmark.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = "/sys/fs/cgroup";

export interface MemoryCgroup {
  /** The group's directory: a process writing its pid into `cgroup.procs` there joins it. */
  dir: string;
  limitBytes: number;
  /** The most the group has held (v1: usage, v2: peak; both count page cache the process caused). */
  peakBytes(): number;
  /** How many times the kernel's OOM killer killed a process of the group. */
  oomKills(): number;
  /** Removes the group; its processes must have exited. */
  remove(): void;
}

function readNumber(path: string, key?: string): number {
  const text = readFileSync(path, "utf8");
  if (key === undefined) return Number(text.trim());
  const line = text.split("\n").find((l) => l.startsWith(`${key} `));
  return Number(line?.split(" ")[1] ?? 0);
}

/** Which cgroup version offers a memory controller to new groups here, if any. */
function memoryController(): "v1" | "v2" | undefined {
  if (existsSync(join(ROOT, "memory", "memory.limit_in_bytes"))) return "v1";
  const enabled = join(ROOT, "cgroup.subtree_control");
  if (existsSync(enabled) && readFileSync(enabled, "utf8").split(/\s+/).includes("memory")) return "v2";
  return undefined;
}

/** A new memory cgroup limited to `limitBytes`; throws when this machine offers none to create. */
export function createMemoryCgroup(name: string, limitBytes: number): MemoryCgroup {
  const version = memoryController();
  if (!version) throw new Error(`no memory cgroup controller to use under ${ROOT}`);
  const v1 = version === "v1";
  const dir = v1 ? join(ROOT, "memory", name) : join(ROOT, name);
  mkdirSync(dir);
  try {
    writeFileSync(join(dir, v1 ? "memory.limit_in_bytes" : "memory.max"), String(Math.floor(limitBytes)));
  } catch (err) {
    rmdirSync(dir);
    throw err;
  }
  return {
    dir,
    limitBytes,
    peakBytes: () => readNumber(join(dir, v1 ? "memory.max_usage_in_bytes" : "memory.peak")),
    oomKills: () =>
      v1
        ? readNumber(join(dir, "memory.oom_control"), "oom_kill")
        : readNumber(join(dir, "memory.events"), "oom_kill"),
    remove: () => rmdirSync(dir),
  };
}

/** Whether this process may make memory cgroups here (it tries, then removes the group). */
export function canCreateMemoryCgroups(): boolean {
  try {
    createMemoryCgroup(`understudy-probe-${process.pid}`, 2 ** 30).remove();
    return true;
  } catch {
    return false;
  }
}

/**
 * The command that runs `command` inside the group from its first instruction: a shell joins the
 * group, then replaces itself with the command (same pid), so Node reads the limit at start-up.
 */
export function inCgroup(group: MemoryCgroup, command: readonly string[]): string[] {
  return ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', group.dir, ...command];
}
