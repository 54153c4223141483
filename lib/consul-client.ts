// Consul client construction from the standard CONSUL_* variables, shared by every service.

import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import Consul from "consul";
import { parsers, type Setting } from "./config.ts";

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
  return new https.Agent({
    keepAlive: true,
    maxSockets,
    ca: read(c.consulCaCert),
    cert: read(c.consulClientCert),
    key: read(c.consulClientKey),
    rejectUnauthorized: c.consulSslVerify,
    servername: c.consulTlsServerName || undefined,
  });
}

export function createConsul(
  c: ConsulConnection,
  options: ConsulAgentOptions = {},
): { consul: Consul; endpoint: ConsulEndpoint } {
  const endpoint = parseConsulAddr(c.consulAddr, c.consulSsl);
  const consul = new Consul({
    host: endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host,
    port: endpoint.port,
    secure: endpoint.secure,
    agent: consulAgent(c, endpoint.secure, options),
    defaults: c.consulToken ? { token: c.consulToken } : undefined,
  });
  return { consul, endpoint };
}
