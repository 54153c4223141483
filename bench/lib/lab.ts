// A compose lab project of a benchmark's own (free ports), removed once: at the end, or on Ctrl-C.

import { Lab } from "../../scripts/lab/compose.ts";

export function benchLab(
  project: string,
  env: Record<string, string>,
): { lab: Lab; teardown: () => Promise<void> } {
  const lab = new Lab({ project, env });
  let tornDown = false;
  async function teardown() {
    if (tornDown) return;
    tornDown = true;
    console.log("bench: removing the bench project");
    await lab.down().catch((e: Error) => console.error(`teardown: ${e.message}`));
  }
  process.once("SIGINT", () => void teardown().then(() => process.exit(130)));
  return { lab, teardown };
}
