#!/usr/bin/env node
// `understudy` and `kubectl understudy` (kubectl runs kubectl-understudy with the arguments as given).
import { run } from "./program.ts";

process.exitCode = await run(process.argv, {
  stdout: process.stdout,
  stderr: process.stderr,
  now: () => Date.now(),
});
