// Consul client construction from the standard CONSUL_* variables, shared by every service.

import { readFileSync } from "node:fs";
import http from "node:http";
import { ConfigError, parsers, type Setting } from "./config.ts";
import type { RawAnswer } from "./consul-answer.ts";

export const consulSettings = {
  consulAddr: {
    flag: "consul-addr",
    env: "CONSUL_HTTP_ADDR",
    default: "127.0.0.1:8500",
    help: "Consul HTTP API address: host:port or http(s)://host:port",
    parse: (raw: string) => {
      parseConsulAddr(raw);
      return raw;
    },
  } satisfies Setting<string>,
  consulToken: {
    flag: "consul-token",
    env: "CONSUL_HTTP_TOKEN",
    default: "",
    help: "ACL token sent with every Consul request",
    parse: parsers.string({ allowEmpty: true }),
  } satisfies Setting<string>,
  consulSsl: {
    flag: "consul-ssl",
    env: "CONSUL_HTTP_SSL",
    default: false,
    help: "use https when the address has no scheme",
    parse: parsers.bool(),
  } satisfies Setting<boolean>,
  consulSslVerify: {
    flag: "consul-ssl-verify",
    env: "CONSUL_HTTP_SSL_VERIFY",
    default: true,
    help: "verify the Consul server certificate",
    parse: parsers.bool(),
  } satisfies Setting<boolean>,
  consulCaCert: {
    flag: "consul-cacert",
    env: "CONSUL_CACERT",
    default: "",
    help: "PEM file of the CA that signed Consul's certificate",
    parse: parsers.string({ allowEmpty: true }),
  } satisfies Setting<string>,
  consulClientCert: {
    flag: "consul-client-cert",
    env: "CONSUL_CLIENT_CERT",
    default: "",
    help: "PEM client certificate for mutual TLS",
    parse: parsers.string({ allowEmpty: true }),
  } satisfies Setting<string>,
  consulClientKey: {
    flag: "consul-client-key",
    env: "CONSUL_CLIENT_KEY",
    default: "",
    help: "PEM client key for mutual TLS",
    parse: parsers.string({ allowEmpty: true }),
  } satisfies Setting<string>,
  consulTlsServerName: {
    flag: "consul-tls-server-name",
    env: "CONSUL_TLS_SERVER_NAME",
    default: "",
    help: "server name to verify in Consul's certificate (SNI)",
    parse: parsers.string({ allowEmpty: true }),
  } satisfies Setting<string>,
};

export interface ConsulConnection {
  consulAddr: string;
  consulToken: string;
  consulSsl: boolean;
  consulSslVerify: boolean;
  consulCaCert: string;
  consulClientCert: string;
  consulClientKey: string;
  consulTlsServerName: string;
}

export interface ConsulEndpoint {
  secure: boolean;
  host: string;
  port: number;
  /** e.g. http://consul:8500, for logs and raw requests. */
  url: string;
}

/** Parses CONSUL_HTTP_ADDR the way the consul CLI does. Throws with a message naming the value. */
export function parseConsulAddr(addr: string, ssl = false): ConsulEndpoint {
  const withScheme = /^[a-z]+:\/\//i.test(addr) ? addr : `${ssl ? "https" : "http"}://${addr}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new Error(`"${addr}" is not a Consul address; expected host:port or http(s)://host:port`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new Error(`"${addr}": scheme must be http or https`);
  }
  const secure = u.protocol === "https:";
  const port = u.port ? Number(u.port) : secure ? 443 : 8500;
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  return { secure, host, port, url: `${u.protocol}//${u.host}` };
}

/** Names a setting as users set it: the variable and the flag. */
const named = (key: keyof typeof consulSettings) =>
  `${consulSettings[key].env} (--${consulSettings[key].flag})`;

function readPem(
  key: "consulCaCert" | "consulClientCert" | "consulClientKey",
  file: string,
  what: "certificate" | "private key",
): Buffer {
  let text: Buffer;
  try {
    text = readFileSync(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === "ENOENT" ? "no such file" : e.code === "EACCES" ? "permission denied" : e.message;
    throw new ConfigError(`${named(key)}: cannot read ${file}: ${why}`, consulSettings[key].flag);
  }
  const marker =
    what === "certificate" ? /-----BEGIN CERTIFICATE-----/ : /-----BEGIN [A-Z ]*PRIVATE KEY-----/;
  if (!marker.test(text.toString("latin1"))) {
    throw new ConfigError(`${named(key)}: ${file} holds no PEM ${what}`, consulSettings[key].flag);
  }
  return text;
}

/**
 * Checks the connection settings before anything connects, so a bad one stops the service at
 * start-up (exit 2 through loadSettingsOrExit) with the setting's name and no stack trace:
 * unreadable CA/cert/key files, a cert without its key or the reverse, a key that does not
 * match its cert, TLS files with an address that would use http. Returns warnings to log
 * (verification turned off).
 */
export function checkConsulConnection(c: ConsulConnection): string[] {
  let endpoint: ConsulEndpoint;
  try {
    endpoint = parseConsulAddr(c.consulAddr, c.consulSsl);
  } catch (err) {
    throw new ConfigError(
      `${named("consulAddr")}: ${(err as Error).message}`,
      consulSettings.consulAddr.flag,
    );
  }
  if (c.consulClientCert && !c.consulClientKey) {
    throw new ConfigError(
      `${named("consulClientCert")} is set but ${named("consulClientKey")} is not: a client certificate needs its key`,
      consulSettings.consulClientKey.flag,
    );
  }
  if (c.consulClientKey && !c.consulClientCert) {
    throw new ConfigError(
      `${named("consulClientKey")} is set but ${named("consulClientCert")} is not: a client key needs its certificate`,
      consulSettings.consulClientCert.flag,
    );
  }
  const tlsSetting = (["consulCaCert", "consulClientCert"] as const).find((k) => c[k]);
  if (tlsSetting && !endpoint.secure) {
    throw new ConfigError(
      `${named(tlsSetting)} is set but ${named("consulAddr")}=${c.consulAddr} would use plain http: give an https:// address or set ${named("consulSsl")}=true`,
      consulSettings.consulAddr.flag,
    );
  }
  const ca = c.consulCaCert ? readPem("consulCaCert", c.consulCaCert, "certificate") : undefined;
  const cert = c.consulClientCert
    ? readPem("consulClientCert", c.consulClientCert, "certificate")
    : undefined;
  const key = c.consulClientKey ? readPem("consulClientKey", c.consulClientKey, "private key") : undefined;
  try {
    if (ca || cert || key) tlsModule().createSecureContext({ ca, cert, key });
  } catch (err) {
    const culprit = cert ? "consulClientKey" : "consulCaCert";
    throw new ConfigError(
      `${named(culprit)}: the TLS files cannot be used together: ${(err as Error).message}`,
      consulSettings[culprit].flag,
    );
  }
  const warnings: string[] = [];
  if (endpoint.secure && !c.consulSslVerify) {
    warnings.push(
      `${named("consulSslVerify")}=false: Consul's certificate is not verified; anyone on the path can impersonate Consul`,
    );
  }
  return warnings;
}

/**
 * node:tls and node:https are loaded only when Consul is reached over TLS: loading tls costs
 * ~4.7 MiB of RSS (measured with Node 24.21 and the edge's flags), which a plain-http
 * connection never needs.
 */
const tlsModule = () => process.getBuiltinModule("node:tls");
const httpsModule = () => process.getBuiltinModule("node:https");

export interface ConsulAgentOptions {
  /** Most connections held to Consul at once (further requests queue); default: no limit. */
  maxSockets?: number;
}

export function consulAgent(
  c: ConsulConnection,
  secure: boolean,
  options: ConsulAgentOptions = {},
): http.Agent {
  const maxSockets = options.maxSockets ?? Infinity;
  if (!secure) return new http.Agent({ keepAlive: true, maxSockets });
  const read = (file: string) => (file ? readFileSync(file) : undefined);
  return new (httpsModule().Agent)({
    keepAlive: true,
    maxSockets,
    ca: read(c.consulCaCert),
    cert: read(c.consulClientCert),
    key: read(c.consulClientKey),
    rejectUnauthorized: c.consulSslVerify,
    servername: c.consulTlsServerName || undefined,
  });
}

/** Default for consulRequest's idleTimeoutMs: a body that sends nothing this long is a failure. */
export const bodyIdleTimeoutMs = 2_000;
/** Largest body read from Consul; more is a malformed answer, not a memory problem. */
const maxBodyBytes = 64 * 1024 * 1024;

export interface ConsulRequest {
  method?: string;
  /** e.g. /v1/catalog/services */
  path: string;
  query?: Record<string, string>;
  /** JSON-encoded when given. */
  body?: unknown;
  signal?: AbortSignal;
  /** Until the response headers arrive (a blocking read: its wait plus margin). */
  headersTimeoutMs: number;
  /** Longest silence inside the body once headers arrived; default bodyIdleTimeoutMs. */
  idleTimeoutMs?: number;
}

/** One HTTP client for Consul, for consulRequest: endpoint, agent (TLS, keep-alive) and token. */
export interface ConsulHttp {
  endpoint: ConsulEndpoint;
  agent: http.Agent;
  token: string;
  destroy(): void;
}

export function createConsulHttp(c: ConsulConnection, options: ConsulAgentOptions = {}): ConsulHttp {
  const endpoint = parseConsulAddr(c.consulAddr, c.consulSsl);
  const agent = consulAgent(c, endpoint.secure, options);
  return { endpoint, agent, token: c.consulToken, destroy: () => agent.destroy() };
}

/**
 * One request to Consul, read to the end. Rejects (never with the token in the message) when the
 * connection fails, the headers do not arrive within headersTimeoutMs, the body stalls for
 * idleTimeoutMs, or `signal` aborts; any HTTP status resolves: classify it with classifyAnswer.
 */
export function consulRequest(client: ConsulHttp, r: ConsulRequest): Promise<RawAnswer> {
  const { endpoint } = client;
  const url = new URL(r.path, endpoint.url);
  for (const [k, v] of Object.entries(r.query ?? {})) url.searchParams.set(k, v);
  const payload = r.body === undefined ? undefined : JSON.stringify(r.body);
  const idleMs = r.idleTimeoutMs ?? bodyIdleTimeoutMs;
  const what = `${r.method ?? "GET"} ${url.pathname}`;
  return new Promise<RawAnswer>((resolve, reject) => {
    r.signal?.throwIfAborted();
    const lib = endpoint.secure ? httpsModule() : http;
    let timer: NodeJS.Timeout | undefined;
    const arm = (ms: number, message: string) => {
      clearTimeout(timer);
      timer = setTimeout(() => req.destroy(new Error(`${what}: ${message}`)), ms);
    };
    const done = () => {
      clearTimeout(timer);
      r.signal?.removeEventListener("abort", onAbort);
    };
    const onAbort = () => req.destroy(new Error(`${what}: cancelled`, { cause: r.signal?.reason }));
    const req = lib.request(
      url,
      {
        method: r.method ?? "GET",
        agent: client.agent,
        headers: {
          ...(client.token ? { "X-Consul-Token": client.token } : {}),
          ...(payload !== undefined ? { "Content-Type": "application/json" } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        arm(idleMs, `response body stalled: nothing for ${idleMs} ms`);
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBodyBytes)
            return req.destroy(new Error(`${what}: body larger than ${maxBodyBytes} bytes`));
          chunks.push(chunk);
          arm(idleMs, `response body stalled: nothing for ${idleMs} ms`);
        });
        res.on("error", (err) => {
          done();
          reject(err);
        });
        res.on("aborted", () => {
          done();
          reject(new Error(`${what}: connection closed mid-body`));
        });
        res.on("end", () => {
          done();
          if (!res.complete) return reject(new Error(`${what}: connection closed mid-body`));
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
          });
        });
      },
    );
    arm(r.headersTimeoutMs, `no answer within ${r.headersTimeoutMs} ms`);
    r.signal?.addEventListener("abort", onAbort, { once: true });
    req.on("error", (err) => {
      done();
      reject(err.message.startsWith(what) ? err : new Error(`${what}: ${err.message}`, { cause: err }));
    });
    req.end(payload);
  });
}
