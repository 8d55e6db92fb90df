// What the browser tests and the tail bench share: the real server binary as a child
// process, on 127.0.0.1:0, found by the addresses it logs once it serves.

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

/**
 * Runs `command` with `args` (the server, maybe behind taskset) and resolves with the
 * child and its gRPC and admin addresses once it logs both.
 */
export function startServer(command, args) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
    const found = {};
    createInterface({ input: child.stderr }).on("line", (line) => {
      const field = (name) => line.match(new RegExp(`(?:^|\\s)${name}=(\\S+)`))?.[1];
      found.grpc ??= field("listen");
      found.admin ??= field("admin_listen");
      if (found.grpc && found.admin) resolvePromise({ child, ...found });
    });
    child.on("exit", (code) => reject(new Error(`the server exited with ${code}`)));
  });
}

/**
 * Sends SIGTERM to a server started by `startServer` and resolves once it has exited, so
 * a caller may remove its data directory: the server writes there until it stops.
 */
export function stopServer(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolvePromise) => {
    child.once("exit", () => resolvePromise());
    child.kill("SIGTERM");
  });
}
