import { readFileSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

// The image cannot be built on machines without a container engine, so its recipe is checked
// here: the build runs the same install and build commands as CI, and the paths the image and the
// chart start (dist/src/operator/main.js, dist/src/dataplane/main.js) are what `npm run build` emits.

const root = join(import.meta.dirname, "../../..");
const read = (path: string) => readFileSync(join(root, path), "utf8");

interface Instruction {
  keyword: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Dockerfile instructions by stage, with continuation lines joined and comments dropped. */
function parseDockerfile(text: string): Stage[] {
  const lines = text.replace(/\\\n/g, " ").split("\n");
  const stages: Stage[] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const [, keyword, args] = /^(\S+)\s*(.*)$/.exec(line)!;
    const upper = keyword!.toUpperCase();
    if (upper === "FROM") {
      const [, from, name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args!)!;
      stages.push({ from: from!, name, instructions: [] });
      continue;
    }
    stages.at(-1)!.instructions.push({ keyword: upper, args: args! });
  }
  return stages;
}

/** A RUN step's command, without BuildKit flags such as --mount. */
const command = (run: Instruction) => run.args.replace(/^(--\S+\s+)+/, "").replace(/\s+/g, " ");
const runs = (stage: Stage) => stage.instructions.filter((i) => i.keyword === "RUN").map(command);
const only = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword);

const stages = parseDockerfile(read("Dockerfile"));
const [build, runtime] = stages as [Stage, Stage];
/** The install command CI runs (.ci/run). */
const ciInstall = /^\s*(npm ci\b.*)$/m.exec(read(".ci/run"))?.[1]?.trim();

describe("Dockerfile", () => {
  it("builds in one node:24-slim stage and runs in another", () => {
    expect(stages.map((s) => s.from)).toEqual(["node:24-slim", "node:24-slim"]);
    expect(build.name).toBe("build");
  });

  it("installs and builds with exactly the commands CI runs", () => {
    expect(ciInstall).toBe("npm ci --no-audit --no-fund");
    expect(runs(build)).toEqual([ciInstall, "npm run build"]);
    const pkg = JSON.parse(read("package.json")) as { scripts: Record<string, string> };
    expect(pkg.scripts.build).toBe("tsc -p tsconfig.build.json");
  });

  it("installs only production dependencies in the runtime stage and copies dist/ alone from the build", () => {
    expect(runs(runtime)).toEqual([ciInstall!.replace("npm ci", "npm ci --omit=dev")]);
    const copies = only(runtime, "COPY").map((c) => c.args);
    expect(copies).toEqual(["package.json package-lock.json ./", "--from=build /app/dist ./dist"]);
  });

  it("runs as uid 65532 with node as the entrypoint and the operator as the default command", () => {
    expect(only(runtime, "USER").map((u) => u.args)).toEqual(["65532:65532"]);
    expect(JSON.parse(only(runtime, "ENTRYPOINT")[0]!.args)).toEqual(["node"]);
    expect(JSON.parse(only(runtime, "CMD")[0]!.args)).toEqual(["dist/src/operator/main.js"]);
  });

  it("sends the build every file its COPY steps name, and nothing else", () => {
    const allowed = read(".dockerignore")
      .split("\n")
      .filter((l) => l.startsWith("!"))
      .map((l) => l.slice(1).replace(/\/$/, ""));
    const sources = only(build, "COPY")
      .filter((c) => !c.args.startsWith("--from"))
      .flatMap((c) => c.args.split(/\s+/).slice(0, -1));
    expect(new Set(sources)).toEqual(new Set(allowed));
    expect(read(".dockerignore")).toMatch(/^\*$/m);
  });

  it("starts files that `npm run build` emits: the operator and the data plane's main", () => {
    const config = ts.getParsedCommandLineOfConfigFile(join(root, "tsconfig.build.json"), undefined, {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
      },
    })!;
    expect(config.errors).toEqual([]);
    expect(config.options.noEmit).toBe(false);
    const emitted = (source: string) => {
      const file = join(root, source);
      expect(config.fileNames).toContain(file);
      return ts
        .getOutputFileNames(config, file, false)
        .filter((f) => f.endsWith(".js"))
        .map((f) => relative(root, f));
    };
    expect(emitted("src/operator/main.ts")).toEqual(["dist/src/operator/main.js"]);
    expect(emitted("src/dataplane/main.ts")).toEqual(["dist/src/dataplane/main.js"]);
    expect(emitted("src/cli/main.ts")).toEqual(["dist/src/cli/main.js"]);
    // What the image and the chart start is what the build writes.
    expect(JSON.parse(only(runtime, "CMD")[0]!.args)[0]).toBe("dist/src/operator/main.js");
    expect(read("deploy/helm/understudy/templates/deployment.yaml")).toContain("- dist/src/operator/main.js");
    const bin = (JSON.parse(read("package.json")) as { bin: Record<string, string> }).bin;
    expect(bin).toEqual({ understudy: "dist/src/cli/main.js", "kubectl-understudy": "dist/src/cli/main.js" });
    // The runtime stage keeps only dist/: nothing the build compiles may live outside it.
    expect(config.options.outDir).toBe(join(root, "dist"));
  });
});
