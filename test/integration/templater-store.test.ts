// The config store on a real filesystem: generations, the `current` symlink swap, clean-up.
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { silentLogger } from "../../lib/log.ts";
import { ConfigStore } from "../../services/templater/src/apply/config-store.ts";
import { seal } from "../../services/templater/src/core/render.ts";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), "dockside-store-"));
  dirs.push(d);
  return d;
}
const gen = (n: number) =>
  seal([
    { dest: "nginx.conf", content: `include conf.d/services.conf; # ${n}\n` },
    { dest: "conf.d/services.conf", content: `# services ${n}\n` },
  ]);
const store = (dir: string, keep = 3) =>
  new ConfigStore({ dir, main: "nginx.conf", keep, log: silentLogger });

describe("config store", () => {
  it("stages a generation, then makes it live by swapping a relative symlink inside the directory", async () => {
    const dir = tmp();
    const s = store(dir);
    await s.init();
    assert.equal(s.liveId, null);
    const g = gen(1);
    const staged = await s.stage(g);
    assert.match(path.basename(staged.dir), /^\.staging-/);
    assert.equal(readFileSync(path.join(staged.dir, "conf.d/services.conf"), "utf8"), "# services 1\n");
    assert.ok(!existsSync(path.join(dir, "current")), "not live before promote");
    assert.equal(await s.promote(staged), null);
    assert.equal(s.liveId, g.id);
    assert.equal(readlinkSync(path.join(dir, "current")), `generations/${g.id}`);
    assert.equal(s.liveMainPath, path.join(dir, "current", "nginx.conf"));
    assert.ok(!existsSync(staged.dir), "the staging directory became the generation");
  });

  it("promote, restore and prune", async () => {
    const dir = tmp();
    const s = store(dir, 2);
    await s.init();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const g = gen(i);
      ids.push(g.id);
      const prev = await s.promote(await s.stage(g));
      assert.equal(prev, i === 0 ? null : ids[i - 1]);
      await s.prune();
    }
    assert.equal(readlinkSync(path.join(dir, "current")), `generations/${ids[3]}`);
    assert.equal(
      readFileSync(path.join(dir, "current", "nginx.conf"), "utf8"),
      `include conf.d/services.conf; # 3\n`,
    );
    assert.deepEqual(readdirSync(path.join(dir, "generations")).sort(), [ids[2], ids[3]].sort(), "keeps 2");
    const g = gen(9);
    const prev = await s.promote(await s.stage(g));
    await s.restore(prev, g.id);
    assert.equal(s.liveId, ids[3]);
    assert.equal(readlinkSync(path.join(dir, "current")), `generations/${ids[3]}`);
    assert.ok(!readdirSync(path.join(dir, "generations")).includes(g.id));
    assert.deepEqual(
      readdirSync(dir).filter((e) => e.startsWith(".")),
      [],
      "no temporary files left",
    );
  });

  it("after a crash: removes staging leftovers and finds the live generation again", async () => {
    const dir = tmp();
    const first = store(dir);
    await first.init();
    const g = gen(1);
    await first.promote(await first.stage(g));
    await first.stage(gen(2)); // crashed before validating
    mkdirSync(path.join(dir, ".current-dead"));
    const again = store(dir);
    await again.init();
    assert.equal(again.liveId, g.id);
    assert.deepEqual(readdirSync(dir).sort(), ["current", "generations"]);
  });

  it("refuses a `current` that is a real directory, saying what to do", async () => {
    const dir = tmp();
    mkdirSync(path.join(dir, "current"));
    writeFileSync(path.join(dir, "current", "nginx.conf"), "");
    await assert.rejects(store(dir).init(), /exists and is not a symlink; move it away/);
  });
});
