// One place to declare a service's settings: each has one flag, one environment
// variable, a default and a parser. Flags win over the environment, which wins
// over the default. A bad value is a ConfigError naming the flag and the variable.

import { parseArgs } from "node:util";

export interface Setting<T> {
  /** Long flag without dashes, e.g. "resync-interval". */
  flag: string;
  /** Environment variable, or null when there is none. */
  env: string | null;
  default: T;
  help: string;
  parse: (raw: string) => T;
  /** A flag that takes no value (`--once`); its variable is parsed as a boolean. */
  switch?: boolean;
}

export type Settings = Record<string, Setting<unknown>>;
export type Values<S extends Settings> = { [K in keyof S]: S[K] extends Setting<infer T> ? T : never };

export class ConfigError extends Error {
  readonly setting: string | undefined;
  constructor(message: string, setting?: string) {
    super(message);
    this.name = "ConfigError";
    this.setting = setting;
  }
}

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export const parsers = {
  string:
    (opts: { allowEmpty?: boolean } = {}) =>
    (raw: string): string => {
      if (!opts.allowEmpty && raw.trim() === "") throw new Error("must not be empty");
      return raw;
    },
  int:
    (opts: { min?: number; max?: number } = {}) =>
    (raw: string): number => {
      if (!/^-?\d+$/.test(raw.trim())) throw new Error(`"${raw}" is not a whole number`);
      const n = Number(raw);
      if (opts.min !== undefined && n < opts.min) throw new Error(`${n} is below the minimum ${opts.min}`);
      if (opts.max !== undefined && n > opts.max) throw new Error(`${n} is above the maximum ${opts.max}`);
      return n;
    },
  port: () => parsers.int({ min: 0, max: 65535 }),
  number:
    (opts: { min?: number; max?: number } = {}) =>
    (raw: string): number => {
      const n = Number(raw.trim());
      if (raw.trim() === "" || !Number.isFinite(n)) throw new Error(`"${raw}" is not a number`);
      if (opts.min !== undefined && n < opts.min) throw new Error(`${n} is below the minimum ${opts.min}`);
      if (opts.max !== undefined && n > opts.max) throw new Error(`${n} is above the maximum ${opts.max}`);
      return n;
    },
  /** Go-style durations ("250ms", "30s", "1m30s"), returned in milliseconds. */
  duration:
    (opts: { minMs?: number; maxMs?: number } = {}) =>
    (raw: string): number => {
      const text = raw.trim();
      if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(text)) {
        throw new Error(`"${raw}" is not a duration; write it with a unit, e.g. 250ms, 30s, 1m`);
      }
      let ms = 0;
      for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(m[1]) * durationUnits[m[2]!]!;
      ms = Math.round(ms);
      if (opts.minMs !== undefined && ms < opts.minMs)
        throw new Error(`${raw} is shorter than ${opts.minMs}ms`);
      if (opts.maxMs !== undefined && ms > opts.maxMs)
        throw new Error(`${raw} is longer than ${opts.maxMs}ms`);
      return ms;
    },
  bool:
    () =>
    (raw: string): boolean => {
      const v = raw.trim().toLowerCase();
      if (["1", "true", "yes", "on"].includes(v)) return true;
      if (["0", "false", "no", "off", ""].includes(v)) return false;
      throw new Error(`"${raw}" is not a boolean; use true or false`);
    },
  list:
    () =>
    (raw: string): string[] =>
      raw
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s !== ""),
  oneOf:
    <T extends string>(values: readonly T[]) =>
    (raw: string): T => {
      if (!(values as readonly string[]).includes(raw)) {
        throw new Error(`"${raw}" is not one of ${values.join(", ")}`);
      }
      return raw as T;
    },
};

function label(s: Setting<unknown>): string {
  return s.env ? `--${s.flag} (${s.env})` : `--${s.flag}`;
}

/** Reads every setting from argv and env. Throws ConfigError on the first bad or unknown one. */
export function readSettings<S extends Settings>(
  settings: S,
  argv: readonly string[],
  env: Record<string, string | undefined>,
): Values<S> {
  const options: Record<string, { type: "string" | "boolean" }> = {};
  for (const s of Object.values(settings)) options[s.flag] = { type: s.switch ? "boolean" : "string" };
  let parsed: Record<string, string | boolean | undefined>;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values as Record<
      string,
      string | boolean | undefined
    >;
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}; run with --help for the list of settings`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(settings)) {
    const fromFlag = parsed[s.flag];
    const fromEnv = s.env ? env[s.env] : undefined;
    if (fromFlag === true) {
      out[key] = true;
      continue;
    }
    const raw = typeof fromFlag === "string" ? fromFlag : fromEnv;
    if (raw === undefined) {
      out[key] = s.default;
      continue;
    }
    try {
      out[key] = s.switch ? parsers.bool()(raw) : s.parse(raw);
    } catch (err) {
      const source = typeof fromFlag === "string" ? `--${s.flag}` : s.env;
      throw new ConfigError(`invalid ${source}: ${(err as Error).message}`, s.flag);
    }
  }
  return out as Values<S>;
}

function showDefault(v: unknown): string {
  if (v === undefined || v === null || v === "") return "(none)";
  if (Array.isArray(v)) return v.length ? v.join(",") : "(none)";
  return String(v);
}

/** The `--help` text: one line per setting with its variable and default. */
export function settingsHelp(settings: Settings, displayDefaults: Record<string, string> = {}): string {
  const rows = Object.entries(settings).map(([key, s]) => [
    label(s),
    s.help,
    `default: ${displayDefaults[key] ?? showDefault(s.default)}`,
  ]);
  const w = Math.max(...rows.map((r) => r[0]!.length));
  return rows.map(([l, h, d]) => `  ${l!.padEnd(w)}  ${h} (${d})`).join("\n");
}

export interface LoadOptions<S extends Settings> {
  argv?: readonly string[];
  env?: Record<string, string | undefined>;
  /** Shown by --help instead of a default computed at start-up. */
  displayDefaults?: Record<string, string>;
  /** Rules across settings; throws a ConfigError naming the flag to fix. */
  check?: (values: Values<S>) => void;
}

/**
 * For `main`: read the settings, print help and exit 0 on --help, print the
 * error and exit 2 on a bad setting.
 */
export function loadSettingsOrExit<S extends Settings>(
  name: string,
  settings: S,
  { argv = process.argv.slice(2), env = process.env, displayDefaults = {}, check }: LoadOptions<S> = {},
): Values<S> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`usage: ${name} [flags]\n\n${settingsHelp(settings, displayDefaults)}\n`);
    process.exit(0);
  }
  try {
    const values = readSettings(settings, argv, env);
    check?.(values);
    return values;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${name}: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}
