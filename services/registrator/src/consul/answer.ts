// Is an answer from Consul one the registrator can act on? Four outcomes:
//   ok          Consul answered and the answer reads as Consul's (the caller still looks at
//               the status: 400 and 404 mean something to it)
//   denied      401/403: the token may not do this; Consul's words are kept for the log
//   malformed   a 2xx that is not Consul's answer (an HTML page, truncated or wrong-shaped JSON):
//               a write it "confirms" is not confirmed
//   unreachable no answer, a 5xx or a 429
// The kinds and the error class are lib/consul-answer.ts's, shared with the templater; this
// module is the registrator's input adapter: bodies the `consul` client already decoded.

import { ConsulAnswerError, statusKind, type AnswerKind } from "../../../../lib/consul-answer.ts";
import { stripControlChars } from "../core/validate.ts";

/** What a request expects in a 2xx body. */
export type Expect = "empty" | "object" | "object-or-null";

export interface RawAnswer {
  status: number;
  contentType: string;
  /** Decoded JSON when Consul said application/json; a Buffer or string otherwise; undefined when empty. */
  body: unknown;
}

export interface Classified {
  kind: AnswerKind;
  /** For every kind but ok: one line saying what was wrong. */
  message?: string;
}

function text(body: unknown, max = 200): string {
  if (body === undefined || body === null) return "";
  const s = Buffer.isBuffer(body)
    ? body.toString("utf8")
    : typeof body === "string"
      ? body
      : JSON.stringify(body);
  return stripControlChars(s).trim().slice(0, max);
}

function isEmpty(body: unknown): boolean {
  return body === undefined || (Buffer.isBuffer(body) && body.length === 0) || body === "";
}

/** lib/consul-answer.ts's status rule, then the body as the `consul` client decoded it. */
export function classifyAnswer(a: RawAnswer, expect: Expect): Classified {
  switch (statusKind(a.status)) {
    case "denied":
      return { kind: "denied", message: `permission denied: ${text(a.body) || `HTTP ${a.status}`}` };
    case "unreachable":
      return { kind: "unreachable", message: `HTTP ${a.status}` };
    case "other":
      return { kind: "ok" }; // 400, 404: an answer the caller reads
    case "success": // the body decides, below
  }
  const json = /^application\/json$/i.test(a.contentType.split(";")[0]!.trim());
  const what = `a ${a.status} answer that is not Consul's`;
  if (!isEmpty(a.body) && !json) {
    return {
      kind: "malformed",
      message: `${what} (${a.contentType || "no content type"}: "${text(a.body, 60)}")`,
    };
  }
  // Undecoded bytes under a JSON content type: the client could not parse them.
  if (json && (Buffer.isBuffer(a.body) || typeof a.body === "string") && !isEmpty(a.body)) {
    return { kind: "malformed", message: `${what} (JSON that does not parse)` };
  }
  if (expect === "empty" || (expect === "object-or-null" && a.body === null)) return { kind: "ok" };
  if (typeof a.body === "object" && a.body !== null && !Array.isArray(a.body) && !Buffer.isBuffer(a.body)) {
    return { kind: "ok" };
  }
  const got = isEmpty(a.body) ? "an empty body" : Array.isArray(a.body) ? "an array" : typeof a.body;
  return { kind: "malformed", message: `${what} (expected a JSON object, got ${got})` };
}

/** What each request of the registrator expects, by the `consul` client's request name. */
export const expectations: Record<string, Expect> = {
  "agent.service.list": "object",
  "agent.check.list": "object",
  "agent.self": "object",
  "catalog.node.services": "object-or-null",
  "agent.service.register": "empty",
  "agent.service.deregister": "empty",
  "agent.check.pass": "empty",
  "agent.check.fail": "empty",
  "agent.check.deregister": "empty",
};

interface PapiRequest {
  opts?: { name?: string };
  err?: Error;
  res?: { statusCode?: number; headers?: Record<string, string | string[] | undefined>; body?: unknown };
}
type Ext = (request: PapiRequest, next: () => void) => void;

/**
 * Checks every answer the client receives before its caller sees it: a 2xx that is
 * not Consul's becomes a "malformed" error, a 401/403 a "denied" one. The `consul`
 * client is papi-based; `_ext("onResponse")` is papi's documented extension point.
 */
export function checkAnswers(consul: object): void {
  const client = consul as { _ext?: (event: string, fn: Ext) => void; __dockside_checked?: boolean };
  if (!client._ext || client.__dockside_checked) return;
  client.__dockside_checked = true;
  client._ext("onResponse", (request, next) => {
    const res = request.res;
    const name = request.opts?.name ?? "";
    if (!res || res.statusCode === undefined) return next();
    const contentType = String(res.headers?.["content-type"] ?? "");
    const c = classifyAnswer(
      {
        status: res.statusCode,
        contentType,
        body: request.err && res.statusCode < 300 ? undefined : res.body,
      },
      expectations[name] ?? "empty",
    );
    if (c.kind === "denied") {
      request.err = new ConsulAnswerError("denied", c.message!, { status: res.statusCode, request: name });
    } else if (c.kind === "malformed") {
      const message = `${name}: ${c.message}`;
      request.err = new ConsulAnswerError("malformed", message, { status: res.statusCode, request: name });
    } else if (request.err && res.statusCode >= 200 && res.statusCode < 300) {
      // The client failed to decode a 2xx body (truncated JSON): that is not a confirmation.
      const message = `${name}: a ${res.statusCode} answer that is not Consul's (${request.err.message})`;
      request.err = new ConsulAnswerError("malformed", message, { status: res.statusCode, request: name });
    }
    next();
  });
}

/** The refusal in `err` (or its cause), if it is one. */
export function deniedIn(err: unknown): ConsulAnswerError | undefined {
  for (let e = err; e instanceof Error; e = e.cause) {
    if (e instanceof ConsulAnswerError && e.kind === "denied") return e;
  }
  return undefined;
}
