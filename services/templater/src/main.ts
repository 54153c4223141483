// The templater: follows Consul, renders nginx config from Handlebars templates, validates it
// with nginx -t and applies it atomically; in exec mode it also runs nginx. Settings: settings.ts
// and services/templater/README.md. Wiring only: the templater itself is startTemplater().

import { sleep } from "../../../lib/backoff.ts";
import { loadSettingsOrExit } from "../../../lib/config.ts";
import { createLogger, type Logger } from "../../../lib/log.ts";
import { onShutdown } from "../../../lib/shutdown.ts";
import { checkSettings, displayDefaults, templaterSettings, type TemplaterSettings } from "./settings.ts";
import { StartError, startTemplater, type Templater } from "./templater.ts";

async function main(): Promise<void> {
  const settings: TemplaterSettings = loadSettingsOrExit("templater", templaterSettings, {
    displayDefaults,
    check: checkSettings,
  });
  // --dry prints renders on stdout, so its logs go to stderr.
  const log: Logger = createLogger({
    service: "templater",
    level: settings.logLevel,
    write: settings.dry ? (line) => process.stderr.write(line + "\n") : undefined,
  });
  let templater: Templater | undefined;
  let finishing = false;
  const finish = async (code: number) => {
    if (finishing) return;
    finishing = true;
    await templater?.stop().catch(() => {});
    process.exit(code);
  };
  try {
    templater = await startTemplater({ settings, log, onNginxExit: (code) => void finish(code) });
  } catch (err) {
    if (!(err instanceof StartError)) throw err;
    log.error(err.message, { err: err.cause });
    process.exit(err.exitCode);
  }
  const { manager, applier } = templater;

  process.on("SIGHUP", () => {
    log.info("SIGHUP: reading the templates again and retrying the current render");
    void manager.retry();
  });
  onShutdown(log, ["SIGTERM", "SIGINT", "SIGQUIT"], (signal) => {
    manager.stop();
    if (settings.once) return void finish(1);
    // Exec mode: nginx decides how long shutdown takes (QUIT is graceful); we exit with its status.
    if (templater.stopNginx(signal === "SIGINT" ? "SIGTERM" : signal)) return;
    void finish(0);
  });

  if (settings.once) {
    const arrived = await Promise.race([
      manager.firstSnapshot.then(() => true),
      sleep(settings.onceTimeout).then(() => false),
    ]);
    if (!arrived) {
      log.error("--once: Consul did not answer in time; nothing applied", {
        timeoutMs: settings.onceTimeout,
      });
      return finish(1);
    }
    await manager.idle();
    const outcome = manager.lastOutcome;
    const ok = ["applied", "unchanged", "dry"].includes(outcome.result);
    log.info("--once done", { result: outcome.result, generation: applier.liveId });
    return finish(ok ? 0 : 1);
  }
  await templater.watching;
}

main().catch((err: unknown) => {
  process.stderr.write(
    JSON.stringify({
      ts: new Date().toISOString(),
      level: "error",
      service: "templater",
      msg: "fatal",
      err: String(err),
    }) + "\n",
  );
  process.exit(1);
});
