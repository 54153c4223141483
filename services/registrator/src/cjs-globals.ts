// Bundled into one ES module (scripts/build.ts), CommonJS dependencies lose
// __dirname and __filename; ssh2 (under dockerode) reads __dirname when it loads.
// Imported first by main.ts, before anything that loads dockerode.

import path from "node:path";
import { fileURLToPath } from "node:url";

const g = globalThis as { __filename?: string; __dirname?: string };
g.__filename ??= fileURLToPath(import.meta.url);
g.__dirname ??= path.dirname(g.__filename);
