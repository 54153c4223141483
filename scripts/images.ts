// Builds every image the lab and the tests use, and records their names in
// deploy/.env (read by compose and by the test helpers).
//
// Base images are chosen by detection (see lib/base-images.ts): upstream images when
// they are present or the registry answers, local stand-ins built from Debian
// packages when it does not. Service images are built from host-built bundles.
//
//   node scripts/images.ts            everything
//   node scripts/images.ts --bases    only the base images and deploy/.env
//   node scripts/images.ts --only templater[,registrator,demo-node]
//                                     bases, then only those services' bundles and images

import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createHash } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { allServices, buildService } from "./build.ts";
import {
  baseRoles,
  chooseBase,
  edgeBase,
  edgeBaseFrom,
  edgeBaseImage,
  formatEnvFile,
  localImages,
  localSuites,
  serviceImages,
  upstreamImages,
  type BaseChoice,
  type BaseRole,
  type ImageSet,
  type RegistryProbe,
} from "./lib/base-images.ts";
import { imageExists, registryMirrors, runLogged } from "./lib/docker-cli.ts";

const root = path.resolve(import.meta.dirname, "..");
const logDir = path.join(root, ".cache", "images");
export const envFile = path.join(root, "deploy", ".env");
const defaultRegistry = "https://registry-1.docker.io/v2/";

function step(what: string, detail: string): void {
  console.log(`images: ${what.padEnd(28)} ${detail}`);
}

async function timed<T>(what: string, fn: () => Promise<T>, done: (t: T) => string): Promise<T> {
  const started = Date.now();
  const out = await fn();
  step(what, `${done(out)} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return out;
}

/** Any HTTP answer from the registry's /v2/ counts as reachable; DNS, TLS or a timeout do not. */
export async function probeRegistry(url: string, timeoutMs = 4000): Promise<RegistryProbe> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: "manual" });
    await res.body?.cancel();
    return { reachable: true, detail: `${url} answered HTTP ${res.status}` };
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).name ?? String(err);
    return { reachable: false, detail: `${url}: ${why}` };
  }
}

async function detectRegistry(): Promise<RegistryProbe> {
  // DOCKSIDE_REGISTRY_PROBE_URL exists for the detection test, which points it at a loopback server.
  const mirrors = await registryMirrors();
  const url =
    process.env.DOCKSIDE_REGISTRY_PROBE_URL ??
    (mirrors[0] ? new URL("/v2/", mirrors[0]).href : defaultRegistry);
  return probeRegistry(url);
}

/** `upstream` replaces the upstream image names (tests use names certainly absent). */
export async function chooseBases(
  upstream: Record<BaseRole, string> = upstreamImages,
): Promise<BaseChoice[]> {
  const present = Object.fromEntries(
    await Promise.all(baseRoles.map(async (r) => [r, await imageExists(upstream[r])] as const)),
  ) as Record<BaseRole, boolean>;
  const needProbe = baseRoles.some((r) => !present[r]);
  const registry = needProbe ? await detectRegistry() : { reachable: true, detail: "not asked" };
  return baseRoles.map((r) => chooseBase(r, present[r], registry, upstream[r]));
}

function debianMirror(): string {
  const sources = "/etc/apt/sources.list.d/debian.sources";
  if (existsSync(sources)) {
    const m = /^URIs:\s*(\S+)/m.exec(readFileSync(sources, "utf8"));
    if (m) return m[1]!;
  }
  return "http://deb.debian.org/debian";
}

let debootstrapReady: Promise<void> | undefined;
function ensureDebootstrap(): Promise<void> {
  debootstrapReady ??= installDebootstrap();
  return debootstrapReady;
}

async function installDebootstrap(): Promise<void> {
  if ((await execa("sh", ["-c", "command -v debootstrap"], { reject: false })).exitCode === 0) return;
  if (process.getuid?.() !== 0 || !existsSync("/etc/debian_version")) {
    throw new Error(
      "no registry is reachable, so base images must be built locally with debootstrap, " +
        "which needs a Debian host and root. Either make a registry reachable or run this as root on Debian.",
    );
  }
  await timed(
    "debootstrap",
    () => execa("apt-get", ["install", "-y", "-q", "debootstrap"]),
    () => "installed",
  );
}

async function ensureDebianBase(suite: string): Promise<string> {
  const name = `dockside/debian:${suite}`;
  if (await imageExists(name)) return name;
  await ensureDebootstrap();
  const dir = mkdtempSync(path.join(os.tmpdir(), `dockside-rootfs-${suite}-`));
  try {
    await timed(
      name,
      async () => {
        const log = path.join(logDir, `debootstrap-${suite}.log`);
        const r = await execa("debootstrap", ["--variant=minbase", suite, dir, debianMirror()], {
          reject: false,
          all: true,
          timeout: 15 * 60_000,
        });
        writeFileSync(log, r.all ?? "");
        if (r.exitCode !== 0)
          throw new Error(`debootstrap ${suite} failed; log: ${log}\n${(r.all ?? "").slice(-2000)}`);
        await execa("bash", ["-c", `tar -C "${dir}" -c . | docker import - "${name}"`]);
      },
      () => `built with debootstrap --variant=minbase ${suite}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return name;
}

function projectNodeBinary(): string {
  const local = path.join(root, "node_modules", "node", "bin", "node");
  if (existsSync(local)) return local;
  if (Number(process.versions.node.split(".")[0]) >= 24) return process.execPath;
  throw new Error("no Node 24 binary: run `npm ci` first (the devDependency `node` provides it)");
}

async function buildLocalBase(role: BaseRole): Promise<void> {
  const name = localImages[role];
  if (await imageExists(name)) {
    step(name, "present");
    return;
  }
  const debian = await ensureDebianBase(localSuites[role]);
  const dockerfile = path.join(root, "deploy", "images", `${role}.Dockerfile`);
  const context = mkdtempSync(path.join(os.tmpdir(), `dockside-${role}-`));
  try {
    if (role === "node") copyFileSync(projectNodeBinary(), path.join(context, "node"));
    await timed(
      name,
      () =>
        runLogged(
          ["build", "-f", dockerfile, "--build-arg", `DEBIAN_IMAGE=${debian}`, "-t", name, context],
          path.join(logDir, `base-${role}.log`),
          { timeoutMs: 15 * 60_000 },
        ),
      () => `built from ${debian}`,
    );
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}

async function provideBase(choice: BaseChoice): Promise<BaseChoice> {
  if (choice.source === "upstream-pull") {
    try {
      await timed(
        choice.image,
        () =>
          runLogged(["pull", choice.image], path.join(logDir, `pull-${choice.role}.log`), {
            timeoutMs: 5 * 60_000,
          }),
        () => "pulled",
      );
      return choice;
    } catch (err) {
      const fallback: BaseChoice = {
        role: choice.role,
        image: localImages[choice.role],
        source: "local",
        reason: `pull of ${choice.image} failed (${(err as Error).message.split("\n")[0]}); built from Debian packages`,
      };
      await buildLocalBase(choice.role);
      return fallback;
    }
  }
  if (choice.source === "local") await buildLocalBase(choice.role);
  return choice;
}

export async function provideBases(): Promise<Record<BaseRole, BaseChoice>> {
  const choices = await chooseBases();
  for (const c of choices) step(`base ${c.role}`, `${c.image}: ${c.reason}`);
  // The Debian bases are shared; build them first so the roles do not race for them.
  const missing: BaseChoice[] = [];
  for (const c of choices) if (c.source === "local" && !(await imageExists(c.image))) missing.push(c);
  await Promise.all([...new Set(missing.map((c) => localSuites[c.role]))].map((s) => ensureDebianBase(s)));
  const provided = await Promise.all(choices.map((c) => provideBase(c)));
  return Object.fromEntries(provided.map((c) => [c.role, c])) as Record<BaseRole, BaseChoice>;
}

/** The edge's base, built from Debian packages (see edgeBase in lib/base-images.ts). */
export async function provideEdgeBase(bases: Record<BaseRole, BaseChoice>): Promise<string> {
  const dockerfile = path.join(root, edgeBase.dockerfile);
  const name = edgeBaseImage(readFileSync(dockerfile, "utf8"), (t) =>
    createHash("sha256").update(t).digest("hex"),
  );
  if (await imageExists(name)) {
    step(name, "present");
    return name;
  }
  const from = edgeBaseFrom(bases.nginx);
  if (from === edgeBase.localFrom) await ensureDebianBase(edgeBase.suite);
  else if (!(await imageExists(from))) {
    await runLogged(["pull", from], path.join(logDir, "pull-edge-base.log"), { timeoutMs: 5 * 60_000 });
  }
  const context = mkdtempSync(path.join(os.tmpdir(), "dockside-edge-base-"));
  try {
    await timed(
      name,
      () =>
        runLogged(
          ["build", "-f", dockerfile, "--build-arg", `DEBIAN_IMAGE=${from}`, "-t", name, context],
          path.join(logDir, "base-edge.log"),
          { timeoutMs: 15 * 60_000 },
        ),
      () => `built from ${from}`,
    );
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
  return name;
}

interface ServiceImage {
  service: string;
  image: string;
  dockerfile: string;
  args: (bases: Record<BaseRole, BaseChoice>, edge: string) => Record<string, string>;
}

const serviceBuilds: ServiceImage[] = [
  {
    service: "registrator",
    image: serviceImages.registrator,
    dockerfile: "services/registrator/Dockerfile",
    args: (b) => ({ NODE_IMAGE: b.node.image }),
  },
  {
    service: "demo-node",
    image: serviceImages.demo,
    dockerfile: "services/demo-node/Dockerfile",
    args: (b) => ({ NODE_IMAGE: b.node.image }),
  },
  {
    service: "templater",
    image: serviceImages.edge,
    dockerfile: "services/templater/Dockerfile",
    args: (b, edge) => ({ NODE_IMAGE: b.node.image, EDGE_BASE_IMAGE: edge }),
  },
];

async function buildServiceImages(bases: Record<BaseRole, BaseChoice>, only?: string[]): Promise<void> {
  const edge = !only || only.includes("templater") ? await provideEdgeBase(bases) : "";
  const wanted = (service: string) => !only || only.includes(service);
  for (const name of allServices().filter(wanted)) {
    await timed(
      `bundle ${name}`,
      () => buildService(name),
      (files) => files.join(", "),
    );
  }
  // One at a time: the legacy builder on two cores gains nothing from running them together.
  for (const s of serviceBuilds.filter((b) => wanted(b.service))) {
    const args = Object.entries(s.args(bases, edge)).flatMap(([k, v]) => ["--build-arg", `${k}=${v}`]);
    await timed(
      s.image,
      () =>
        runLogged(
          ["build", "-f", path.join(root, s.dockerfile), ...args, "-t", s.image, root],
          path.join(logDir, `${s.service}.log`),
          { timeoutMs: 10 * 60_000 },
        ),
      () => `built (${s.dockerfile})`,
    );
  }
}

function dockerSocketGid(): number | undefined {
  try {
    return statSync("/var/run/docker.sock").gid;
  } catch {
    return undefined;
  }
}

export function writeImageSet(bases: Record<BaseRole, BaseChoice>): ImageSet {
  const set: ImageSet = {
    ...(Object.fromEntries(baseRoles.map((r) => [r, bases[r].image])) as Record<BaseRole, string>),
    ...serviceImages,
  };
  const header = [
    `Written by scripts/images.ts on ${new Date().toISOString()}; read by deploy/compose.yml and the tests.`,
    ...baseRoles.map((r) => `${r}: ${bases[r].reason}`),
  ];
  // Not an image: the group of this engine's socket, for the lab's Docker socket proxy (compose's group_add).
  const gid = dockerSocketGid();
  const extra =
    gid === undefined ? "" : `# the group owning /var/run/docker.sock here\nDOCKSIDE_DOCKER_GID=${gid}\n`;
  writeFileSync(envFile, formatEnvFile(set, header) + extra);
  return set;
}

if (import.meta.main) {
  const basesOnly = process.argv.includes("--bases");
  mkdirSync(logDir, { recursive: true });
  const started = Date.now();
  const bases = await provideBases();
  const onlyAt = process.argv.indexOf("--only");
  const only = onlyAt > 0 ? (process.argv[onlyAt + 1] ?? "").split(",").filter(Boolean) : undefined;
  if (!basesOnly) await buildServiceImages(bases, only);
  writeImageSet(bases);
  step(
    "done",
    `image names in ${path.relative(root, envFile)} (${((Date.now() - started) / 1000).toFixed(1)} s)`,
  );
}
