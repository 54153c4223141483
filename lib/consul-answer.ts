// "An answer that cannot be trusted", decided in one place for every service.
//
// Nothing Consul sends may change state before it is classified here:
//
//   ok           2xx, and the body decoded to the shape the caller asked for (lib/answer-schema.ts)
//   denied       401/403: ACLs refuse the token. `message` is what Consul said ("Permission
//                denied", "ACL not found"). Also used by callers for answers that are well-formed
//                but only possible when ACLs filter them (e.g. a catalog with no node at all).
//   malformed    Consul (or something in front of it) answered, but not with what the endpoint
//                promises: an empty body, an HTML page, truncated JSON, a field missing or of the
//                wrong type, an unexpected status
//   unreachable  no usable answer: connection refused or reset, a timeout, a body that stalled,
//                a 5xx or 429 (Consul up but unable to serve, e.g. no leader)
//
// Use:
//   const answer = classifyAnswer(await consulRequest(...).catch((e) => e), schema);
//   if (answer.kind !== "ok") keepLastGoodAndReport(answer);   // or: const v = trustedValue(answer)
//
// `trustedValue` throws a ConsulAnswerError (kind, status, message; `cause` the underlying error)
// for code that handles failures with try/catch. Messages are one line and never contain the token.
// `ConsulTrust` remembers the current kind (for /health, status pages and metrics) and logs only
// its changes.

import type { AnswerSchema } from "./answer-schema.ts";
import type { Logger } from "./log.ts";

/** What to change when TLS to Consul fails, by Node's error code. */
const tlsHints: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "set CONSUL_CACERT to the CA that signed Consul's certificate",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "set CONSUL_CACERT to the CA that signed Consul's certificate",
  SELF_SIGNED_CERT_IN_CHAIN: "set CONSUL_CACERT to the CA that signed Consul's certificate",
  DEPTH_ZERO_SELF_SIGNED_CERT: "set CONSUL_CACERT to the CA that signed Consul's certificate",
  CERT_HAS_EXPIRED: "Consul's certificate has expired",
  ERR_TLS_CERT_ALTNAME_INVALID:
    "the address is not a name in Consul's certificate: set CONSUL_TLS_SERVER_NAME to one that is",
  ERR_SSL_WRONG_VERSION_NUMBER: "Consul answers plain http there: use an http:// address",
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    "Consul requires a client certificate: set CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY",
};

const errorCode = (err: unknown): string => {
  const code = (err as { code?: unknown } | undefined)?.code;
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  return String(code ?? cause?.code ?? "");
};

/** What to change when a TLS handshake with Consul failed (by Node's error code), if anything. */
export function tlsHint(err: unknown): string | undefined {
  return tlsHints[errorCode(err)];
}

const errorText = (err: Error) => {
  const c = errorCode(err);
  const text = c && !err.message.includes(c) ? `${err.message} (${c})` : err.message;
  const hint = tlsHints[c];
  return hint ? `${text}: ${hint}` : text;
};

export type AnswerProblem = "denied" | "malformed" | "unreachable";
export type AnswerKind = "ok" | AnswerProblem;

/** A response as read off the wire (see consulRequest in consul-client.ts). */
export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export type ConsulAnswer<T> =
  | { kind: "ok"; value: T; /** X-Consul-Index; NaN when absent. */ index: number }
  | { kind: AnswerProblem; message: string; status?: number; cause?: unknown };

/** An answer that is not ok, as an error; `kind` says which. The one error class for every service. */
export class ConsulAnswerError extends Error {
  readonly kind: AnswerProblem;
  readonly status: number | undefined;
  /** What was asked, when the caller names it (the registrator: the `consul` client's request name). */
  readonly request: string | undefined;
  constructor(
    kind: AnswerProblem,
    message: string,
    options: { status?: number; request?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "ConsulAnswerError";
    this.kind = kind;
    this.status = options.status;
    this.request = options.request;
  }
}

const oneLine = (s: string, max = 200) => {
  const flat = s.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
};

/**
 * What the HTTP status alone says, the rule every input adapter shares: refused (401/403), no
 * usable answer (5xx, 429, or no status at all), a success whose body decides, or another status
 * (what that means is the caller's: an odd answer here, "not found" to a registrator's write).
 */
export function statusKind(status: number): "denied" | "unreachable" | "success" | "other" {
  if (status === 401 || status === 403) return "denied";
  if (status >= 500 || status === 429 || status === 0) return "unreachable";
  return status >= 200 && status <= 299 ? "success" : "other";
}

/** Classifies what a request produced: a raw answer, or the error it failed with. */
export function classifyAnswer<T>(raw: RawAnswer | Error, schema: AnswerSchema<T>): ConsulAnswer<T> {
  if (raw instanceof Error) {
    if (raw instanceof ConsulAnswerError) return { kind: raw.kind, message: raw.message, cause: raw };
    return { kind: "unreachable", message: errorText(raw), cause: raw };
  }
  const { status } = raw;
  switch (statusKind(status)) {
    case "denied":
      return { kind: "denied", status, message: oneLine(raw.body) || `HTTP ${status}` };
    case "unreachable":
      return { kind: "unreachable", status, message: `HTTP ${status}: ${oneLine(raw.body) || "no body"}` };
    case "other":
      return { kind: "malformed", status, message: `unexpected HTTP ${status}: ${oneLine(raw.body, 80)}` };
    case "success": // the body decides, below
  }
  let json: unknown;
  try {
    json = JSON.parse(raw.body);
  } catch (err) {
    const type = String(raw.headers["content-type"] ?? "no content-type");
    const what = raw.body.trim() === "" ? "an empty body" : `not JSON (${type}): ${oneLine(raw.body, 40)}`;
    return { kind: "malformed", status, message: `HTTP ${status} with ${what}`, cause: err };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join(".") : "the body";
    return {
      kind: "malformed",
      status,
      message: `HTTP ${status} with an unexpected shape: ${where}: ${issue?.message ?? "invalid"}`,
      cause: parsed.error,
    };
  }
  const header = raw.headers["x-consul-index"];
  return { kind: "ok", value: parsed.data, index: typeof header === "string" ? Number(header) : NaN };
}

/** The value of an ok answer; anything else throws a ConsulAnswerError. */
export function trustedValue<T>(answer: ConsulAnswer<T>): T {
  if (answer.kind === "ok") return answer.value;
  throw new ConsulAnswerError(answer.kind, answer.message, { status: answer.status, cause: answer.cause });
}

/** The kind of any error: a ConsulAnswerError's own, "unreachable" for everything else. */
export function problemOf(err: unknown): { kind: AnswerProblem; message: string } {
  if (err instanceof ConsulAnswerError) return { kind: err.kind, message: err.message };
  return { kind: "unreachable", message: err instanceof Error ? errorText(err) : String(err) };
}

/** Where a service stands with Consul now: ok, or the last problem and since when. */
export interface TrustState {
  kind: AnswerKind | "unknown";
  /** What went wrong (Consul's words for "denied"); null when ok. */
  message: string | null;
  since: string;
}

const problemLines: Record<AnswerProblem, string> = {
  denied: "consul permission denied; keeping the last good state, retrying",
  malformed: "consul answer cannot be trusted; keeping the last good state, retrying",
  unreachable: "consul unreachable; retrying until it answers",
};

/**
 * Tracks ok / denied / malformed / unreachable and logs only changes (kind or message), so an
 * outage of an hour logs two lines. Drop-in for lib/state-change.ts's Reachability (ok, failed, up).
 */
export class ConsulTrust {
  #state: TrustState = { kind: "unknown", message: null, since: new Date().toISOString() };
  readonly #log: Logger;
  readonly #onChange: ((state: TrustState) => void) | undefined;
  readonly #onProblem: ((kind: AnswerProblem) => void) | undefined;

  constructor(
    log: Logger,
    hooks: { onChange?: (state: TrustState) => void; onProblem?: (kind: AnswerProblem) => void } = {},
  ) {
    this.#log = log;
    this.#onChange = hooks.onChange;
    this.#onProblem = hooks.onProblem;
  }

  get state(): TrustState {
    return this.#state;
  }

  /** Consul answered well-formed data: reachable, readable. */
  get up(): boolean {
    return this.#state.kind === "ok";
  }

  /** Has Consul ever answered with data that could be used? */
  get everOk(): boolean {
    return this.#everOk;
  }
  #everOk = false;
  /** Reasons already logged while the current problem kind lasts. */
  #reasons = new Set<string>();

  ok(): void {
    this.#everOk = true;
    if (this.#state.kind === "ok") return;
    const was = this.#state;
    this.#set({ kind: "ok", message: null, since: new Date().toISOString() });
    this.#log.info(
      "consul reachable",
      was.kind === "unknown" ? undefined : { after: was.kind, downMs: Date.now() - Date.parse(was.since) },
    );
  }

  failed(err: unknown, retryInMs?: number): void {
    const p = problemOf(err);
    this.#onProblem?.(p.kind);
    if (this.#state.kind === p.kind) {
      // One line per kind while unreachable (the errno may vary); otherwise one per reason while
      // the kind lasts, so two reads failing for two reasons do not alternate lines forever.
      const seen = this.#reasons.has(p.message);
      this.#reasons.add(p.message);
      this.#state = { ...this.#state, message: p.message };
      if (p.kind === "unreachable" || seen) return;
    } else {
      this.#reasons = new Set([p.message]);
      this.#set({ kind: p.kind, message: p.message, since: new Date().toISOString() });
    }
    const fields = { problem: p.kind, reason: p.message, retryInMs };
    if (p.kind === "unreachable") this.#log.warn(problemLines[p.kind], fields);
    else this.#log.error(problemLines[p.kind], fields);
  }

  #set(s: TrustState): void {
    this.#state = s;
    this.#onChange?.(s);
  }
}
