// A memory cgroup for one child process, so a benchmark runs the operator under its pod's memory limit.
// Node sizes its heap from the cgroup's limit (a 512Mi container gets a 259 MiB heap and a young
// generation of 2 MB instead of 64 MB), so a process measured without the limit does not behave like
// the pod. Needs root and a cgroup filesystem (v1's memory controller or v2).
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
  remove(): void;
}

function readNumber(path: string, key?: string): number {
  const text = readFileSync(path, "utf8");
  if (key === undefined) return Number(text.trim());
  const line = text.split("\n").find((l) => l.startsWith(`${key} `));
  return Number(line?.split(" ")[1] ?? 0);
}

/** A new memory cgroup limited to `limitBytes`; throws when this machine offers none to create. */
export function createMemoryCgroup(name: string, limitBytes: number): MemoryCgroup {
  const v1 = existsSync(join(ROOT, "memory", "memory.limit_in_bytes"));
  const v2 = existsSync(join(ROOT, "cgroup.controllers"));
  if (!v1 && !v2) throw new Error(`no memory cgroup controller under ${ROOT}`);
  const dir = v1 ? join(ROOT, "memory", name) : join(ROOT, name);
  mkdirSync(dir);
  writeFileSync(join(dir, v1 ? "memory.limit_in_bytes" : "memory.max"), String(limitBytes));
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

/**
 * The command that runs `command` inside the group from its first instruction: a shell joins the
 * group, then replaces itself with the command (same pid), so Node reads the limit at start-up.
 */
export function inCgroup(group: MemoryCgroup, command: readonly string[]): string[] {
  return ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', group.dir, ...command];
}
