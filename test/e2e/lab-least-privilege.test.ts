// The lab's least privilege and network scope (issue 10 items 1–2, issue 9 item 8), on its own
// compose project: the registrator reads Docker only through the allow-list socket proxy and
// still registers and deregisters; from another container on the proxy's network, writes,
// /exec and /archive are refused; registrator and proxy run with no capabilities and a
// read-only root (every lab service does); a plain `docker run --network <lab network>` with
// SERVICE_NAME is registered and routed.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { demux, docker, requireDocker, uniqueName } from "../helpers/docker.ts";
import { images } from "../helpers/images.ts";
import { testLab } from "../helpers/lab.ts";
import { waitFor } from "../helpers/wait.ts";

const lab = testLab("dockside-test-lp");
const labNet = `${lab.project}_default`;
const apiNet = `${lab.project}_docker-api`;
const extra: string[] = [];
let edge: string;
let consulUrl: string;

async function consulIds(service: string): Promise<string[]> {
  const res = await fetch(`${consulUrl}/v1/catalog/service/${service}`);
  return ((await res.json()) as { ServiceID: string }[]).map((e) => e.ServiceID).sort();
}

/** Runs busybox on `network` with a shell script; returns its output. */
async function runOn(network: string, script: string): Promise<string> {
  const name = uniqueName("dockside-lp-probe");
  const c = await docker.createContainer({
    name,
    Image: images().busybox,
    Cmd: ["sh", "-c", script],
    Labels: { "dockside.test": "1" },
    HostConfig: { NetworkMode: network },
  });
  extra.push(c.id);
  await c.start();
  await c.wait();
  return demux((await c.logs({ stdout: true, stderr: true })) as unknown as Buffer).all;
}

function procStatus(pid: number): { capEff: string; uid: string } {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  return { capEff: /CapEff:\s+(\S+)/.exec(s)![1]!, uid: /Uid:\s+(\d+)/.exec(s)![1]! };
}

describe("the lab's least privilege", { timeout: 600_000 }, () => {
  before(async () => {
    await requireDocker();
    await lab.up();
    edge = `http://${await lab.port("edge", 8080)}`;
    consulUrl = `http://${await lab.port("consul", 8500)}`;
  });
  after(
    async () => {
      for (const id of extra)
        await docker
          .getContainer(id)
          .remove({ force: true })
          .catch(() => {});
      await lab.down();
    },
    { timeout: 120_000 },
  );

  it("every service: no capabilities, read-only root, no new privileges, not root; Consul on loopback only", async () => {
    for (const c of await lab.containers()) {
      const info = await docker.getContainer(c.id).inspect();
      const { capEff, uid } = procStatus(info.State.Pid);
      assert.equal(Number.parseInt(capEff, 16), 0, `${c.service}: CapEff ${capEff}`);
      assert.notEqual(uid, "0", `${c.service} runs as root`);
      assert.equal(info.HostConfig.ReadonlyRootfs, true, `${c.service}: read-only root`);
      assert.ok(
        info.HostConfig.SecurityOpt?.some((o: string) => /^no-new-privileges/.test(o)),
        `${c.service}`,
      );
      assert.ok(
        !(info.HostConfig.Binds ?? []).some((b) => b.includes("docker.sock")) || c.service === "docker-proxy",
        `${c.service} mounts the Docker socket`,
      );
    }
    const consul = await docker.getContainer((await lab.running("consul"))[0]!.id).inspect();
    assert.deepEqual(
      consul.HostConfig.PortBindings["8500/tcp"]?.map((b: { HostIp: string }) => b.HostIp),
      ["127.0.0.1"],
    );
  });

  it("through the proxy, the registrator registers and deregisters", async () => {
    await waitFor(async () => (await consulIds("web")).length === 3, { what: "3 web instances" });
    await lab.scale({ web: 4 });
    await waitFor(async () => (await consulIds("web")).length === 4, { what: "4 web instances" });
    await lab.scale({ web: 2 });
    await waitFor(async () => (await consulIds("web")).length === 2, { what: "2 web instances" });
    const reg = await docker.getContainer((await lab.running("registrator"))[0]!.id).inspect();
    assert.ok(reg.Config.Env.includes("DOCKER_HOST=tcp://docker-proxy:2375"));
  });

  it("from the proxy's network: reads pass; create, exec, archive, DELETE and upgrades are refused", async () => {
    const web = (await lab.running("web"))[0]!.id;
    const out = await runOn(
      apiNet,
      [
        "p=http://docker-proxy:2375",
        // busybox wget: -S prints the status line; exit status 1 on an error answer.
        `st() { wget -q -S -O /dev/null "$@" 2>&1 | sed -n 's/^ *HTTP\\/1.[01] \\([0-9]*\\).*/\\1/p' | tail -1; }`,
        'echo "list $(st $p/containers/json)"',
        'echo "ping $(st $p/v1.41/_ping)"',
        'echo "create $(st --post-data "{}" --header "Content-Type: application/json" $p/containers/create)"',
        `echo "exec $(st --post-data "{}" --header "Content-Type: application/json" $p/containers/${web}/exec)"`,
        `echo "archive $(st "$p/containers/${web}/archive?path=/")"`,
        `echo "export $(st $p/containers/${web}/export)"`,
        `echo "upgrade $(st --header "Upgrade: tcp" --header "Connection: Upgrade" $p/containers/${web}/json)"`,
        `echo "dotdot $(st $p/containers/../containers/${web}/json)"`,
        // busybox wget sends no DELETE: the request by hand, the status from its first line.
        `echo "delete $(printf 'DELETE /containers/${web}?force=1 HTTP/1.0\\r\\nHost: docker-proxy\\r\\n\\r\\n' | nc -w 5 docker-proxy 2375 | sed -n '1s/^HTTP\\/1.[01] \\([0-9]*\\).*/\\1/p')"`,
      ].join("\n"),
    );
    const status = Object.fromEntries(
      out
        .trim()
        .split("\n")
        .map((l) => l.split(" ") as [string, string]),
    );
    assert.equal(status.list, "200", out);
    assert.equal(status.ping, "200", out);
    for (const k of ["create", "exec", "archive", "export", "upgrade", "delete"])
      assert.equal(status[k], "403", `${k}: ${out}`);
    assert.notEqual(status.dotdot, "200", out);
    assert.equal(
      (await docker.getContainer(web).inspect()).State.Running,
      true,
      "the DELETE removed nothing",
    );
  });

  it("a plain docker run on the lab network with SERVICE_NAME is registered and routed at /hello/", async () => {
    const name = uniqueName("dockside-lp-hello");
    const c = await docker.createContainer({
      name,
      Hostname: name.slice(0, 63),
      Image: images().busybox,
      Cmd: [
        "sh",
        "-c",
        "mkdir -p /www && echo hello > /www/index.html; trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait",
      ],
      Labels: { "dockside.test": "1", SERVICE_NAME: "hello", SERVICE_TAGS: "http" },
      ExposedPorts: { "8080/tcp": {} },
      HostConfig: { NetworkMode: labNet },
    });
    extra.push(c.id);
    await c.start();
    await waitFor(async () => (await consulIds("hello")).length === 1, {
      what: "hello in Consul",
      timeoutMs: 15_000,
    });
    const body = await waitFor(
      async () => {
        const res = await fetch(`${edge}/hello/`);
        const text = await res.text();
        return res.status === 200 && text.trim() === "hello" ? text : undefined;
      },
      { what: "hello routed by the edge", timeoutMs: 30_000 },
    );
    assert.equal(body!.trim(), "hello");
    // And a container elsewhere is not the lab's, whatever its labels say.
    const other = await docker.createContainer({
      name: uniqueName("dockside-lp-other"),
      Image: images().busybox,
      Cmd: ["sleep", "30"],
      Labels: { "dockside.test": "1", SERVICE_NAME: "not-the-labs" },
      ExposedPorts: { "8080/tcp": {} },
    });
    extra.push(other.id);
    await other.start();
    await c.stop({ t: 1 });
    await waitFor(async () => (await consulIds("hello")).length === 0, { what: "hello deregistered" });
    assert.deepEqual(await consulIds("not-the-labs"), []);
  });
});
