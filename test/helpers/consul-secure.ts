// A real Consul 1.8 agent with ACLs (`default_policy = "deny"`) and, optionally, HTTPS, for tests
// of least privilege. Certificates are generated inside the container at start with Consul's own
// `consul tls ca create` / `consul tls cert create -server` (never committed); the CA comes back
// to the test as PEM. Policies and tokens are made through the ACL API with the management
// token, so a test can give each service exactly the rules it documents, and change them while
// the services run. The agent token is the management token, so its anti-entropy sync works
// whatever the tests' tokens may do; `client` holds the management token too.

import http from "node:http";
import Consul from "consul";
import { GenericContainer, Wait, type StartedTestContainer } from "testcontainers";
import { removeContainer, requireDocker, testLabel, type TestNetwork } from "./docker.ts";
import { images } from "./images.ts";
import { devAgentArgs } from "./consul.ts";
import type { Scope } from "./scope.ts";
import { waitFor } from "./wait.ts";

export interface SecureConsul {
  container: StartedTestContainer;
  /** http://host:port from the host (the HTTP port stays open for the test's own calls). */
  url: string;
  host: string;
  port: number;
  /** A client with the management token. */
  client: Consul;
  /** The management ("master") token. */
  managementToken: string;
  /** alias:8500 on the test network. */
  internalAddr: string;
  /** https://alias:8501 on the test network, when started with tls. */
  internalHttpsAddr?: string;
  /** PEM of the CA that signed the agent's certificate, when started with tls. */
  caPem?: string;
  /** A name in the agent's certificate, for CONSUL_TLS_SERVER_NAME. */
  serverName?: string;
  /** One Consul API call with the management token (or `token`); resolves with status and JSON body. */
  api(
    method: string,
    path: string,
    body?: unknown,
    token?: string,
  ): Promise<{ status: number; body: unknown }>;
  /** Creates a policy and a token holding only it; returns the token's secret and the policy's ID. */
  tokenWith(name: string, rules: string): Promise<{ secret: string; accessor: string; policyId: string }>;
  /** Replaces a policy's rules (takes effect for every token holding it at once). */
  setRules(policyId: string, name: string, rules: string): Promise<void>;
}

/** The minimal policies the services' READMEs document. */
export const policies = {
  templater: 'service_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }\n',
  registrator: 'service_prefix "" { policy = "write" }\n',
};

/** The ACL API calls tests need, against any agent (a dev agent, or a server of a cluster). */
export interface ConsulAcl {
  api: SecureConsul["api"];
  tokenWith: SecureConsul["tokenWith"];
  setRules: SecureConsul["setRules"];
}

/** ACL stanza for an agent's configuration (-hcl), with `token` as management and agent token. */
export function aclHcl(token: string): string {
  return `acl { enabled = true default_policy = "deny" down_policy = "extend-cache" tokens { master = "${token}" agent = "${token}" } }`;
}

/**
 * Shell commands that make a CA and a server certificate in `dir` with Consul's own tool (run
 * inside a Consul container), and the HCL that serves HTTPS on 8501 with them.
 */
export function tlsSetup(
  dir = "/tmp/tls",
  dc = "dc1",
): { script: string; hcl: string[]; serverName: string } {
  return {
    script: `mkdir -p ${dir} && cd ${dir} && consul tls ca create >/dev/null && consul tls cert create -server -dc ${dc} >/dev/null`,
    hcl: [
      "ports { https = 8501 }",
      `ca_file = "${dir}/consul-agent-ca.pem"`,
      `cert_file = "${dir}/${dc}-server-consul-0.pem"`,
      `key_file = "${dir}/${dc}-server-consul-0-key.pem"`,
      "verify_incoming_https = false",
    ],
    serverName: `server.${dc}.consul`,
  };
}

export function consulAcl(url: string, managementToken: string): ConsulAcl {
  const api: SecureConsul["api"] = (method, path, body, token = managementToken) =>
    new Promise((resolve, reject) => {
      const req = http.request(
        `${url}${path}`,
        { method, agent: false, timeout: 10_000, headers: { "X-Consul-Token": token } },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (text += c));
          res.on("end", () => {
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              // not JSON: keep the text (Consul's error messages are plain)
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timeout`)));
      req.on("error", reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  const must = async (method: string, path: string, body?: unknown) => {
    const r = await api(method, path, body);
    if (r.status !== 200) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as Record<string, unknown>;
  };

  return {
    api,
    async tokenWith(name, rules) {
      const policy = await must("PUT", "/v1/acl/policy", { Name: name, Rules: rules });
      const token = await must("PUT", "/v1/acl/token", {
        Description: name,
        Policies: [{ ID: policy.ID }],
      });
      return {
        secret: String(token.SecretID),
        accessor: String(token.AccessorID),
        policyId: String(policy.ID),
      };
    },
    async setRules(policyId, name, rules) {
      await must("PUT", `/v1/acl/policy/${policyId}`, { Name: name, Rules: rules });
    },
  };
}

export async function startSecureConsul(
  scope: Scope,
  opts: { network: TestNetwork; alias?: string; tls?: boolean },
): Promise<SecureConsul> {
  await requireDocker();
  const managementToken = "00000000-0000-4000-8000-0000000000aa";
  const alias = opts.alias ?? "consul";
  const tls = tlsSetup();
  const hcl = [aclHcl(managementToken), ...(opts.tls ? tls.hcl : [])];
  const agent = ["consul", ...devAgentArgs, ...hcl.flatMap((h) => ["-hcl", h])];
  const quoted = agent.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
  const script = opts.tls ? `${tls.script} && exec ${quoted}` : `exec ${quoted}`;
  const container = await new GenericContainer(images().consul)
    .withEntrypoint(["sh", "-c"])
    .withCommand([script])
    .withExposedPorts(8500)
    .withLabels({ [testLabel]: "1" })
    .withNetworkMode(opts.network.name)
    .withNetworkAliases(alias)
    .withWaitStrategy(
      Wait.forHttp("/v1/status/leader", 8500).forResponsePredicate((body) => /"\S+:\d+"/.test(body)),
    )
    .withStartupTimeout(60_000)
    .start();
  scope.defer("secure consul container", () => removeContainer(container.getId()));
  const host = container.getHost();
  const port = container.getMappedPort(8500);
  const url = `http://${host}:${port}`;
  const client = new Consul({ host, port, defaults: { token: managementToken } });
  scope.defer("secure consul client", () => client.destroy());

  const acl = consulAcl(url, managementToken);
  // The ACL system bootstraps a moment after the leader is elected.
  await waitFor(async () => (await acl.api("GET", "/v1/acl/token/self")).status === 200, {
    what: "the ACL system to come up",
    timeoutMs: 15_000,
    intervalMs: 100,
  });
  let caPem: string | undefined;
  if (opts.tls) {
    const out = await container.exec(["cat", "/tmp/tls/consul-agent-ca.pem"]);
    if (out.exitCode !== 0) throw new Error(`reading the CA: ${out.output}`);
    caPem = out.output;
  }

  return {
    container,
    url,
    host,
    port,
    client,
    managementToken,
    internalAddr: `${alias}:8500`,
    internalHttpsAddr: opts.tls ? `https://${alias}:8501` : undefined,
    caPem,
    serverName: opts.tls ? tls.serverName : undefined,
    ...acl,
  };
}
