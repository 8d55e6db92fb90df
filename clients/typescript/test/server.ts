// The real evenire-server (the binary cargo built) on 127.0.0.1:0, for the tests.

import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

// dist/test/ -> the repository root is four levels up.
export const repo = resolve(import.meta.dirname, "..", "..", "..", "..");
const binary = process.env.EVENIRE_SERVER_BIN ?? join(repo, "target", "debug", "evenire-server");

export interface RunningServer {
  process: ChildProcessWithoutNullStreams;
  /** host:port */
  address: string;
}

/** Starts the server with `args` and waits until it serves. */
export async function startServer(args: string[] = []): Promise<RunningServer> {
  const dataDir = mkdtempSync(join(tmpdir(), "evenire-ts-"));
  const server = spawn(binary, ["--listen", "127.0.0.1:0", "--data-dir", dataDir, ...args], {
    env: { ...process.env, RUST_LOG: "info" },
  });
  const lines = createInterface({ input: server.stderr });
  let address: string | undefined;
  for await (const line of lines) {
    address ??= line.split("listen=")[1]?.split(" ")[0];
    if (line.includes(" serving")) break;
  }
  assert.ok(address, "the server logs its address");
  server.stderr.resume();
  return { process: server, address };
}

/** SIGTERM, and a clean exit. */
export async function stopServer(server: RunningServer): Promise<void> {
  const exited = new Promise<number | null>((done) => server.process.once("exit", done));
  server.process.kill("SIGTERM");
  assert.equal(await exited, 0, "the server stops cleanly on SIGTERM");
}
