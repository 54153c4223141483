// What a value from Consul may look like when it reaches an nginx config, and in which form.
// Everything here is pure: a value is either accepted (possibly in a quoted form) or refused
// with a reason. Nothing from Consul reaches a template without passing one of these.

import net from "node:net";

export type Verdict<T> = { ok: true; value: T } | { ok: false; reason: string };

export const limits = {
  /** One DNS label is 63; a name is used as `<name>.<domain>` and as a path segment. */
  name: 63,
  id: 255,
  tag: 255,
  metaKey: 128,
  /** Consul's own limit for a meta value. */
  metaValue: 512,
};

const ok = <T>(value: T): Verdict<T> => ({ ok: true, value });
const no = <T>(reason: string): Verdict<T> => ({ ok: false, reason });

/** A label: letters and digits, with `-` or `_` inside, never at either end. */
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?$/;

/**
 * Printable ASCII that nginx's parser reads as part of one bare word, whatever the directive:
 * no whitespace, no `;` `{` `}` (end a directive, open or close a block), no `#` (comment),
 * no quotes or `\` (change how the word is read), no `$` (variable interpolation), no
 * parentheses (`if (...)`) and no backtick.
 */
const TOKEN = /^[!%&*+,\-./0-9:<=>?@A-Z[\]^_a-z|~]+$/;

/** Control characters (newlines included) and `$` cannot be made safe even inside quotes. */
// eslint-disable-next-line no-control-regex
const UNQUOTABLE = /[\u0000-\u001f\u007f-\u009f$]/;

/** For log lines: a bounded, printable rendering of any value. */
export function describeValue(raw: unknown): string {
  const text = typeof raw === "string" ? raw : (JSON.stringify(raw) ?? String(raw));
  const shown = JSON.stringify(text.length > 60 ? text.slice(0, 60) : text);
  return text.length > 60 ? `${shown}… (${text.length} chars)` : shown;
}

/** A service name: dot-separated labels, usable as upstream name, path segment and host label. */
export function serviceName(raw: unknown): Verdict<string> {
  if (typeof raw !== "string" || raw === "") return no("name is empty or not a string");
  if (raw.length > limits.name) return no(`name is longer than ${limits.name} characters`);
  if (!raw.split(".").every((label) => LABEL.test(label))) {
    return no("name may hold only letters, digits, '-', '_' and '.' (between labels)");
  }
  return ok(raw);
}

/** A bare nginx word (no quoting needed anywhere), or refused. */
export function token(raw: unknown, max: number, what = "value"): Verdict<string> {
  if (typeof raw !== "string" || raw === "") return no(`${what} is empty or not a string`);
  if (raw.length > max) return no(`${what} is longer than ${max} characters`);
  if (!TOKEN.test(raw)) return no(`${what} holds characters that are not safe in an nginx word`);
  return ok(raw);
}

/** Whether `raw` can be written as an nginx double-quoted string. */
export function quotable(raw: string): boolean {
  return !UNQUOTABLE.test(raw) && raw.isWellFormed();
}

/** Whether `raw` has the form of one nginx double-quoted string (as the view quotes tags and meta). */
export function isQuoted(raw: string): boolean {
  return /^"(?:[^"\\]|\\.)*"$/.test(raw);
}

/** `raw` as an nginx double-quoted string: `"` and `\` escaped. Throws for what cannot be quoted. */
export function quote(raw: string): string {
  if (!quotable(raw)) throw new Error(`${describeValue(raw)} holds a control character or '$'`);
  return `"${raw.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * A tag or meta value as something a template can print as it is: a bare word when it is one,
 * otherwise a double-quoted string (which nginx reads as one argument), otherwise refused.
 */
export function literal(raw: unknown, max: number, what = "value"): Verdict<string> {
  if (typeof raw !== "string") return no(`${what} is not a string`);
  if (raw.length > max) return no(`${what} is longer than ${max} characters`);
  if (raw !== "" && TOKEN.test(raw)) return ok(raw);
  if (!quotable(raw)) return no(`${what} holds a control character (e.g. a newline) or '$'`);
  return ok(quote(raw));
}

/** Meta keys as Consul itself allows them; `__proto__` and friends are refused. */
export function metaKey(raw: string): Verdict<string> {
  if (raw.length > limits.metaKey) return no(`meta key is longer than ${limits.metaKey} characters`);
  if (!/^[A-Za-z0-9_-]+$/.test(raw)) return no("meta key may hold only letters, digits, '-' and '_'");
  if (raw === "__proto__" || raw === "constructor" || raw === "prototype") return no("reserved meta key");
  return ok(raw);
}

export interface IpAddress {
  /** Canonical text: dotted quad, or compressed lower-case IPv6 without brackets. */
  address: string;
  family: 4 | 6;
}

/** An IP address, checked by Node's (inet_pton) parser; hostnames and zone ids are refused. */
export function ipAddress(raw: unknown): Verdict<IpAddress> {
  if (typeof raw !== "string" || raw === "") return no("address is empty");
  if (raw.length > 45) return no("address is too long to be an IP address");
  if (raw.includes("%")) return no("IPv6 zone ids are not supported");
  const family = net.isIP(raw);
  if (family === 4) {
    if (raw === "0.0.0.0") return no("address 0.0.0.0 is not reachable");
    return ok({ address: raw, family: 4 });
  }
  if (family === 6) {
    const address = new URL(`http://[${raw}]/`).hostname.slice(1, -1);
    if (address === "::") return no("address :: is not reachable");
    return ok({ address, family: 6 });
  }
  return no("address is not an IP address (hostnames are not routed: nginx would resolve them only at load)");
}

export function port(raw: unknown): Verdict<number> {
  if (typeof raw !== "number" || !Number.isInteger(raw)) return no("port is not a whole number");
  if (raw < 1 || raw > 65535) return no("port is outside 1–65535");
  return ok(raw);
}

export { hostPort } from "../../../../lib/host-port.ts";
