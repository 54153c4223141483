// The image names chosen by scripts/images.ts (deploy/.env), as the tests see them.

import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { imageVariables, parseEnvFile, type ImageSet } from "../../scripts/lib/base-images.ts";

export const repoRoot = path.resolve(import.meta.dirname, "..", "..");

let cached: ImageSet | undefined;

export function images(): ImageSet {
  if (cached) return cached;
  const file = path.join(repoRoot, "deploy", ".env");
  if (!existsSync(file)) {
    throw new Error(`${file} is missing: run \`npm run images\` (npm test does it) before the Docker tests`);
  }
  const env = parseEnvFile(readFileSync(file, "utf8"));
  const out: Partial<ImageSet> = {};
  for (const [key, variable] of Object.entries(imageVariables)) {
    const v = env[variable];
    if (!v) throw new Error(`${file} does not set ${variable}: run \`npm run images\` again`);
    out[key as keyof ImageSet] = v;
  }
  cached = out as ImageSet;
  return cached;
}
