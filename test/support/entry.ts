import { readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

const REPO = resolve(import.meta.dirname, "../..");

/**
 * The script to start for a program under src/ (`dataplane/main.ts`, `operator/main.ts`): the
 * built JavaScript (`npm run build`, what the image runs) when it is at least as new as every
 * source file under src/, else the TypeScript sources, so that a change not yet built never runs
 * stale.
 */
export function entryScript(program: string, repo = REPO): string {
  const sources = join(repo, "src");
  return builtIsFresh(repo)
    ? join(repo, "dist/src", program.replace(/\.ts$/, ".js"))
    : join(sources, program);
}

/** Whether dist/ holds a build of every source file under src/, none older than its source. */
export function builtIsFresh(repo = REPO): boolean {
  const sources = join(repo, "src");
  return (readdirSync(sources, { recursive: true }) as string[])
    .filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts"))
    .every((file) => {
      const js = statSync(join(repo, "dist/src", file.replace(/\.ts$/, ".js")), { throwIfNoEntry: false });
      return js !== undefined && js.mtimeMs >= statSync(join(sources, file)).mtimeMs;
    });
}
