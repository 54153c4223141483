// The templater's process inside a running edge container, as `docker top` shows it (its RSS
// and command line), for the benches that print the templater's memory.

import type Docker from "dockerode";

export interface TemplaterProcess {
  /** Its pid on the engine's host. */
  pid: number;
  rssMiB: number;
  args: string;
}

/** The templater (node running /app/main.mjs, not its edge-init.sh supervisor); throws if none. */
export async function templaterProcess(container: Docker.Container): Promise<TemplaterProcess> {
  const top = (await container.top({ ps_args: "-o pid,rss,args" })) as { Processes: string[][] };
  const row = top.Processes.find(
    (p) => (p[2] ?? "").includes("/app/main.mjs") && !(p[2] ?? "").includes("edge-init"),
  );
  if (!row) throw new Error("no templater process in the edge");
  return { pid: Number(row[0]), rssMiB: Number(row[1]) / 1024, args: row[2] ?? "" }; // docker top: pid, rss (KiB), args
}
