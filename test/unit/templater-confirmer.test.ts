// The generation confirmer against a real local HTTP server standing in for nginx's
// /_dockside/generation location.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import { generationConfirmer } from "../../services/templater/src/apply/nginx.ts";

describe("generation confirmer", async () => {
  let answer = "old";
  let requests = 0;
  const sockets = new Set<unknown>();
  const server = http.createServer((req, res) => {
    requests++;
    sockets.add(req.socket);
    res.end(`${answer}\n`);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/_dockside/generation`;
  after(() => new Promise<void>((r) => server.close(() => r())));

  it("resolves true once nginx answers with the generation, asking on a fresh connection each time", async () => {
    answer = "old";
    const from = requests;
    sockets.clear();
    setTimeout(() => (answer = "new"), 100);
    assert.equal(await generationConfirmer(url, 30_000).confirm("new"), true);
    assert.ok(requests - from >= 2, `asked ${requests - from} times`);
    assert.equal(sockets.size, requests - from, "one connection per question");
  });

  it("resolves false when the deadline passes without the generation", async () => {
    answer = "old";
    assert.equal(await generationConfirmer(url, 200).confirm("new"), false);
  });

  it("stops asking as soon as nginx is no longer alive", async () => {
    answer = "old";
    const from = requests;
    assert.equal(await generationConfirmer(url, 30_000).confirm("new", () => requests - from < 3), false);
    assert.equal(requests - from, 3);
  });

  it("keeps asking while nothing listens yet, and confirms once it does", async () => {
    const idle = http.createServer((_q, s) => s.end("late\n"));
    await new Promise<void>((r) => idle.listen(0, "127.0.0.1", r));
    const port = (idle.address() as AddressInfo).port;
    await new Promise<void>((r) => idle.close(() => r()));
    const confirming = generationConfirmer(`http://127.0.0.1:${port}/`, 30_000).confirm("late");
    setTimeout(() => idle.listen(port, "127.0.0.1"), 200);
    try {
      assert.equal(await confirming, true);
    } finally {
      idle.close();
    }
  });

  it("with no URL there is nothing to ask: confirmed", async () => {
    assert.equal(await generationConfirmer(null, 10).confirm("x"), true);
  });
});
