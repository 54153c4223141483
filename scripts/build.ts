// Bundles each service into services/<name>/dist/main.mjs (or main.cjs, see `commonJs`)
// with esbuild: one file per entry point, dependencies included, so images need no npm
// install (and the npm registry is not reachable from containers here).
//
//   node scripts/build.ts [service ...]

import { existsSync, readdirSync, rmSync } from "node:fs";
import { createRequire, isBuiltin } from "node:module";
import path from "node:path";
import { build, type Plugin } from "esbuild";

const root = path.resolve(import.meta.dirname, "..");
const entryNames = ["main"];

/** A dependency (or one file of one) that a service never uses but whose code would load anyway. */
interface Unused {
  /** The import path as the importer writes it. */
  path: RegExp;
  /** Only when imported from a file whose path contains this (for a relative import). */
  importer?: string;
  why: string;
  /**
   * The stub throws when required, as if the package were not installed, for an importer that
   * requires it in a try/catch and has its own fallback; default: it throws when touched.
   */
  absent?: boolean;
}

/**
 * Replaced by a stub that throws when touched. dockerode pulls in ssh2 (for ssh:// DOCKER_HOST;
 * its WebAssembly alone reserves ~16 MB) and gRPC (for BuildKit sessions): ~26 MB of the
 * registrator's RSS. prom-client's index requires its Pushgateway client, which reads zlib at
 * its top (2.3 MiB of RSS at start; bench/README.md, "Templater RSS: what Node loads at
 * start"), and the OpenTelemetry API (93 KB of source) for exemplars.
 */
const unusedEverywhere: Unused[] = [
  {
    path: /^\.\/lib\/pushgateway$/,
    importer: "node_modules/prom-client/",
    why: "metrics are scraped from /metrics, never pushed to a Pushgateway",
  },
  {
    path: /^@opentelemetry\/api$/,
    importer: "node_modules/prom-client/",
    why: "metrics carry no exemplars (prom-client reads OpenTelemetry's active span only for them)",
  },
  {
    // Handlebars builds each template's code with source-map's SourceNode when it is installed
    // and with a plain-string SourceNode of its own when it is not (its browser build); the code
    // is the same. Compiling the templates at start was hot enough for V8 to optimise
    // source-map's functions with Turbofan, whose first compile alone maps ~6 MiB.
    path: /^source-map$/,
    importer: "node_modules/handlebars/",
    why: "templates are compiled without source maps",
    absent: true,
  },
];
const stubbed: Record<string, Unused[]> = {
  registrator: [
    {
      path: /^(ssh2|@grpc\/grpc-js|@grpc\/proto-loader)$/,
      why: "the registrator supports unix:// and tcp:// DOCKER_HOST, not ssh://, and builds no images",
    },
  ],
};

function stubPlugin(service: string): Plugin {
  const unused = [...unusedEverywhere, ...(stubbed[service] ?? [])];
  return {
    name: "stub-unused",
    setup(b) {
      for (const u of unused) {
        b.onResolve({ filter: u.path }, (args) =>
          u.importer === undefined || args.importer.includes(u.importer)
            ? { path: args.path, namespace: "stub", pluginData: u }
            : undefined,
        );
      }
      b.onLoad({ filter: /.*/, namespace: "stub" }, (args) => {
        const u = args.pluginData as Unused;
        const error = `new Error(${JSON.stringify(`${args.path} is left out of this bundle: ${u.why}`)})`;
        return {
          loader: "js",
          contents: u.absent
            ? `throw ${error};`
            : `const fail = () => { throw ${error}; };
module.exports = new Proxy({}, { get: (_t, key) => (key === "__esModule" ? false : fail) });`,
        };
      });
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

/**
 * A built-in imported by an ES module of an ES module bundle: an ES module stub that exports the
 * module as its default and each property by name, each read only if the bundle uses it (an
 * unused export is a pure call, which esbuild leaves out). A CommonJS stub there would go through
 * esbuild's interop (`__toESM`), which reads the descriptor of every export, and on node:util
 * that runs its lazy getters: util/diff, worker_threads, streams and a stderr stream, ~2.6 MiB of
 * the templater's RSS at start (bench/README.md, "Templater RSS: what Node loads at start").
 */
function esmBuiltinStub(id: string): string {
  const real = createRequire(import.meta.url)(id) as object;
  const names = Object.getOwnPropertyNames(real).filter((n) => n !== "default" && n !== "__esModule");
  return [
    `const real = require(${JSON.stringify(id)});`,
    "export default real;",
    ...names.map((n, i) => `const v${i} = /* @__PURE__ */ (() => real[${JSON.stringify(n)}])();`),
    `export { ${names.map((n, i) => `v${i} as ${JSON.stringify(n)}`).join(", ")} };`,
  ].join("\n");
}

/**
 * In a CommonJS bundle a built-in that is not lazy stays external: esbuild writes a plain
 * `require()`, and a named import reads the module object. Through a stub, esbuild's interop
 * (`__toESM`) copied every export of node:util at start, and that ran util's lazy getters:
 * util/diff, worker_threads and a stderr stream, ~5 ms of demo-node's start (bench/README.md,
 * "demo-node's start").
 */
function builtinsThroughRequire(cjs: boolean): Plugin {
  /** Each namespace's stub; a built-in required from inside a stub is the real one (external). */
  const stubs: Record<string, (id: string) => string> = {
    "builtin-lazy": lazyBuiltinStub,
    "builtin-esm": esmBuiltinStub,
    "builtin-cjs": (id) => `module.exports = require(${JSON.stringify(id)});`,
  };
  return {
    name: "builtins-through-require",
    setup(b) {
      b.onResolve({ filter: /^[a-z0-9_:/]+$/ }, (args) => {
        if (!isBuiltin(args.path)) return undefined;
        if (args.namespace in stubs) return { path: args.path, external: true };
        if (lazyBuiltins.has(args.path.replace(/^node:/, "")))
          return { path: args.path, namespace: "builtin-lazy" };
        if (cjs) return { path: args.path, external: true };
        return {
          path: args.path,
          namespace: args.kind === "import-statement" ? "builtin-esm" : "builtin-cjs",
        };
      });
      for (const [namespace, stub] of Object.entries(stubs)) {
        b.onLoad({ filter: /.*/, namespace }, (args) => ({ loader: "js", contents: stub(args.path) }));
      }
    },
  };
}

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
    plugins: [stubPlugin(name), builtinsThroughRequire(cjs)],
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
