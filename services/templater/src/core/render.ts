// Compiling and rendering templates, and sealing a render into a generation. Pure: template
// text in, file contents out. A template error names the file and, when known, the line.

import { createHash } from "node:crypto";
import Handlebars from "handlebars";
import { HelperError, helperNames, nginxHelpers } from "./helpers.ts";
import type { ServiceView } from "./view.ts";

export interface TemplateSpec {
  /** Template file (absolute path). */
  source: string;
  /** Output path inside a generation, relative (e.g. `nginx.conf`, `conf.d/services.conf`). */
  dest: string;
}

/** A service as templates see it; dynamic mode leaves `instances` out. */
export type RouteService = Omit<ServiceView, "instances"> & { instances?: ServiceView["instances"] };

export interface EdgeContext {
  /** Port nginx listens on. */
  listenPort: number;
  /** Port of the templater's ops endpoint (/health, /metrics, status page). */
  opsPort: number;
  /** Routes by host are `<service>.<hostDomain>`. */
  hostDomain: string;
  routeTag: string;
  /** Dynamic upstreams (Lua balancer, instance sets pushed): templates list routes only. */
  dynamic?: boolean;
  /** Dynamic mode: port of nginx's control listener on 127.0.0.1. */
  controlPort?: number;
  /** Dynamic mode: directory holding dockside's Lua modules. */
  luaPath?: string;
  /**
   * Set only for the stand-in config of a fresh edge that cannot read Consul (no config applied
   * yet): templates answer 503 everywhere instead of 404, so clients see "not yet", not "no such".
   */
  consulUnavailable?: boolean;
}

export interface RenderContext {
  services: readonly RouteService[];
  edge: EdgeContext;
  /** The generation id of this render (filled in by `seal`). */
  generation: string;
}

export interface RenderedFile {
  dest: string;
  content: string;
}

export interface Generation {
  /** Content hash of the files: equal renders have equal ids. */
  id: string;
  files: RenderedFile[];
  /** The services this render routes (not part of the id; kept next to the files, read back after a restart). */
  routes?: string[];
}

/** Where a generation's route list is kept, next to its files. */
export const routesManifest = ".dockside-routes.json";

export class TemplateError extends Error {
  readonly file: string;
  readonly line: number | undefined;
  constructor(file: string, line: number | undefined, message: string) {
    super(`${file}${line === undefined ? "" : `:${line}`}: ${message}`);
    this.name = "TemplateError";
    this.file = file;
    this.line = line;
  }
}

export interface CompiledTemplate {
  spec: TemplateSpec;
  text: string;
  render: (context: RenderContext) => string;
}

/** Stands for the generation id while rendering; replaced by `seal` once the id is known. */
export const generationPlaceholder = "@@dockside-generation@@";

const env = Handlebars.create();
env.registerHelper(nginxHelpers());

const compileOptions: CompileOptions = {
  // nginx is not HTML: values are made safe by the view and the helpers, not by HTML escaping.
  noEscape: true,
  // An unknown helper is a compile error with a line number, not a surprise at render time.
  knownHelpers: Object.fromEntries(helperNames.map((h) => [h, true])),
  knownHelpersOnly: true,
};

function lineOf(err: unknown): number | undefined {
  const e = err as { lineNumber?: unknown; line?: unknown; message?: string };
  if (typeof e.lineNumber === "number") return e.lineNumber;
  if (typeof e.line === "number") return e.line;
  const m = /line (\d+)/.exec(e.message ?? "");
  return m ? Number(m[1]) : undefined;
}

function firstLine(message: string): string {
  // Handlebars parse errors carry a source excerpt and the token list on further lines.
  const [head, excerpt, marker] = message.split("\n");
  return excerpt !== undefined && marker?.includes("^") ? `${head} near ${JSON.stringify(excerpt)}` : head!;
}

/** Compiles eagerly, so a broken template is reported when it is loaded, not when it is used. */
export function compileTemplate(spec: TemplateSpec, text: string): CompiledTemplate {
  let fn: HandlebarsTemplateDelegate;
  try {
    env.precompile(text, compileOptions);
    fn = env.compile(text, compileOptions);
  } catch (err) {
    throw new TemplateError(spec.source, lineOf(err), firstLine((err as Error).message));
  }
  return {
    spec,
    text,
    render: (context) => {
      try {
        return fn(context, { allowProtoPropertiesByDefault: false, allowProtoMethodsByDefault: false });
      } catch (err) {
        const line = err instanceof HelperError ? err.line : lineOf(err);
        throw new TemplateError(spec.source, line, firstLine((err as Error).message));
      }
    },
  };
}

export function renderAll(templates: readonly CompiledTemplate[], context: RenderContext): RenderedFile[] {
  return templates.map((t) => ({ dest: t.spec.dest, content: t.render(context) }));
}

/** Gives a render its id (a hash of every file) and writes the id where templates asked for it. */
export function seal(files: readonly RenderedFile[]): Generation {
  const sorted = [...files].sort((a, b) => (a.dest < b.dest ? -1 : a.dest > b.dest ? 1 : 0));
  const hash = createHash("sha256");
  for (const f of sorted) hash.update(`${f.dest}\u0000${f.content.length}\u0000${f.content}\u0000`);
  const id = hash.digest("hex").slice(0, 16);
  return {
    id,
    files: sorted.map((f) => ({ dest: f.dest, content: f.content.replaceAll(generationPlaceholder, id) })),
  };
}
