// TLS, mutual TLS and tokens against a real server, with certificates made at test
// time by the repository's own maker (target/debug/evenire-test-certs).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  EvenireClient,
  PermissionDeniedError,
  UnauthenticatedError,
  jsonEvent,
  newStream,
} from "../src/index.js";
import { repo, startServer, stopServer, type RunningServer } from "./server.js";

const tokens: Record<string, string> = { writer: "write", reader: "read" };
const files = mkdtempSync(join(tmpdir(), "evenire-ts-tls-"));
let server: RunningServer;

before(async () => {
  const maker =
    process.env.EVENIRE_TEST_CERTS_BIN ?? join(repo, "target", "debug", "evenire-test-certs");
  execFileSync(maker, [files]);
  const entries = Object.entries(tokens).map(
    ([name, role]) =>
      `[[token]]\nname = "${name}"\nsha256 = "${createHash("sha256").update(name).digest("hex")}"\nrole = "${role}"\n`,
  );
  writeFileSync(join(files, "tokens.toml"), entries.join("\n"));
  server = await startServer([
    "--tls-cert", join(files, "server.crt"),
    "--tls-key", join(files, "server.key"),
    "--tls-client-ca", join(files, "ca.pem"),
    "--auth-tokens", join(files, "tokens.toml"),
  ]);
});

after(async () => {
  await stopServer(server);
});

function connect(token?: string): EvenireClient {
  return new EvenireClient(`https://${server.address}`, {
    ca: readFileSync(join(files, "ca.pem")),
    cert: readFileSync(join(files, "client.crt")),
    key: readFileSync(join(files, "client.key")),
    token,
  });
}

test("a token over mutual TLS appends and reads", async () => {
  const client = connect("writer");
  const order = newStream("order");
  await client.append(order, [jsonEvent("Placed", { total: 42 })], "no_stream");
  const info = await client.getStream(order);
  assert.equal(info.version, 0n);
});

test("no token or an unknown one is unauthenticated", async () => {
  for (const token of [undefined, "not-a-token"]) {
    await assert.rejects(connect(token).getStream(newStream("order")), UnauthenticatedError);
  }
});

test("a role short of the call is denied, naming the role", async () => {
  await assert.rejects(
    connect("reader").append(newStream("order"), [jsonEvent("Placed", {})]),
    (error: unknown) => error instanceof PermissionDeniedError && error.message.includes("`write` role"),
  );
});

test("TLS settings with an http:// address are refused", () => {
  assert.throws(() => new EvenireClient("http://127.0.0.1:1", { ca: "" }), /https:\/\//);
});
