// Structured logs: one JSON object per line on stdout, so `docker logs` and any collector can parse them.

export type Level = "debug" | "info" | "warn" | "error";
export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  child(fields: Fields): Logger;
}

export interface LoggerOptions {
  service: string;
  level?: Level;
  write?: (line: string) => void;
  now?: () => Date;
}

const rank: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export const levels = Object.keys(rank) as Level[];

export function describeError(err: unknown): Fields {
  if (err instanceof Error) {
    const out: Fields = { message: err.message };
    const code = (err as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    const status = (err as { statusCode?: unknown }).statusCode;
    if (status !== undefined) out.status = status;
    return out;
  }
  return { message: String(err) };
}

function serialise(fields: Fields): Fields {
  const out: Fields = {};
  for (const [k, v] of Object.entries(fields)) out[k] = v instanceof Error ? describeError(v) : v;
  return out;
}

export function createLogger(options: LoggerOptions, bound: Fields = {}): Logger {
  const min = rank[options.level ?? "info"];
  const write = options.write ?? ((line: string) => process.stdout.write(line + "\n"));
  const now = options.now ?? (() => new Date());
  const emit = (level: Level, msg: string, fields?: Fields) => {
    if (rank[level] < min) return;
    const record = { ts: now().toISOString(), level, service: options.service, msg, ...bound };
    write(JSON.stringify(fields ? { ...record, ...serialise(fields) } : record));
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger(options, { ...bound, ...serialise(fields) }),
  };
}

/** A logger that drops everything; for tests and benchmarks that only want the behaviour. */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};
