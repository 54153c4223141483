// Which base image to use for each role, decided by detection: an upstream image
// that is already present or pullable wins; otherwise the project builds a local
// stand-in from Debian packages. Pure: the probes happen elsewhere.

export type BaseRole = "node" | "nginx" | "consul" | "busybox";
export const baseRoles: readonly BaseRole[] = ["node", "nginx", "consul", "busybox"];

export const upstreamImages: Record<BaseRole, string> = {
  node: "node:24-bookworm-slim",
  nginx: "nginx:1.30",
  consul: "hashicorp/consul:1.21",
  busybox: "busybox:1.37",
};

export const localImages: Record<BaseRole, string> = {
  node: "dockside/base-node:24",
  nginx: "dockside/base-nginx:sid",
  consul: "dockside/base-consul:1.8",
  busybox: "dockside/base-busybox:bookworm",
};

/** The Debian suite each local stand-in is built from. */
export const localSuites: Record<BaseRole, "bookworm" | "trixie"> = {
  node: "bookworm",
  nginx: "trixie",
  consul: "bookworm",
  busybox: "bookworm",
};

export interface RegistryProbe {
  reachable: boolean;
  /** What was asked and what came back, for the log line. */
  detail: string;
}

export type BaseSource = "upstream-present" | "upstream-pull" | "local";

export interface BaseChoice {
  role: BaseRole;
  image: string;
  source: BaseSource;
  reason: string;
}

export function chooseBase(
  role: BaseRole,
  upstreamPresent: boolean,
  registry: RegistryProbe,
  upstream = upstreamImages[role],
): BaseChoice {
  if (upstreamPresent)
    return { role, image: upstream, source: "upstream-present", reason: "already present" };
  if (registry.reachable) {
    return {
      role,
      image: upstream,
      source: "upstream-pull",
      reason: `registry reachable (${registry.detail})`,
    };
  }
  return {
    role,
    image: localImages[role],
    source: "local",
    reason: `registry unreachable (${registry.detail}); built from Debian ${localSuites[role]} packages`,
  };
}

/** The names compose and the tests read, as the lines of deploy/.env. */
export interface ImageSet {
  node: string;
  nginx: string;
  consul: string;
  busybox: string;
  registrator: string;
  edge: string;
  demo: string;
}

export const imageVariables: Record<keyof ImageSet, string> = {
  node: "DOCKSIDE_NODE_IMAGE",
  nginx: "DOCKSIDE_NGINX_IMAGE",
  consul: "DOCKSIDE_CONSUL_IMAGE",
  busybox: "DOCKSIDE_BUSYBOX_IMAGE",
  registrator: "DOCKSIDE_REGISTRATOR_IMAGE",
  edge: "DOCKSIDE_EDGE_IMAGE",
  demo: "DOCKSIDE_DEMO_IMAGE",
};

/**
 * The project's own images. DOCKSIDE_IMAGE_TAG (default `dev`) lets several checkouts on one
 * engine build and test side by side without overwriting each other's images.
 */
export const serviceTag = process.env.DOCKSIDE_IMAGE_TAG || "dev";
export const serviceImages = {
  registrator: `dockside/registrator:${serviceTag}`,
  edge: `dockside/edge:${serviceTag}`,
  demo: `dockside/demo-node:${serviceTag}`,
};

export function formatEnvFile(set: ImageSet, header: string[]): string {
  const lines = header.map((h) => `# ${h}`);
  for (const [key, variable] of Object.entries(imageVariables)) {
    lines.push(`${variable}=${set[key as keyof ImageSet]}`);
  }
  return lines.join("\n") + "\n";
}

export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (m) out[m[1]!] = m[2]!.replace(/^(["'])(.*)\1$/, "$2");
  }
  return out;
}
