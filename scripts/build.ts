// Bundles each service into services/<name>/dist/*.mjs with esbuild: one file per
// entry point, dependencies included, so images need no npm install (and the npm
// registry is not reachable from containers here).
//
//   node scripts/build.ts [service ...]

import { existsSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { build } from "esbuild";

const root = path.resolve(import.meta.dirname, "..");
const entryNames = ["main", "probe"];

export async function buildService(name: string): Promise<string[]> {
  const dir = path.join(root, "services", name);
  const entries = entryNames.map((e) => path.join(dir, "src", `${e}.ts`)).filter((f) => existsSync(f));
  if (entries.length === 0) throw new Error(`services/${name}/src has no main.ts`);
  rmSync(path.join(dir, "dist"), { recursive: true, force: true });
  await build({
    entryPoints: entries,
    outdir: path.join(dir, "dist"),
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    target: "node24",
    format: "esm",
    sourcemap: "inline",
    legalComments: "none",
    logLevel: "warning",
    // ssh2 (under dockerode) loads optional native add-ons inside try/catch; leave them out.
    external: ["cpu-features", "*.node"],
    banner: {
      js: "import { createRequire as __dockside_require } from 'node:module'; const require = __dockside_require(import.meta.url);",
    },
  });
  return entries.map((e) => path.join("services", name, "dist", path.basename(e, ".ts") + ".mjs"));
}

export function allServices(): string[] {
  return readdirSync(path.join(root, "services")).filter((d) =>
    existsSync(path.join(root, "services", d, "src")),
  );
}

if (import.meta.main) {
  const names = process.argv.slice(2);
  for (const name of names.length ? names : allServices()) {
    const started = Date.now();
    const out = await buildService(name);
    console.log(`build: ${name.padEnd(12)} ${out.join(", ")} (${Date.now() - started} ms)`);
  }
}
