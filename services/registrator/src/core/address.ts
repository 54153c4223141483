// Where an instance is reached. Internal mode: the container's IP on one chosen
// network and the container port. Published mode: a host IP and the published host
// port. The two are never mixed, and when the choice is ambiguous the answer is a
// reason to skip, never a guess.

import type { ContainerFacts, MappingOptions, Proto } from "./types.ts";

export type Endpoint = { address: string; port: number } | { skip: string } | { unpublished: true };

const composeProjectLabel = "com.docker.compose.project";
const unspecifiedHosts = new Set(["", "0.0.0.0", "::"]);

/** The network to take the container's address from, or why there is none. */
export function chooseNetwork(
  c: ContainerFacts,
  opts: Pick<MappingOptions, "network">,
  labelNetwork: string | undefined,
): { network: string } | { skip: string } {
  const names = Object.keys(c.networks).sort();
  const attached = (n: string) => Object.hasOwn(c.networks, n);
  if (labelNetwork) {
    return attached(labelNetwork)
      ? { network: labelNetwork }
      : { skip: `SERVICE_NETWORK names "${labelNetwork}", which the container is not attached to` };
  }
  if (opts.network) {
    return attached(opts.network)
      ? { network: opts.network }
      : {
          skip: `not attached to network "${opts.network}" (--network); attach it or set SERVICE_NETWORK`,
        };
  }
  if (names.length === 0) return { skip: "has no network to take an address from" };
  const project = c.labels[composeProjectLabel];
  if (project) {
    const own = names.filter((n) => n.startsWith(`${project}_`));
    if (own.length === 1) return { network: own[0]! };
    if (own.length > 1) {
      return {
        skip: `is on several networks of compose project "${project}" (${own.join(", ")}); choose one with SERVICE_NETWORK or --network`,
      };
    }
  }
  if (names.length === 1) return { network: names[0]! };
  return {
    skip: `is on several networks (${names.join(", ")}); choose one with SERVICE_NETWORK or --network`,
  };
}

export function endpointFor(
  c: ContainerFacts,
  opts: Pick<MappingOptions, "addressMode" | "network" | "hostIp">,
  labelNetwork: string | undefined,
  port: number,
  proto: Proto,
): Endpoint {
  const mode = c.networkMode;
  if (mode === "host") {
    // The container shares the host's stack: its ports are the host's ports.
    return opts.hostIp
      ? { address: opts.hostIp, port }
      : { skip: "uses the host network; set --host-ip so it can be registered" };
  }
  if (mode.startsWith("container:")) return { skip: "shares the network stack of another container" };
  if (mode === "none") return { skip: "has networking disabled (network mode none)" };

  if (opts.addressMode === "published") {
    const bindings = c.bindings[`${port}/${proto}`] ?? [];
    const binding = bindings.find((b) => b.hostPort > 0 && !b.hostIp.includes(":")) ?? bindings[0];
    if (!binding || !(binding.hostPort > 0)) return { unpublished: true };
    const address = unspecifiedHosts.has(binding.hostIp) ? opts.hostIp : binding.hostIp;
    if (!address) return { skip: `port ${port}/${proto} is published on all interfaces; set --host-ip` };
    return { address, port: binding.hostPort };
  }

  const chosen = chooseNetwork(c, opts, labelNetwork);
  if ("skip" in chosen) return chosen;
  const ip = c.networks[chosen.network];
  if (!ip) return { skip: `has no IPv4 address on network "${chosen.network}"` };
  return { address: ip, port };
}
