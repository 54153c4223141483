// A Consul connection as the services build it from their CONSUL_* settings, for tests that
// call lib/consul-client.ts directly (no Docker here: unit tests import it too).

import { consulSettings, type ConsulConnection } from "../../lib/consul-client.ts";

/** The CONSUL_* settings as a service reads them when none is set, with `over` on top. */
export function consulConnection(over: Partial<ConsulConnection> = {}): ConsulConnection {
  const defaults = Object.fromEntries(Object.entries(consulSettings).map(([k, s]) => [k, s.default]));
  return { ...(defaults as unknown as ConsulConnection), ...over };
}
