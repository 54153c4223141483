// The status page in a real browser (Debian's chromium driven by playwright-core): while `web`
// scales 3→6, the page shows the new instances and their request counts (counted in nginx)
// within a second, without being reloaded. A screenshot is kept in .cache/artifacts/.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { before, describe, it } from "node:test";
import { chromium, type BrowserContext } from "playwright-core";
import { registerInstance, startConsul, type ConsulHandle } from "../helpers/consul.ts";
import { containerIp, createNetwork, type TestNetwork } from "../helpers/docker.ts";
import { startEdge, type EdgeHandle } from "../helpers/edge.ts";
import { repoRoot } from "../helpers/images.ts";
import { startLoad } from "../helpers/load.ts";
import { testScope } from "../helpers/scope.ts";
import { waitFor } from "../helpers/wait.ts";
import { createWorkload, type Workload } from "../helpers/workload.ts";

const chromiumPath = "/usr/bin/chromium";

describe("the status page in a browser", { timeout: 300_000 }, () => {
  const scope = testScope();
  let network: TestNetwork;
  let consul: ConsulHandle;
  let edge: EdgeHandle;
  let workloads: Workload[];
  let ips: string[];
  let browser: BrowserContext;

  const register = (i: number) =>
    registerInstance(consul.client, { id: `web-${i}`, name: "web", address: ips[i]! });

  before(async () => {
    assert.ok(existsSync(chromiumPath), `${chromiumPath} is missing: apt-get install -y chromium`);
    network = await createNetwork(scope);
    consul = await startConsul(scope, { network, alias: "consul" });
    workloads = await Promise.all(
      [0, 1, 2, 3, 4, 5].map(() => createWorkload(scope, { network: network.name })),
    );
    ips = await Promise.all(workloads.map((w) => containerIp(w.id, network.name)));
    edge = await startEdge(scope, { network });
    for (const i of [0, 1, 2]) await register(i);
    await waitFor(async () => (await fetch(`${edge.url}/web/`)).status === 200, { what: "/web/ routed" });
    const profile = mkdtempSync(path.join(os.tmpdir(), "dockside-chromium-"));
    scope.defer(`chromium profile ${profile}`, () => rmSync(profile, { recursive: true, force: true }));
    // a fresh profile (--user-data-dir, which playwright passes for a persistent context)
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    });
    scope.defer("chromium", () => browser.close());
  });

  it("shows instances coming and taking traffic while web scales 3→6, without a page reload", async () => {
    const page = await browser.newPage();
    let navigations = 0;
    page.on("framenavigated", (f) => {
      if (f === page.mainFrame()) navigations++;
    });
    await page.goto(`${edge.opsUrl}/`);
    const rows = () => page.locator("#live table tr td:nth-child(3)").allTextContents();
    assert.equal((await rows()).length, 3);
    const load = startLoad({ url: `${edge.url}/web/`, rate: 100, durationMs: 60_000 });
    try {
      // when the templater's status first lists all 6 as live peers (polled alongside the page)
      let pushedAt = 0;
      const poll = setInterval(() => {
        void edge.status().then((st) => {
          if (!pushedAt && st.services.find((x) => x.name === "web")?.upstream.length === 6)
            pushedAt = Date.now();
        });
      }, 20);
      for (const i of [3, 4, 5]) await register(i);
      // every new instance listed, with a request count above 0, on the page as it is
      const shown = async () => {
        const cells = await page
          .locator("#live table tr")
          .evaluateAll((trs) =>
            trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent ?? "")),
          );
        return ips.every((ip) =>
          cells.some((c) => c[2] === `${ip}:8080` && c[4] === "yes" && Number(c[6]) > 0),
        );
      };
      await waitFor(shown, {
        what: "6 instances with request counts on the page",
        timeoutMs: 15_000,
        intervalMs: 50,
      });
      const shownAt = Date.now();
      clearInterval(poll);
      assert.ok(pushedAt > 0, "the status listed 6 peers first");
      console.log(
        `status page showed all 6 instances with traffic ${shownAt - pushedAt} ms after they were live`,
      );
      // the page refreshes every second; a loaded machine gets some slack
      assert.ok(shownAt - pushedAt <= 1500, `${shownAt - pushedAt} ms`);
      assert.equal(navigations, 1, "the page was not reloaded");
      const dir = path.join(repoRoot, ".cache", "artifacts");
      mkdirSync(dir, { recursive: true });
      await page.screenshot({ path: path.join(dir, "status-page.png"), fullPage: true });
    } finally {
      await load.stop();
    }
  });
});
