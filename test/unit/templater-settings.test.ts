// Templater settings: defaults the lab relies on, template pairs, combinations that cannot work.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { readSettings } from "../../lib/config.ts";
import {
  checkSettings,
  confirmUrlOf,
  parseTemplatePairs,
  templaterSettings,
} from "../../services/templater/src/settings.ts";

const read = (argv: string[] = [], env: Record<string, string> = {}) =>
  readSettings(templaterSettings, argv, env);

describe("templater settings", () => {
  it("defaults are the edge image's layout and the agreed contracts", () => {
    const s = read();
    assert.deepEqual(s.templates, [
      { source: "/etc/dockside/templates/nginx.conf.hbs", dest: "nginx.conf" },
      { source: "/etc/dockside/templates/services.conf.hbs", dest: "services.conf" },
    ]);
    assert.equal(s.outputDir, "/var/lib/dockside/nginx");
    assert.equal(s.routeTag, "http");
    assert.deepEqual(s.statuses, ["passing"]);
    assert.equal(s.mode, "exec");
    assert.equal(s.waitMin, 100);
    assert.equal(s.waitMax, 1000);
    assert.equal(s.listenPort, 8080);
    assert.equal(s.opsPort, 9102);
    assert.equal(s.consulAddr, "127.0.0.1:8500");
    assert.equal(s.consulWait, 60_000);
    assert.equal(s.consulServiceWait, 300_000);
    assert.equal(confirmUrlOf(s), "http://127.0.0.1:8080/_dockside/generation");
    checkSettings(s);
  });

  it("reads flags and variables", () => {
    const s = read(["--wait-min", "250ms", "--once"], {
      TEMPLATER_ROUTE_TAG: "web",
      TEMPLATER_STATUSES: "passing,warning",
      CONSUL_HTTP_ADDR: "consul:8500",
      TEMPLATER_CONSUL_SERVICE_WAIT: "10m",
    });
    assert.equal(s.consulServiceWait, 600_000);
    assert.equal(s.waitMin, 250);
    assert.equal(s.once, true);
    assert.equal(s.routeTag, "web");
    assert.deepEqual(s.statuses, ["passing", "warning"]);
    assert.equal(s.consulAddr, "consul:8500");
  });

  it("the README documents every flag and variable", () => {
    const readme = readFileSync(
      path.join(import.meta.dirname, "..", "..", "services", "templater", "README.md"),
      "utf8",
    );
    for (const s of Object.values(templaterSettings)) {
      assert.ok(readme.includes(`\`--${s.flag}\``), `--${s.flag} missing from README`);
      if (s.env) assert.ok(readme.includes(`\`${s.env}\``), `${s.env} missing from README`);
    }
  });

  it("template pairs: source:dest, dest relative and inside the output directory, no dest twice", () => {
    assert.deepEqual(parseTemplatePairs("/a/x.hbs:conf.d/x.conf, /a/y.hbs:y.conf"), [
      { source: "/a/x.hbs", dest: "conf.d/x.conf" },
      { source: "/a/y.hbs", dest: "y.conf" },
    ]);
    assert.throws(() => parseTemplatePairs("/a/x.hbs"), /not source:dest/);
    assert.throws(() => parseTemplatePairs("/a/x.hbs:/etc/nginx/x.conf"), /relative path/);
    assert.throws(() => parseTemplatePairs("/a/x.hbs:../x.conf"), /relative path/);
    assert.throws(
      () => parseTemplatePairs("/a/x.hbs:x.conf,/a/y.hbs:./x.conf"),
      /two templates write x\.conf/,
    );
    assert.throws(() => read(["--template", "nope"]), /invalid --template/);
  });

  it("refuses settings that cannot work together, naming them", () => {
    assert.throws(() => checkSettings(read(["--mode", "command"])), /--reload-command/);
    checkSettings(read(["--mode", "command", "--reload-command", "nginx -s reload"]));
    assert.throws(() => checkSettings(read(["--main-config", "other.conf"])), /--main-config other\.conf/);
    assert.throws(() => checkSettings(read(["--wait-min", "2s", "--wait-max", "1s"])), /--wait-max/);
    assert.throws(() => read(["--statuses", "passing,bogus"]), /invalid --statuses/);
    assert.throws(() => read(["--host-domain", "bad domain"]), /not a DNS domain/);
    assert.throws(() => read(["--confirm-url", "https://x/"]), /only http/);
  });

  it("the confirmation URL: auto in exec mode, off in command mode, or explicit", () => {
    assert.equal(confirmUrlOf(read(["--mode", "command", "--reload-command", "x"])), null);
    assert.equal(confirmUrlOf(read(["--confirm-url", "off"])), null);
    assert.equal(confirmUrlOf(read(["--listen-port", "80"])), "http://127.0.0.1:80/_dockside/generation");
    assert.equal(
      confirmUrlOf(read(["--confirm-url", "http://edge:8080/_dockside/generation"])),
      "http://edge:8080/_dockside/generation",
    );
  });
});
