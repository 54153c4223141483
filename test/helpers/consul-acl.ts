// A real Consul agent (dev mode) with ACLs on and `default_policy = "deny"`, and tokens
// made for a test: a policy from rules, a token for it. The agent's own token is the
// master token, so its anti-entropy sync works whatever the tests' tokens may do.

import { randomUUID } from "node:crypto";
import Consul from "consul";
import { GenericContainer, Wait } from "testcontainers";
import { requireDocker, testLabel, type TestNetwork } from "./docker.ts";
import { images } from "./images.ts";
import type { Scope } from "./scope.ts";

export interface AclConsul {
  host: string;
  port: number;
  url: string;
  masterToken: string;
  /** A client with the master token. */
  client: Consul;
  /** A token for a new policy with these rules (HCL). */
  token(name: string, rules: string): Promise<string>;
}

export async function startAclConsul(scope: Scope, opts: { network?: TestNetwork } = {}): Promise<AclConsul> {
  await requireDocker();
  const masterToken = randomUUID();
  const acl = `acl { enabled = true, default_policy = "deny", down_policy = "extend-cache", tokens { master = "${masterToken}", agent = "${masterToken}" } }`;
  let builder = new GenericContainer(images().consul)
    .withCommand(["agent", "-dev", "-client", "0.0.0.0", "-log-level", "warn", "-hcl", acl])
    .withExposedPorts(8500)
    .withLabels({ [testLabel]: "1" })
    .withWaitStrategy(
      Wait.forHttp("/v1/status/leader", 8500).forResponsePredicate((b) => /"\S+:\d+"/.test(b)),
    )
    .withStartupTimeout(30_000);
  if (opts.network) builder = builder.withNetworkMode(opts.network.name);
  const container = await builder.start();
  scope.defer("acl consul container", () =>
    container.stop({ timeout: 1, remove: true, removeVolumes: true }),
  );
  const host = container.getHost();
  const port = container.getMappedPort(8500);
  const url = `http://${host}:${port}`;
  const client = new Consul({ host, port, defaults: { token: masterToken } });
  scope.defer("acl consul client", () => client.destroy());
  const put = async (path: string, body: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method: "PUT",
      headers: { "x-consul-token": masterToken },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`PUT ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as Record<string, unknown>;
  };
  // The ACL system bootstraps a moment after the leader is elected.
  for (let i = 0; ; i++) {
    const res = await fetch(`${url}/v1/acl/token/self`, { headers: { "x-consul-token": masterToken } });
    await res.body?.cancel();
    if (res.ok) break;
    if (i > 100) throw new Error(`the ACL system did not come up: ${res.status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host,
    port,
    url,
    masterToken,
    client,
    token: async (name, rules) => {
      const policy = await put("/v1/acl/policy", {
        Name: `${name}-${randomUUID().slice(0, 8)}`,
        Rules: rules,
      });
      const token = await put("/v1/acl/token", { Description: name, Policies: [{ ID: policy.ID }] });
      return token.SecretID as string;
    },
  };
}
