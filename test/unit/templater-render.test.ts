// Rendering: the default templates, the helpers, template errors with file and line, and
// property tests that no value from Consul can change the structure of the rendered config.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import type {
  CatalogSnapshot,
  ConsulService,
  HealthStatus,
} from "../../services/templater/src/core/catalog.ts";
import type { TemplateError } from "../../services/templater/src/core/render.ts";
import {
  compileTemplate,
  generationPlaceholder,
  renderAll,
  seal,
  type EdgeContext,
  type RenderedFile,
} from "../../services/templater/src/core/render.ts";
import { buildView, type View } from "../../services/templater/src/core/view.ts";
import { parseNginx, walk } from "../helpers/nginx-syntax.ts";

const root = path.resolve(import.meta.dirname, "..", "..");
const edge: EdgeContext = { listenPort: 8080, opsPort: 9102, hostDomain: "localhost", routeTag: "http" };
const defaults = [
  { source: path.join(root, "deploy/nginx/templates/nginx.conf.hbs"), dest: "nginx.conf" },
  { source: path.join(root, "deploy/nginx/templates/services.conf.hbs"), dest: "services.conf" },
].map((spec) => compileTemplate(spec, readFileSync(spec.source, "utf8")));

function render(view: View, templates = defaults): RenderedFile[] {
  return seal(renderAll(templates, { services: view.services, edge, generation: generationPlaceholder }))
    .files;
}
const file = (files: RenderedFile[], dest: string) => files.find((f) => f.dest === dest)!.content;
const svc = (
  id: string,
  name: string,
  address: string,
  over: Partial<ConsulService> = {},
): ConsulService => ({
  ID: id,
  Service: name,
  Tags: ["http"],
  Address: address,
  Port: 8080,
  Meta: {},
  ...over,
});
const viewOf = (services: ConsulService[], checks: CatalogSnapshot["checks"] = []) =>
  buildView(
    { nodes: [{ node: "n1", address: "10.0.0.254", services }], checks, observedAt: 0 },
    { routeTag: "http", statuses: ["passing"] },
  );

describe("default templates", () => {
  const built = viewOf(
    [svc("web-1", "web", "10.0.0.1"), svc("web-2", "web", "fd00::2"), svc("api-1", "api", "10.0.0.3")],
    [{ Node: "n1", CheckID: "c", Status: "critical", ServiceID: "api-1" }],
  );
  const files = render(built.view);
  const services = parseNginx(file(files, "services.conf"));

  it("renders an upstream with keepalive for each service with instances", () => {
    const upstreams = services.filter((d) => d.name === "upstream");
    assert.deepEqual(
      upstreams.map((u) => u.args),
      [["svc_web"]],
    );
    const body = upstreams[0]!.block!;
    assert.deepEqual(
      body.filter((d) => d.name === "server").map((d) => d.args[0]),
      ["10.0.0.1:8080", "[fd00::2]:8080"],
    );
    assert.deepEqual(body.find((d) => d.name === "keepalive_timeout")!.args, ["4s"]);
  });

  it("routes by path prefix (stripped) and by host; a service without instances answers 503", () => {
    const main = services.find(
      (d) =>
        d.name === "server" && d.block!.some((x) => x.name === "listen" && x.args.includes("default_server")),
    )!;
    const web = main.block!.find((d) => d.name === "location" && d.args[0] === "/web/")!;
    assert.deepEqual(web.block!.find((d) => d.name === "proxy_pass")!.args, ["http://svc_web/"]);
    const api = main.block!.find((d) => d.name === "location" && d.args[0] === "/api/")!;
    assert.deepEqual(api.block!.find((d) => d.name === "return")!.args[0], "503");
    const hosts = services
      .filter((d) => d.name === "server" && d !== main)
      .map((s) => s.block!.find((d) => d.name === "server_name")!.args[0]);
    assert.deepEqual(hosts, ["api.localhost", "web.localhost"]);
  });

  it("serves its generation id, and sets up keep-alive and retries as agreed", () => {
    const gen = [...walk(services)].find(
      (d) => d.name === "location" && d.args[1] === "/_dockside/generation",
    )!;
    const id = seal(
      renderAll(defaults, { services: built.view.services, edge, generation: generationPlaceholder }),
    ).id;
    assert.deepEqual(gen.block!.find((d) => d.name === "return")!.args, ["200", `${id}\n`]);
    const http = parseNginx(file(files, "nginx.conf")).find((d) => d.name === "http")!.block!;
    const arg = (name: string) => http.find((d) => d.name === name)?.args;
    assert.deepEqual(arg("keepalive_min_timeout"), ["3s"]);
    assert.deepEqual(arg("proxy_http_version"), ["1.1"]);
    assert.deepEqual(arg("proxy_next_upstream"), ["error", "timeout", "http_502", "http_503", "http_504"]);
    assert.ok(!arg("proxy_next_upstream")!.includes("non_idempotent"));
    assert.deepEqual(http.find((d) => d.name === "proxy_set_header" && d.args[0] === "Connection")!.args, [
      "Connection",
      "$dockside_connection",
    ]);
    assert.deepEqual(arg("include"), ["services.conf"]);
  });

  it("renders byte-identical output for equal catalogs, and another id for another one", () => {
    const again = render(
      viewOf(
        [svc("web-2", "web", "fd00::2"), svc("api-1", "api", "10.0.0.3"), svc("web-1", "web", "10.0.0.1")],
        [{ Node: "n1", CheckID: "c", Status: "critical", ServiceID: "api-1" }],
      ).view,
    );
    assert.deepEqual(again, files);
    assert.notDeepEqual(render(viewOf([svc("web-1", "web", "10.0.0.1")]).view), files);
    assert.ok(!files.some((f) => f.content.includes(generationPlaceholder)));
  });

  it("renders a config with no services at all", () => {
    const empty = parseNginx(file(render({ services: [] }), "services.conf"));
    assert.equal(empty.filter((d) => d.name === "upstream").length, 0);
    assert.equal(empty.filter((d) => d.name === "server").length, 1);
  });
});

describe("helpers", () => {
  const t = (text: string) => compileTemplate({ source: "/t/probe.hbs", dest: "probe.conf" }, text);
  const run = (text: string, view: View) =>
    t(text).render({ services: view.services, edge, generation: "g" });
  const v = viewOf([
    svc("w1", "web", "10.0.0.1", {
      Tags: ["http", "weight=5", "two words"],
      Meta: { timeout: "5s", note: "a b" },
    }),
  ]);

  it("server, hostPort, upstream, pathPrefix, hostName", () => {
    assert.equal(
      run(
        "{{#each services}}{{upstream this}} {{pathPrefix this}} {{hostName this}}{{#each instances}} {{hostPort this}} {{server this weight=2 backup=true}}{{/each}}{{/each}}",
        v.view,
      ),
      "svc_web /web/ web.localhost 10.0.0.1:8080 server 10.0.0.1:8080 backup weight=2;",
    );
  });

  it("tag and meta lookups print safe values or the default", () => {
    assert.equal(
      run(
        '{{#each services}}{{#each instances}}{{tagValue this "weight" 1}} {{tagValue this "nope" 1}} {{meta this "timeout" "1s"}} {{meta this "note"}} {{meta this "nope" "d"}} {{#if (hasTag this "http")}}T{{/if}}{{/each}}{{/each}}',
        v.view,
      ),
      '5 1 5s "a b" d T',
    );
    assert.equal(run('{{quote "a\\"b"}} {{#if (eq 1 1)}}y{{/if}}', v.view), '"a\\"b" y');
  });

  it("refuse values that are not what they expect, naming the line", () => {
    assert.throws(
      () => run('line1\n{{server "evil;"}}', v.view),
      (err: TemplateError) => {
        assert.equal(err.file, "/t/probe.hbs");
        assert.equal(err.line, 2);
        return /server: expects an instance/.test(err.message);
      },
    );
    assert.throws(
      () => run('{{#each services}}{{#each instances}}{{server this p="a;b"}}{{/each}}{{/each}}', v.view),
      /not safe/,
    );
  });
});

describe("template errors name the file and line", () => {
  const spec = { source: "/etc/dockside/templates/bad.hbs", dest: "bad.conf" };
  it("a syntax error", () => {
    assert.throws(
      () => compileTemplate(spec, "ok\nupstream {\n{{#each services}\n"),
      (err: TemplateError) => {
        assert.equal(err.file, spec.source);
        assert.equal(err.line, 3);
        assert.match(err.message, /^\/etc\/dockside\/templates\/bad\.hbs:3: Parse error/);
        return true;
      },
    );
  });
  it("mismatched blocks and unknown helpers", () => {
    assert.throws(
      () => compileTemplate(spec, "a\nb {{#each x}}\n{{/if}}"),
      /bad\.hbs:2: each doesn't match if/,
    );
    assert.throws(
      () => compileTemplate(spec, "a\n\n{{upstreem this}}"),
      /bad\.hbs:3: .*unknown helper upstreem/,
    );
  });
});

// ---- property tests: hostile catalogs ------------------------------------------------------

const attack = [
  "\n",
  "\r",
  ";",
  "{",
  "}",
  '"',
  "'",
  "$",
  "#",
  "\\",
  " ",
  "\t",
  "`",
  "(",
  ")",
  "${x}",
  "*/",
  "<!--",
];
/**
 * Every hostile string carries EVIL (so a leak is easy to find) and at least one character
 * that is unsafe in a bare nginx word (so no hostile string is also a valid name).
 */
const hostile = fc
  .tuple(
    fc.oneof(
      fc
        .array(fc.constantFrom(...attack, "server 6.6.6.6:1", "}; server { listen 80; }", "a", "."), {
          maxLength: 10,
        })
        .map((a) => a.join("")),
      fc.string({ unit: "binary", maxLength: 30 }),
      fc.string({ minLength: 300, maxLength: 2000 }),
    ),
    fc.constantFrom(...attack),
  )
  .map(([payload, bad]) => `EVIL${payload}${bad}`);
const name = fc.oneof(hostile, fc.constantFrom("web", "api", "a.b", "x-y"));
const addr = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  hostile,
  fc.constantFrom("evil.example.com", "1.2.3.4; server 6.6.6.6"),
);
const port = fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.integer(), hostile);
const consulService = fc.record({
  ID: fc.oneof(hostile, fc.uuid()),
  Service: name,
  Tags: fc
    .array(fc.oneof(hostile, fc.constantFrom("v1", "weight=3")), { maxLength: 4 })
    .map((t) => ["http", ...t]),
  Address: addr,
  Port: port,
  Meta: fc.dictionary(
    fc.oneof(fc.constantFrom("timeout", "note"), hostile),
    fc.oneof(hostile, fc.constantFrom("5s", "a b")),
  ),
});
const catalog = fc.record({
  services: fc.array(consulService, { maxLength: 8 }),
  node: fc.oneof(fc.constant("node-1"), hostile),
  checks: fc.array(
    fc.record({
      Node: fc.constant("node-1"),
      CheckID: fc.string(),
      Status: fc.oneof(fc.constantFrom("passing", "critical"), hostile),
      ServiceID: fc.string(),
    }),
    { maxLength: 3 },
  ),
});

function hostileView(
  c: { services: unknown[]; node: string; checks: CatalogSnapshot["checks"] },
  statuses: HealthStatus[],
) {
  const snapshot = {
    nodes: [{ node: c.node, address: "10.0.0.254", services: c.services as ConsulService[] }],
    checks: c.checks,
    observedAt: 0,
  };
  return buildView(snapshot, { routeTag: "http", statuses });
}

describe("hostile values never change the rendered config's structure (property)", () => {
  it("default templates: valid syntax, the expected blocks, no hostile text", () => {
    fc.assert(
      fc.property(catalog, ({ services, node, checks }) => {
        const built = hostileView({ services, node, checks }, ["passing"]);
        const files = render(built.view);
        for (const f of files) {
          parseNginx(f.content);
          assert.ok(!f.content.includes("EVIL"), `a hostile value reached ${f.dest}`);
        }
        const conf = parseNginx(file(files, "services.conf"));
        const top = conf.map((d) => d.name);
        assert.ok(top.every((n) => n === "upstream" || n === "server"));
        const withInstances = built.view.services.filter((s) => s.instances.length > 0);
        assert.deepEqual(
          conf.filter((d) => d.name === "upstream").map((d) => d.args[0]),
          withInstances.map((s) => `svc_${s.name}`),
        );
        for (const u of conf.filter((d) => d.name === "upstream")) {
          for (const d of u.block!) {
            assert.ok(
              ["server", "keepalive", "keepalive_timeout", "keepalive_requests"].includes(d.name),
              d.name,
            );
            if (d.name === "server") assert.match(d.args[0]!, /^(\d+\.\d+\.\d+\.\d+|\[[0-9a-f:.]+\]):\d+$/);
          }
        }
        assert.equal(conf.filter((d) => d.name === "server").length, built.view.services.length + 1);
      }),
      { numRuns: 300 },
    );
  });

  it("a template printing every value: each value stays one word in its own directive", () => {
    const probe = compileTemplate(
      { source: "/t/probe.hbs", dest: "probe.conf" },
      `{{#each services}}svc {{name}} {
  tags{{#each tags}} {{this}}{{/each}};
{{#each meta}}  meta {{@key}} {{this}};
{{/each}}{{#each instances}}  inst {{id}} {{node}} {{address}} {{port}} {{status}} {{hostPort this}} {{meta this "note" "-"}} {{tagValue this "weight" "-"}}{{#each tags}} {{this}}{{/each}};
{{#each meta}}  imeta {{@key}} {{this}};
{{/each}}{{/each}}
}
{{/each}}`,
    );
    fc.assert(
      fc.property(catalog, ({ services, node, checks }) => {
        const built = hostileView({ services, node, checks }, ["passing", "critical"]);
        const parsed = parseNginx(probe.render({ services: built.view.services, edge, generation: "g" }));
        assert.equal(parsed.length, built.view.services.length);
        parsed.forEach((block, i) => {
          const s = built.view.services[i]!;
          assert.deepEqual(block.args, [s.name]);
          assert.equal(block.block!.find((d) => d.name === "tags")!.args.length, s.tags.length);
          const insts = block.block!.filter((d) => d.name === "inst");
          assert.equal(insts.length, s.instances.length);
          insts.forEach((d, j) => assert.equal(d.args.length, 8 + s.instances[j]!.tags.length));
          for (const d of block.block!.filter((d) => d.name === "meta" || d.name === "imeta"))
            assert.equal(d.args.length, 2);
        });
      }),
      { numRuns: 300 },
    );
  });
});
