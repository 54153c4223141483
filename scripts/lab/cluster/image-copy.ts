// Images from the machine's engine into a lab host's engine: one `docker save` per image set,
// kept in .cache so every host loads the same file, then `docker load` inside the host.

import { createHash } from "node:crypto";
import { createReadStream, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { Transform } from "node:stream";
import { execa } from "execa";
import { docker } from "../../lib/docker-cli.ts";
import { repoRoot } from "../compose.ts";
import type { Member } from "./plan.ts";

export class ImageCopier {
  readonly #tars = new Map<string, Promise<string>>();
  readonly #log: (msg: string) => void;

  constructor(log: (msg: string) => void) {
    this.#log = log;
  }

  /** Copies `names` into the host's engine, skipping those it already has (same image ID). */
  async copy(host: Member, names: string[]): Promise<void> {
    const missing: string[] = [];
    for (const name of names) {
      const outer = (await docker(["image", "inspect", "-f", "{{.Id}}", name])).stdout.trim();
      const inner = await docker(
        ["exec", host.container, "docker", "image", "inspect", "-f", "{{.Id}}", name],
        {
          reject: false,
        },
      );
      if (inner.stdout.trim() !== outer) missing.push(name);
    }
    if (missing.length === 0) return;
    const tar = await this.#imageTar(missing);
    const total = statSync(tar).size;
    let sent = 0;
    let shown = 0;
    const mb = (n: number) => (n / 1e6).toFixed(0);
    const progress = new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        sent += chunk.length;
        if (sent - shown > total / 4 || sent === total) {
          shown = sent;
          this.#log(`${host.node}: docker load ${mb(sent)}/${mb(total)} MB`);
        }
        cb(null, chunk);
      },
    });
    const child = execa("docker", ["exec", "-i", host.container, "docker", "load", "-q"], {
      reject: false,
      all: true,
      input: undefined,
    });
    createReadStream(tar).pipe(progress).pipe(child.stdin!);
    const r = await child;
    if (r.exitCode !== 0) throw new Error(`${host.node}: docker load failed: ${r.all}`);
  }

  #imageTar(names: string[]): Promise<string> {
    const key = names.join(" ");
    let tar = this.#tars.get(key);
    if (!tar) {
      tar = this.#saveImages(names);
      this.#tars.set(key, tar);
    }
    return tar;
  }

  async #saveImages(names: string[]): Promise<string> {
    const ids = (await docker(["image", "inspect", "-f", "{{.Id}}", ...names])).stdout;
    const dir = path.join(repoRoot, ".cache", "cluster", "images");
    mkdirSync(dir, { recursive: true });
    const hash = (x: string) => createHash("sha256").update(x).digest("hex").slice(0, 12);
    const set = hash(names.join(" "));
    const tar = path.join(dir, `${set}-${hash(ids)}.tar`);
    try {
      statSync(tar);
    } catch {
      const started = Date.now();
      await docker(["save", "-o", `${tar}.part`, ...names], { timeoutMs: 10 * 60_000 });
      await execa("mv", [`${tar}.part`, tar]);
      // Only the newest save of a set is kept: each image rebuild would otherwise leave ~400 MB.
      for (const f of readdirSync(dir)) {
        if (f.startsWith(`${set}-`) && path.join(dir, f) !== tar) rmSync(path.join(dir, f), { force: true });
      }
      this.#log(
        `docker save ${names.join(" ")}: ${(statSync(tar).size / 1e6).toFixed(0)} MB (${((Date.now() - started) / 1000).toFixed(1)} s)`,
      );
    }
    return tar;
  }
}
