// Writes crds/*.yaml and docs/API.md from the zod schemas in src/api/ (`npm run generate`).
// With --check, writes nothing and fails when a file differs from what would be written.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { renderCrdFiles } from "../src/api/crd.ts";
import { renderApiReference } from "../src/api/reference.ts";
import type { GeneratedFile } from "../src/api/crd.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Every file the generator owns, with its content. */
export function generatedFiles(): GeneratedFile[] {
  return [...renderCrdFiles(), renderApiReference()];
}

function read(path: string): string | undefined {
  try {
    return readFileSync(join(root, path), "utf8");
  } catch {
    return undefined;
  }
}

function main(check: boolean): number {
  const stale: string[] = [];
  for (const file of generatedFiles()) {
    if (read(file.path) === file.content) continue;
    stale.push(file.path);
    if (!check) {
      mkdirSync(dirname(join(root, file.path)), { recursive: true });
      writeFileSync(join(root, file.path), file.content);
    }
  }
  if (check && stale.length > 0) {
    console.error(`out of date (run npm run generate): ${stale.join(", ")}`);
    return 1;
  }
  console.log(stale.length === 0 ? "generated files are up to date" : `wrote ${stale.join(", ")}`);
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.includes("--check"));
}
