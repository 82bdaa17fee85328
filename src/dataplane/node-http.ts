// node:http and node:https, loaded through require. Imported as ES modules, Node builds a facade
// that reads every export, its lazy ones included, and one of those compiles Node's bundled undici:
// about 30 ms of a new head's start, for nothing the data plane uses.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

export const http = require("node:http") as typeof import("node:http");
export const https = require("node:https") as typeof import("node:https");
