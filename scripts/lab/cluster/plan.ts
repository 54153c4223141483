// The cluster lab as data: names, addresses, Consul agent configurations and ACL policies.
// Pure (no I/O): cluster.ts turns this plan into containers.
//
//   3 Consul servers ─ raft ─┐
//   3 Docker hosts, each:    ├─ one shared bridge network, a fixed IP per member
//     dockerd (Docker-in-Docker), a Consul client agent, a registrator, demo instances
//   1 edge: a Consul client agent + the edge (templater + nginx) in the agent's network namespace

import { createHash } from "node:crypto";

export interface ClusterOptions {
  /** Prefix of every container, volume and network name; default "dockside-cluster-lab". */
  prefix?: string;
  /** /24 of the shared network, as "a.b.c"; default "10.213.1". */
  subnet?: string;
  servers?: number;
  hosts?: number;
}

export interface Member {
  /** Container name on the outer engine. */
  container: string;
  /** Consul node name (also the container's hostname). */
  node: string;
  /**
   * Fixed Consul node ID: an agent restarted with an empty data dir keeps its identity, so the
   * servers accept it back at once instead of refusing a second ID for the same node name.
   */
  nodeId: string;
  ip: string;
}

/** A UUID-shaped ID derived from the lab and the node name (stable across bring-ups). */
export function nodeIdFor(prefix: string, node: string): string {
  const h = createHash("sha256").update(`${prefix}/${node}`).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export interface ClusterPlan {
  prefix: string;
  network: string;
  subnet: string;
  servers: Member[];
  hosts: (Member & { volume: string })[];
  edgeAgent: Member;
  edge: string;
  /** Label on everything the lab starts, outer and inner, so `down` finds it all. */
  label: string;
  datacenter: string;
}

export function clusterPlan(opts: ClusterOptions = {}): ClusterPlan {
  const prefix = opts.prefix ?? "dockside-cluster-lab";
  const subnet = opts.subnet ?? "10.213.1";
  if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(subnet)) throw new Error(`subnet "${subnet}": expected a.b.c`);
  const member = (role: string, i: number, host: number): Member => ({
    container: `${prefix}-${role}-${i}`,
    node: `${role}-${i}`,
    nodeId: nodeIdFor(prefix, `${role}-${i}`),
    ip: `${subnet}.${host}`,
  });
  const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
  return {
    prefix,
    network: `${prefix}-net`,
    subnet,
    servers: range(opts.servers ?? 3).map((i) => member("server", i, 10 + i)),
    hosts: range(opts.hosts ?? 3).map((i) => ({
      ...member("host", i, 20 + i),
      volume: `${prefix}-host-${i}-docker`,
    })),
    edgeAgent: member("edge", 1, 30),
    edge: `${prefix}-edge-1-templater`,
    label: "dockside.cluster",
    datacenter: "dc1",
  };
}

/** Where each agent finds its TLS files, inside its container. */
export const tlsDir = "/consul/tls";

export interface AgentSecrets {
  gossipKey: string;
  /** Token of this agent's own operations (node registration, anti-entropy). */
  agentToken: string;
  /** Servers only: the bootstrap (management) token. */
  managementToken?: string;
}

const hclString = (s: string) => JSON.stringify(s);
const hclList = (xs: string[]) => `[${xs.map(hclString).join(", ")}]`;

/**
 * One agent's configuration file. Secure by default: gossip encryption, TLS on every RPC
 * (verified both ways, server host names checked), HTTPS only (plain HTTP off), ACLs that
 * deny what no token allows.
 */
export function agentConfig(plan: ClusterPlan, who: Member, role: "server" | "client", s: AgentSecrets) {
  const cert = role === "server" ? "server" : "client";
  const lines = [
    `datacenter = ${hclString(plan.datacenter)}`,
    `node_name = ${hclString(who.node)}`,
    `node_id = ${hclString(who.nodeId)}`,
    `data_dir = "/consul/data"`,
    `bind_addr = ${hclString(who.ip)}`,
    // Servers answer the API on every address (the lab command and tests reach them); client
    // agents only on loopback, where their registrator and templater share the network namespace.
    `client_addr = ${hclString(role === "server" ? "0.0.0.0" : "127.0.0.1")}`,
    `retry_join = ${hclList(plan.servers.map((m) => m.ip))}`,
    `retry_interval = "1s"`,
    `encrypt = ${hclString(s.gossipKey)}`,
    `ca_file = "${tlsDir}/ca.pem"`,
    `cert_file = "${tlsDir}/${cert}.pem"`,
    `key_file = "${tlsDir}/${cert}-key.pem"`,
    `verify_incoming_rpc = true`,
    `verify_outgoing = true`,
    `verify_server_hostname = true`,
    `ports { http = -1, https = 8501 }`,
    `log_level = "warn"`,
    // Failure detection about twice as fast as Consul's defaults (probe 1 s, timeout 500 ms,
    // suspicion ×4): a lost host's node turns serfHealth critical in ~2-3 s instead of ~5-6 s
    // (bench/README.md, "cluster"). Every agent uses the same values; a LAN of a few dozen nodes
    // carries the extra probes easily. Larger pools: keep the defaults.
    `gossip_lan { probe_interval = "500ms", probe_timeout = "400ms", suspicion_mult = 3 }`,
    `leave_on_terminate = false`,
    `acl {`,
    `  enabled = true`,
    `  default_policy = "deny"`,
    `  down_policy = "extend-cache"`,
    `  enable_token_persistence = true`,
    `  tokens {`,
    `    agent = ${hclString(s.agentToken)}`,
    ...(s.managementToken ? [`    master = ${hclString(s.managementToken)}`] : []),
    `  }`,
    `}`,
  ];
  if (role === "server") {
    lines.push(`server = true`, `bootstrap_expect = ${plan.servers.length}`, `ui = true`);
  }
  return lines.join("\n") + "\n";
}

export interface PolicySpec {
  name: string;
  description: string;
  rules: string;
}

/** What a Consul agent needs for itself: write its own node, read services for anti-entropy. */
export function agentPolicy(node: string): PolicySpec {
  return {
    name: `agent-${node}`,
    description: `Consul agent on ${node}`,
    rules: `node ${hclString(node)} { policy = "write" }\nservice_prefix "" { policy = "read" }\n`,
  };
}

/**
 * A registrator: write any service (it registers what its host runs), read nodes and its own
 * agent (it lists its node's services and the agent's checks). Nothing else: no KV, no ACL,
 * no other agent.
 */
export function registratorPolicy(node: string): PolicySpec {
  return {
    name: `registrator-${node}`,
    description: `registrator on ${node}`,
    rules:
      `service_prefix "" { policy = "write" }\n` +
      `node_prefix "" { policy = "read" }\n` +
      `agent ${hclString(node)} { policy = "read" }\n`,
  };
}

/** The templater reads the catalog and health: services and nodes, read-only. */
export const templaterPolicy: PolicySpec = {
  name: "templater",
  description: "templater (edge): reads services and nodes",
  rules: `service_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }\n`,
};

/**
 * Every policy the lab creates at bring-up, with the name its token's secret is kept under
 * (ClusterSecrets.tokens): each agent's own, each host's registrator, the edge's templater.
 */
export function labGrants(plan: ClusterPlan): { policy: PolicySpec; token: string }[] {
  return [
    ...[...plan.servers, ...plan.hosts, plan.edgeAgent].map((m) => ({
      policy: agentPolicy(m.node),
      token: `agent-${m.node}`,
    })),
    ...plan.hosts.map((h) => ({ policy: registratorPolicy(h.node), token: `registrator-${h.node}` })),
    { policy: templaterPolicy, token: "templater" },
  ];
}

export interface Placed {
  host: string;
  name: string;
}

/** The index in "web-7". */
const indexOf = (name: string) => Number(/-(\d+)$/.exec(name)?.[1] ?? 0);

/**
 * Pure: which instances of `service` to start and stop so that `n` run, spread evenly over
 * `hosts` (the first n % hosts.length hosts get one more). Running instances stay where they
 * are; new ones take the lowest free numbers, removed ones are the highest-numbered on a host.
 */
export function spreadInstances(
  service: string,
  n: number,
  hosts: readonly string[],
  running: readonly Placed[],
): { start: Placed[]; stop: Placed[] } {
  const start: Placed[] = [];
  const stop: Placed[] = [];
  const used = new Set(running.map((r) => indexOf(r.name)));
  let next = 1;
  const freeName = () => {
    while (used.has(next)) next++;
    used.add(next);
    return `${service}-${next}`;
  };
  hosts.forEach((host, i) => {
    const want = Math.floor(n / hosts.length) + (i < n % hosts.length ? 1 : 0);
    const here = running.filter((r) => r.host === host).sort((a, b) => indexOf(a.name) - indexOf(b.name));
    for (const r of here.slice(want)) stop.push(r);
    for (let k = here.length; k < want; k++) start.push({ host, name: freeName() });
  });
  // Instances on hosts that are no longer in the list go too.
  for (const r of running) if (!hosts.includes(r.host)) stop.push(r);
  return { start, stop };
}

/** Services the lab knows; others get a slot from their name. */
const portSlots: Record<string, number> = { web: 0, api: 1 };

/**
 * Pure: the host port an instance publishes, fixed by service and number (web-4 → 30004,
 * api-2 → 31002). A fixed port, rather than one Docker picks, survives the host's engine
 * restarting its containers: what Consul still holds for a host that comes back is right
 * from its first moment, instead of pointing at ports that are gone.
 */
export function publishedPort(name: string): number {
  const m = /^([a-z][a-z0-9-]*?)-(\d+)$/.exec(name);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 999) throw new Error(`"${name}": expected <service>-<1..999>`);
  const service = m[1]!;
  const slot =
    portSlots[service] ?? 2 + ([...service].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7) % 30);
  return 30000 + slot * 1000 + Number(m[2]);
}

/** The Swarm road's registrators: one global service, so one token for all nodes. */
export const swarmRegistratorPolicy: PolicySpec = {
  name: "registrator-swarm",
  description: "registrators of the Swarm stack (global service)",
  rules:
    `service_prefix "" { policy = "write" }\n` +
    `node_prefix "" { policy = "read" }\n` +
    `agent_prefix "" { policy = "read" }\n`,
};
