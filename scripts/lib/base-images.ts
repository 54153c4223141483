// Which base image to use for each role, decided by detection: an upstream image
// that is already present or pullable wins; otherwise the project builds a local
// stand-in from Debian packages. Pure: the probes happen elsewhere.

export type BaseRole = "node" | "nginx" | "consul" | "busybox" | "haproxy";
export const baseRoles: readonly BaseRole[] = ["node", "nginx", "consul", "busybox", "haproxy"];

export const upstreamImages: Record<BaseRole, string> = {
  node: "node:24-bookworm-slim",
  nginx: "nginx:1.30",
  consul: "hashicorp/consul:1.21",
  busybox: "busybox:1.37",
  /** The lab's Docker socket allow-list proxy (deploy/docker-proxy/haproxy.cfg). */
  haproxy: "haproxy:3.0",
};

export const localImages: Record<BaseRole, string> = {
  node: "dockside/base-node:24",
  nginx: "dockside/base-nginx:sid",
  consul: "dockside/base-consul:1.8",
  busybox: "dockside/base-busybox:bookworm",
  haproxy: "dockside/base-haproxy:bookworm",
};

/** The Debian suite each local stand-in is built from. */
export const localSuites: Record<BaseRole, "bookworm" | "trixie"> = {
  node: "bookworm",
  nginx: "trixie",
  consul: "bookworm",
  busybox: "bookworm",
  haproxy: "bookworm",
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

/**
 * The edge's base (nginx >= 1.27.4 with its Lua module, and tini): no upstream image carries
 * both, so it is always built, from deploy/images/edge.Dockerfile, FROM an upstream Debian
 * image where a registry answers and from the local debootstrap image otherwise. Its tag holds
 * a hash of the Dockerfile, so a changed recipe never reuses a stale image on a shared engine.
 */
export const edgeBase = {
  dockerfile: "deploy/images/edge.Dockerfile",
  repository: "dockside/base-edge",
  suite: "trixie",
  upstreamFrom: "debian:trixie",
  localFrom: "dockside/debian:trixie",
} as const;

export function edgeBaseImage(dockerfileText: string, hash: (text: string) => string): string {
  return `${edgeBase.repository}:sid-${hash(dockerfileText).slice(0, 8)}`;
}

/** FROM for the edge base: the same decision as the nginx role's (upstream or local). */
export function edgeBaseFrom(nginx: BaseChoice): string {
  return nginx.source === "local" ? edgeBase.localFrom : edgeBase.upstreamFrom;
}

/** The names compose and the tests read, as the lines of deploy/.env: one per base role, and the project's own. */
export type ImageSet = Record<BaseRole | keyof typeof serviceImages, string>;

export const imageVariables: Record<keyof ImageSet, string> = {
  node: "DOCKSIDE_NODE_IMAGE",
  nginx: "DOCKSIDE_NGINX_IMAGE",
  consul: "DOCKSIDE_CONSUL_IMAGE",
  busybox: "DOCKSIDE_BUSYBOX_IMAGE",
  haproxy: "DOCKSIDE_HAPROXY_IMAGE",
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
