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

/**
 * Whether dist/ holds a build of every source file under src/, none older than its source, and the
 * data plane's bundle, when there is one, is no older than any source (the built entry loads it)
 * nor than the installed dependencies (it holds their code).
 */
export function builtIsFresh(repo = REPO): boolean {
  const sources = join(repo, "src");
  const files = (readdirSync(sources, { recursive: true }) as string[]).filter(
    (file) => file.endsWith(".ts") && !file.endsWith(".d.ts"),
  );
  const bundle = statSync(join(repo, "dist/dataplane/program.js"), { throwIfNoEntry: false });
  // npm rewrites this file whenever it installs or removes a package.
  const installed = statSync(join(repo, "node_modules/.package-lock.json"), { throwIfNoEntry: false });
  if (bundle && installed && bundle.mtimeMs < installed.mtimeMs) return false;
  return files.every((file) => {
    const source = statSync(join(sources, file)).mtimeMs;
    const js = statSync(join(repo, "dist/src", file.replace(/\.ts$/, ".js")), { throwIfNoEntry: false });
    return js !== undefined && js.mtimeMs >= source && (bundle === undefined || bundle.mtimeMs >= source);
  });
}
