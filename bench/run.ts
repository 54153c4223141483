// npm run bench -- <name> [args]: runs bench/<name>.ts; with no name, lists them.

import { readdirSync } from "node:fs";
import path from "node:path";
import { execa } from "execa";

const dir = import.meta.dirname;
const names = readdirSync(dir)
  .filter((f) => f.endsWith(".ts") && f !== "run.ts")
  .map((f) => f.slice(0, -3))
  .sort();
const [name, ...args] = process.argv.slice(2);
if (!name || !names.includes(name)) {
  console.log(
    `usage: npm run bench -- <name> [args]\nbenchmarks: ${names.join(", ")}\nfigures: bench/README.md`,
  );
  process.exit(name ? 2 : 0);
}
const r = await execa(process.execPath, [path.join(dir, `${name}.ts`), ...args], {
  stdio: "inherit",
  reject: false,
});
process.exit(r.exitCode ?? 1);
