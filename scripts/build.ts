// Bundles each service into services/<name>/dist/main.mjs (or main.cjs, see `commonJs`)
// with esbuild: one file per entry point, dependencies included, so images need no npm
// install (and the npm registry is not reachable from containers here).
//
//   node scripts/build.ts [service ...]

import { existsSync, readdirSync, rmSync } from "node:fs";
import { isBuiltin } from "node:module";
import path from "node:path";
import { build, type Plugin } from "esbuild";

const root = path.resolve(import.meta.dirname, "..");
const entryNames = ["main"];

/**
 * Dependencies a service never uses but whose code would load anyway, replaced by a stub
 * that throws when touched. dockerode pulls in ssh2 (for ssh:// DOCKER_HOST; its WebAssembly
 * alone reserves ~16 MB) and gRPC (for BuildKit sessions): ~26 MB of the registrator's RSS.
 */
const stubbed: Record<string, { modules: string[]; why: string }> = {
  registrator: {
    modules: ["ssh2", "@grpc/grpc-js", "@grpc/proto-loader"],
    why: "the registrator supports unix:// and tcp:// DOCKER_HOST, not ssh://, and builds no images",
  },
};

function stubPlugin(service: string): Plugin {
  const spec = stubbed[service];
  return {
    name: "stub-unused",
    setup(b) {
      if (!spec) return;
      const filter = new RegExp(`^(${spec.modules.map((m) => m.replace(/[/.]/g, "\\$&")).join("|")})$`);
      b.onResolve({ filter }, (args) => ({ path: args.path, namespace: "stub" }));
      b.onLoad({ filter: /.*/, namespace: "stub" }, (args) => ({
        loader: "js",
        contents: `const fail = () => { throw new Error(${JSON.stringify(`${args.path} is left out of this bundle: ${spec.why}`)}); };
module.exports = new Proxy({}, { get: (_t, key) => (key === "__esModule" ? false : fail) });`,
      }));
    },
  };
}

/**
 * Services bundled as CommonJS: Node 24 starts a CommonJS entry ~50 ms sooner than an ES module
 * one on the 2-core machines here (a one-line http server: p50 46–51 vs 97–117 ms to listening,
 * the ES module loader is not in Node's startup snapshot). demo-node's start is on the path of
 * every scale-up (issue 8); its sources must not use top-level await or import.meta.
 */
const commonJs = new Set(["demo-node"]);

/** The bundle's file name: main.cjs or main.mjs. */
export function bundleName(service: string, entry = "main"): string {
  return `${entry}${commonJs.has(service) ? ".cjs" : ".mjs"}`;
}

/*
 * Node's built-in modules reached through `require`, not through `import`. An ES module import of
 * a built-in makes Node build its ES module facade, which reads every export, lazy getters
 * included: `import "node:http"` loads undici, http2 and worker_threads (http's WebSocket and
 * friends), `import "node:process"` loads readline, `import "node:child_process"` dgram, and so
 * on. Measured with Node 24.21 and the edge's flags: `import "node:http"; import "node:util"`
 * 58.6 MiB RSS, the same through require 45.3 MiB (bare Node 41.6). Each built-in becomes a
 * CommonJS stub (`module.exports = require(...)`) that esbuild's interop reads lazily.
 */
/**
 * Built-ins that dependencies require at their top but use only on paths the services do not
 * take, loaded on first use instead: prom-client's Pushgateway zlib and its AggregatorRegistry
 * cluster, http2. The stub is a proxy that loads the real module the first time anything reads
 * it. Not https or tls: the consul client (papi) overflowed the stack on its first https call
 * through the proxy ("Maximum call stack size exceeded": the cluster's registrators, reaching
 * their agents over TLS, never registered anything); lib/consul-client.ts loads them itself
 * only for a TLS Consul.
 */
const lazyBuiltins = new Set(["http2", "zlib", "cluster"]);

function lazyBuiltinStub(id: string): string {
  return `let real;
const load = () => (real ??= require(${JSON.stringify(id)}));
module.exports = new Proxy({}, {
  get: (_t, key) => (key === "__esModule" ? undefined : load()[key]),
  set: (_t, key, value) => ((load()[key] = value), true),
  has: (_t, key) => key in load(),
  ownKeys: () => Reflect.ownKeys(load()),
  getOwnPropertyDescriptor: (_t, key) => {
    const d = Reflect.getOwnPropertyDescriptor(load(), key);
    return d && { ...d, configurable: true };
  },
});`;
}

const builtinsThroughRequire: Plugin = {
  name: "builtins-through-require",
  setup(b) {
    b.onResolve({ filter: /^[a-z0-9_:/]+$/ }, (args) => {
      if (!isBuiltin(args.path)) return undefined;
      if (args.namespace === "builtin") return { path: args.path, external: true };
      return { path: args.path, namespace: "builtin" };
    });
    b.onLoad({ filter: /.*/, namespace: "builtin" }, (args) => ({
      loader: "js",
      contents: lazyBuiltins.has(args.path.replace(/^node:/, ""))
        ? lazyBuiltinStub(args.path)
        : `module.exports = require(${JSON.stringify(args.path)});`,
    }));
  },
};

export async function buildService(name: string): Promise<string[]> {
  const dir = path.join(root, "services", name);
  const entries = entryNames.map((e) => path.join(dir, "src", `${e}.ts`)).filter((f) => existsSync(f));
  if (entries.length === 0) throw new Error(`services/${name}/src has no main.ts`);
  rmSync(path.join(dir, "dist"), { recursive: true, force: true });
  const cjs = commonJs.has(name);
  await build({
    entryPoints: entries,
    outdir: path.join(dir, "dist"),
    outExtension: { ".js": cjs ? ".cjs" : ".mjs" },
    bundle: true,
    platform: "node",
    target: "node24",
    format: cjs ? "cjs" : "esm",
    // Linked, not inline: an inline map is parsed into memory at start when source maps are on.
    sourcemap: "linked",
    legalComments: "none",
    // Without comments the bundle is ASCII: a comment's "→" made V8 hold the whole 1.7 MB
    // source as a two-byte string (3.4 MB); now 1.3 MB, one byte per character. Names are
    // kept (no identifier minification), so stack traces still read.
    minifyWhitespace: true,
    logLevel: "warning",
    // ssh2 (under dockerode) loads optional native add-ons inside try/catch; leave them out.
    external: ["cpu-features", "*.node"],
    plugins: [stubPlugin(name), builtinsThroughRequire],
    // CommonJS dependencies expect require, __filename and __dirname, which an ES module lacks.
    banner: cjs
      ? {}
      : {
          js: [
            "import { createRequire as __docksideRequire } from 'node:module';",
            "import { fileURLToPath as __docksideFileUrl } from 'node:url';",
            "const require = __docksideRequire(import.meta.url);",
            "const __filename = __docksideFileUrl(import.meta.url);",
            "const __dirname = __docksideFileUrl(new URL('.', import.meta.url));",
          ].join(" "),
        },
  });
  return entries.map((e) => path.join("services", name, "dist", bundleName(name, path.basename(e, ".ts"))));
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
