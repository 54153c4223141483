// The `consul` library's client (what the registrator writes with), built from the standard
// CONSUL_* settings. Apart from lib/consul-client.ts, which the templater also bundles: the
// library's HTTP layer (papi) requires node:https at its top, and with it node:tls (~3.4 MiB of
// RSS at start; bench/README.md, "Templater RSS: what Node loads at start"), and the templater
// reads Consul through consulRequest instead.

import Consul from "consul";
import {
  consulAgent,
  parseConsulAddr,
  type ConsulAgentOptions,
  type ConsulConnection,
  type ConsulEndpoint,
} from "./consul-client.ts";

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
