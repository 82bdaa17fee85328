// The operator process: `npm start` / `node src/operator/main.ts [flags]`.
import { registerControllers } from "../controllers/index.ts";
import { createLogger } from "./logger.ts";
import { Manager } from "./manager.ts";
import { CommanderError, parseSettings, SettingsError, type Settings } from "./settings.ts";

/** The settings from the command line and the environment; a usage error ends the process here. */
function readSettings(): Settings {
  try {
    return parseSettings(process.argv.slice(2), process.env);
  } catch (err) {
    // commander has already printed help, or what was wrong with the command line.
    if (err instanceof CommanderError) process.exit(err.exitCode);
    if (err instanceof SettingsError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

const settings = readSettings();

const log = createLogger({ level: settings.logLevel });
process.on("uncaughtException", (err) => {
  log.fatal({ err }, "uncaught exception");
  log.flush();
  process.exit(1);
});
process.on("unhandledRejection", (err) => {
  log.fatal({ err }, "unhandled promise rejection");
  log.flush();
  process.exit(1);
});

const manager = new Manager({ settings, log });
registerControllers(manager);
manager.handleSignals();
log.info(
  {
    namespace: settings.namespace,
    identity: settings.leaderElection.identity,
    leaderElection: settings.leaderElection.enabled,
    crashAt: settings.crashAt,
  },
  "starting the operator",
);
await manager.start();
