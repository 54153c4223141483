// Handlebars helpers for the nginx case. Templates are trusted (the operator writes them);
// the values they get from the view are not, so every helper that prints a Consul value checks
// it again: a helper never prints something nginx-values would refuse.

import type { HelperOptions } from "handlebars";
import * as nv from "./nginx-values.ts";
import type { InstanceView, ServiceView } from "./view.ts";

/** A helper failure, with the template line the helper was called from. */
export class HelperError extends Error {
  readonly line: number | undefined;
  constructor(message: string, line: number | undefined) {
    super(message);
    this.name = "HelperError";
    this.line = line;
  }
}

type Helper = (...args: unknown[]) => unknown;

function lineOf(options: unknown): number | undefined {
  return (options as { loc?: { start?: { line?: number } } } | undefined)?.loc?.start?.line;
}

/** The options object Handlebars passes last, and the positional arguments before it. */
function split(args: unknown[]): { params: unknown[]; options: HelperOptions } {
  return { params: args.slice(0, -1), options: args[args.length - 1] as HelperOptions };
}

function nameOf(service: unknown, helper: string): string {
  const raw = typeof service === "string" ? service : (service as Partial<ServiceView> | null)?.name;
  const v = nv.serviceName(raw);
  if (!v.ok) throw new Error(`${helper}: expects a service (or its name): ${v.reason}`);
  return v.value;
}

function endpointOf(instance: unknown, helper: string): string {
  const i = instance as Partial<InstanceView> | null;
  const address = nv.ipAddress(i?.address);
  const port = nv.port(i?.port);
  if (!address.ok) throw new Error(`${helper}: expects an instance: ${address.reason}`);
  if (!port.ok) throw new Error(`${helper}: expects an instance: ${port.reason}`);
  return nv.hostPort(address.value.address, port.value);
}

function tagsOf(obj: unknown): string[] {
  const tags = (obj as { tags?: unknown } | null)?.tags;
  return Array.isArray(tags) ? tags.filter((t): t is string => typeof t === "string") : [];
}

/** `key` is written by the template author; a value from the view is re-checked before printing. */
function safeLiteral(value: unknown, helper: string): string {
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (typeof value !== "string") throw new Error(`${helper}: value is not text`);
  if (nv.isQuoted(value) && nv.quotable(value.slice(1, -1))) return value; // quoted by the view
  const v = nv.literal(value, nv.limits.metaValue);
  if (!v.ok) throw new Error(`${helper}: ${v.reason}`);
  return v.value;
}

/** The same few parameter sets come back for every instance: check and format each once. */
const paramCache = new Map<string, string>();

function serverParams(hash: Record<string, unknown>): string {
  // Sorted: Handlebars does not keep the order the template wrote them in.
  const entries = Object.entries(hash).sort(([a], [b]) => (a < b ? -1 : 1));
  const key = JSON.stringify(entries);
  let out = paramCache.get(key);
  if (out !== undefined) return out;
  out = "";
  for (const [name, value] of entries) {
    if (!/^[a-z_]+$/.test(name)) throw new Error(`server: parameter name ${nv.describeValue(name)}`);
    if (value === true) {
      out += ` ${name}`;
      continue;
    }
    const v = nv.token(String(value), 64, `server ${name}`);
    if (!v.ok) throw new Error(v.reason);
    out += ` ${name}=${v.value}`;
  }
  if (paramCache.size < 1000) paramCache.set(key, out);
  return out;
}

const helpers: Record<string, Helper> = {
  /** `{{upstream service}}` → the upstream block's name, `svc_<name>`. */
  upstream: (...args) => `svc_${nameOf(split(args).params[0], "upstream")}`,

  /** `{{hostPort instance}}` → `10.0.0.5:8080` or `[fd00::5]:8080`. */
  hostPort: (...args) => endpointOf(split(args).params[0], "hostPort"),

  /**
   * `{{server instance max_fails=1 fail_timeout="2s"}}` → `server 10.0.0.5:8080 fail_timeout=2s max_fails=1;`
   * Parameters come from the template (in name order); their values must still be nginx words.
   */
  server: (...args) => {
    const { params, options } = split(args);
    return `server ${endpointOf(params[0], "server")}${serverParams(options.hash ?? {})};`;
  },

  /** `{{pathPrefix service}}` → `/<name>/`. */
  pathPrefix: (...args) => `/${nameOf(split(args).params[0], "pathPrefix")}/`,

  /** `{{hostName service}}` → `<name>.<edge.hostDomain>` (just `<name>` when the domain is empty). */
  hostName: (...args) => {
    const { params, options } = split(args);
    const name = nameOf(params[0], "hostName");
    const domain = (options.data?.root as { edge?: { hostDomain?: string } } | undefined)?.edge?.hostDomain;
    return domain ? `${name}.${domain}` : name;
  },

  /** `{{#if (hasTag this "canary")}}` */
  hasTag: (...args) => {
    const { params } = split(args);
    return tagsOf(params[0]).includes(String(params[1]));
  },

  /** `{{tagValue this "weight" 1}}` → the value of a `weight=<value>` tag, else the default (or ""). */
  tagValue: (...args) => {
    const { params } = split(args);
    const prefix = `${String(params[1])}=`;
    const tag = tagsOf(params[0]).find((t) => t.startsWith(prefix));
    if (tag !== undefined) return safeLiteral(tag.slice(prefix.length), "tagValue");
    return params.length > 2 ? params[2] : "";
  },

  /** `{{meta this "timeout" "5s"}}` → the meta value (a bare word or a quoted string), else the default. */
  meta: (...args) => {
    const { params } = split(args);
    const meta = (params[0] as { meta?: Record<string, unknown> } | null)?.meta ?? {};
    const key = String(params[1]);
    if (Object.prototype.hasOwnProperty.call(meta, key)) return safeLiteral(meta[key], "meta");
    return params.length > 2 ? params[2] : "";
  },

  /** `{{quote value}}` → an nginx double-quoted string. */
  quote: (...args) => {
    const value = split(args).params[0];
    if (typeof value === "string" && nv.isQuoted(value)) return value; // the view quoted it already
    return nv.quote(String(value ?? ""));
  },

  /** `{{#if (eq a b)}}` */
  eq: (...args) => {
    const { params } = split(args);
    return params[0] === params[1];
  },
};

/** The helpers, each wrapped so a failure names the template line it came from. */
export function nginxHelpers(): Record<string, Helper> {
  return Object.fromEntries(
    Object.entries(helpers).map(([name, fn]) => [
      name,
      (...args: unknown[]) => {
        try {
          return fn(...args);
        } catch (err) {
          throw new HelperError((err as Error).message, lineOf(args[args.length - 1]));
        }
      },
    ]),
  );
}

export const helperNames = Object.keys(helpers);
