// Thin wrappers over the docker CLI for the build scripts (the services use dockerode).

import { createWriteStream, mkdirSync } from "node:fs";
import path from "node:path";
import { execa } from "execa";

/** One docker command; throws on a non-zero exit unless `reject: false`. */
export async function docker(
  args: string[],
  opts: { input?: string; timeoutMs?: number; reject?: boolean } = {},
): Promise<{ stdout: string; exitCode: number; all: string }> {
  const r = await execa("docker", args, {
    reject: false,
    all: true,
    input: opts.input,
    timeout: opts.timeoutMs ?? 120_000,
  });
  if ((opts.reject ?? true) && r.exitCode !== 0) {
    throw new Error(
      `docker ${args.slice(0, 3).join(" ")} … failed (exit ${r.exitCode}): ${(r.all ?? "").trim()}`,
    );
  }
  return { stdout: r.stdout ?? "", exitCode: r.exitCode ?? -1, all: r.all ?? "" };
}

export async function imageExists(name: string): Promise<boolean> {
  const r = await execa("docker", ["image", "inspect", "--format", "{{.Id}}", name], { reject: false });
  return r.exitCode === 0;
}

export async function registryMirrors(): Promise<string[]> {
  const r = await execa("docker", ["info", "--format", "{{json .RegistryConfig.Mirrors}}"], {
    reject: false,
  });
  try {
    return (JSON.parse(r.stdout) as string[] | null) ?? [];
  } catch {
    return [];
  }
}

/**
 * Runs a long docker command with its output in a log file, so the terminal shows
 * one line per step; on failure the error carries the log's last lines.
 */
export async function runLogged(
  args: string[],
  logFile: string,
  opts: { timeoutMs?: number; input?: NodeJS.ReadableStream } = {},
): Promise<void> {
  mkdirSync(path.dirname(logFile), { recursive: true });
  const log = createWriteStream(logFile);
  const child = execa("docker", args, {
    reject: false,
    all: true,
    timeout: opts.timeoutMs,
    ...(opts.input ? { stdin: opts.input } : {}),
  });
  child.all?.pipe(log);
  const r = await child;
  await new Promise((resolve) => log.end(resolve));
  if (r.exitCode !== 0) {
    const tail = (r.all ?? "").split("\n").slice(-25).join("\n");
    throw new Error(
      `docker ${args.slice(0, 2).join(" ")} failed (${r.timedOut ? "timed out" : `exit ${r.exitCode}`}); log: ${logFile}\n${tail}`,
    );
  }
}
