// The cluster lab's secrets, made at bring-up and kept under .cache/cluster/<prefix>/ (git-ignored,
// mode 0700): a CA and agent certificates from `consul tls`, a gossip key, and the ACL tokens'
// secret IDs. Nothing here is ever committed; `down` deletes it.

import { randomBytes, randomUUID } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { execa } from "execa";
import { repoRoot } from "../compose.ts";
import { labGrants, type ClusterPlan } from "./plan.ts";

export interface ClusterSecrets {
  gossipKey: string;
  managementToken: string;
  /** Secret ID per token name: agent-<node>, registrator-<node>, templater. */
  tokens: Record<string, string>;
}

export interface SecretFiles {
  dir: string;
  /** CA + server certificate: mounted into the servers only. */
  serverTls: string;
  /** CA (without its key) + client certificate: mounted into hosts and the edge. */
  clientTls: string;
  secrets: ClusterSecrets;
}

export function secretsDir(plan: ClusterPlan): string {
  return path.join(repoRoot, ".cache", "cluster", plan.prefix);
}

async function consulTls(image: string, dir: string, args: string[]): Promise<void> {
  const r = await execa(
    "docker",
    ["run", "--rm", "--user", `${process.getuid?.() ?? 0}`, "-v", `${dir}:/w`, "-w", "/w"].concat([
      "--entrypoint",
      "consul",
      image,
      "tls",
      ...args,
    ]),
    { reject: false, all: true },
  );
  if (r.exitCode !== 0) throw new Error(`consul tls ${args.join(" ")} failed: ${r.all}`);
}

function copyAs(from: string, to: string): void {
  writeFileSync(to, readFileSync(from));
  // Readable by the agents' unprivileged user inside their containers; the directory above is 0700.
  chmodSync(to, 0o644);
}

/** Creates the secrets once per lab; an existing set is reused (a second `up` keeps the cluster). */
export async function ensureSecrets(plan: ClusterPlan, consulImage: string): Promise<SecretFiles> {
  const dir = secretsDir(plan);
  const ca = path.join(dir, "ca");
  const serverTls = path.join(dir, "tls-server");
  const clientTls = path.join(dir, "tls-client");
  const file = path.join(dir, "secrets.json");
  if (!existsSync(file)) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // The mounted directories must be listable by the agents' user; the 0700 directory above guards them.
    for (const d of [ca, serverTls, clientTls]) mkdirSync(d, { recursive: true, mode: 0o755 });
    await consulTls(consulImage, ca, ["ca", "create", "-days", "30"]);
    await consulTls(consulImage, ca, [
      "cert",
      "create",
      "-server",
      "-days",
      "30",
      ...plan.servers.flatMap((s) => ["-additional-ipaddress", s.ip]),
    ]);
    await consulTls(consulImage, ca, ["cert", "create", "-client", "-days", "30"]);
    const dc = plan.datacenter;
    for (const d of [serverTls, clientTls])
      copyAs(path.join(ca, "consul-agent-ca.pem"), path.join(d, "ca.pem"));
    copyAs(path.join(ca, `${dc}-server-consul-0.pem`), path.join(serverTls, "server.pem"));
    copyAs(path.join(ca, `${dc}-server-consul-0-key.pem`), path.join(serverTls, "server-key.pem"));
    copyAs(path.join(ca, `${dc}-client-consul-0.pem`), path.join(clientTls, "client.pem"));
    copyAs(path.join(ca, `${dc}-client-consul-0-key.pem`), path.join(clientTls, "client-key.pem"));
    const tokens = Object.fromEntries(labGrants(plan).map((g) => [g.token, randomUUID()]));
    const secrets: ClusterSecrets = {
      // What `consul keygen` prints: 32 random bytes, base64.
      gossipKey: randomBytes(32).toString("base64"),
      managementToken: randomUUID(),
      tokens,
    };
    saveSecrets(plan, secrets);
  }
  const secrets = JSON.parse(readFileSync(file, "utf8")) as ClusterSecrets;
  return { dir, serverTls, clientTls, secrets };
}

export function saveSecrets(plan: ClusterPlan, secrets: ClusterSecrets): void {
  writeFileSync(path.join(secretsDir(plan), "secrets.json"), JSON.stringify(secrets, null, 2), {
    mode: 0o600,
  });
}

export function removeSecrets(plan: ClusterPlan): void {
  rmSync(secretsDir(plan), { recursive: true, force: true });
}
