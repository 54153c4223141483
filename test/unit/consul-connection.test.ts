// lib/consul-client.ts checkConsulConnection: every bad TLS setting stops the service at
// start-up with the setting's name (a ConfigError: exit 2, no stack trace).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ConfigError } from "../../lib/config.ts";
import { checkConsulConnection, type ConsulConnection } from "../../lib/consul-client.ts";
import { consulConnection } from "../helpers/consul-connection.ts";

const base = consulConnection({ consulAddr: "https://consul:8501" });

describe("checkConsulConnection", () => {
  let dir: string;
  const f = (name: string) => path.join(dir, name);
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "dockside-tls-"));
    // A CA-less self-signed pair and a second key that does not match it (openssl, as Consul's docs do).
    const ssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
    ssl(
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-subj",
      "/CN=client",
      "-days",
      "1",
      "-keyout",
      f("key.pem"),
      "-out",
      f("cert.pem"),
    );
    ssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f("other-key.pem"));
    writeFileSync(f("junk.pem"), "not a certificate\n");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const fails = (c: Partial<ConsulConnection>, names: RegExp) =>
    assert.throws(
      () => checkConsulConnection({ ...base, ...c }),
      (e: unknown) => e instanceof ConfigError && names.test(e.message),
    );

  it("accepts good files, and plain http without TLS files", () => {
    assert.deepEqual(
      checkConsulConnection({
        ...base,
        consulCaCert: f("cert.pem"),
        consulClientCert: f("cert.pem"),
        consulClientKey: f("key.pem"),
      }),
      [],
    );
    assert.deepEqual(checkConsulConnection({ ...base, consulAddr: "consul:8500" }), []);
  });

  it("names the setting of a missing, unreadable or non-PEM file", () => {
    fails(
      { consulCaCert: f("nope.pem") },
      /^CONSUL_CACERT \(--consul-cacert\): cannot read .*nope\.pem: no such file$/,
    );
    fails({ consulCaCert: f("junk.pem") }, /^CONSUL_CACERT .*holds no PEM certificate/);
    fails(
      { consulClientCert: f("cert.pem"), consulClientKey: f("cert.pem") },
      /^CONSUL_CLIENT_KEY .*holds no PEM private key/,
    );
  });

  it("a certificate without its key, or the reverse, or a key of another certificate", () => {
    fails(
      { consulClientCert: f("cert.pem") },
      /CONSUL_CLIENT_CERT .* is set but CONSUL_CLIENT_KEY .* is not/,
    );
    fails({ consulClientKey: f("key.pem") }, /CONSUL_CLIENT_KEY .* is set but CONSUL_CLIENT_CERT .* is not/);
    fails(
      { consulClientCert: f("cert.pem"), consulClientKey: f("other-key.pem") },
      /^CONSUL_CLIENT_KEY .*cannot be used together/,
    );
  });

  it("TLS files with an address that would use http", () => {
    fails(
      { consulAddr: "consul:8500", consulCaCert: f("cert.pem") },
      /CONSUL_CACERT .* is set but CONSUL_HTTP_ADDR .*=consul:8500 would use plain http.*CONSUL_HTTP_SSL/,
    );
    fails(
      { consulAddr: "http://consul:8500", consulClientCert: f("cert.pem"), consulClientKey: f("key.pem") },
      /CONSUL_CLIENT_CERT .* would use plain http/,
    );
    assert.deepEqual(
      checkConsulConnection({
        ...base,
        consulAddr: "consul:8501",
        consulSsl: true,
        consulCaCert: f("cert.pem"),
      }),
      [],
    );
  });

  it("warns when verification is off", () => {
    const [w] = checkConsulConnection({ ...base, consulSslVerify: false });
    assert.match(
      w!,
      /^CONSUL_HTTP_SSL_VERIFY \(--consul-ssl-verify\)=false: Consul's certificate is not verified/,
    );
  });
});
