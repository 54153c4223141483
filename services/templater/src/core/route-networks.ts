// Consul is a trust boundary for the edge: whoever can register a service chooses where the
// public edge proxies. Addresses that name the edge itself or things next to it are refused by
// default — loopback (the edge's own ports), link-local (169.254.169.254 is a cloud metadata
// service), unspecified and multicast — and an allow-list of networks (--route-networks)
// narrows what is routed further. Pure: built once from the setting, asked per address.

import net from "node:net";

/** Address ranges never routed, whatever --route-networks says. */
const refused: [string, number, "ipv4" | "ipv6", string][] = [
  ["127.0.0.0", 8, "ipv4", "loopback"],
  ["169.254.0.0", 16, "ipv4", "link-local"],
  ["0.0.0.0", 8, "ipv4", "unspecified"],
  ["224.0.0.0", 4, "ipv4", "multicast"],
  ["::1", 128, "ipv6", "loopback"],
  ["fe80::", 10, "ipv6", "link-local"],
  ["::", 128, "ipv6", "unspecified"],
  ["ff00::", 8, "ipv6", "multicast"],
];

export interface RouteNetworks {
  /** Why this address may not be routed; null when it may. */
  refuse(address: string): string | null;
}

/** Parses "172.16.0.0/12,10.0.0.0/8,fd00::/8"; throws naming the bad entry. Empty: every network. */
export function parseNetworks(raw: string): string[] {
  const list = raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const cidr of list) {
    const [ip, bits, extra] = cidr.split("/");
    const family = net.isIP(ip ?? "");
    const n = Number(bits);
    if (extra !== undefined || !family || !/^\d+$/.test(bits ?? "") || n > (family === 4 ? 32 : 128)) {
      throw new Error(`"${cidr}" is not a network; expected address/prefix, e.g. 172.16.0.0/12`);
    }
  }
  return list;
}

/** IPv4-mapped IPv6 (::ffff:127.0.0.1) is judged as the IPv4 address it maps. */
function unmapped(address: string): { address: string; type: "ipv4" | "ipv6" } {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (m) return { address: m[1]!, type: "ipv4" };
  return { address, type: net.isIP(address) === 4 ? "ipv4" : "ipv6" };
}

export function routeNetworks(allow: readonly string[]): RouteNetworks {
  const classes = refused.map(([ip, bits, type, what]) => {
    const b = new net.BlockList();
    b.addSubnet(ip, bits, type);
    return { b, what };
  });
  const allowed = new net.BlockList();
  for (const cidr of allow) {
    const [ip, bits] = cidr.split("/") as [string, string];
    allowed.addSubnet(ip, Number(bits), net.isIP(ip) === 4 ? "ipv4" : "ipv6");
  }
  return {
    refuse(raw) {
      const { address, type } = unmapped(raw);
      const hit = classes.find((c) => c.b.check(address, type));
      if (hit)
        return `${hit.what} address ${raw} is never routed (it would expose the edge's own host or its neighbours)`;
      if (allow.length > 0 && !allowed.check(address, type)) {
        return `address ${raw} is outside --route-networks (${allow.join(",")})`;
      }
      return null;
    },
  };
}
