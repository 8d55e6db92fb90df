// The web admin in a real browser: Debian's Chromium driven by playwright-core (no
// browser is downloaded), against the real server binary with a log written by the
// real CLI. Screenshots of each page go to target/admin-screenshots/.
//
// EVENIRE_SERVER_BIN and EVENIRE_CLI_BIN name the binaries (default: target/debug);
// CHROMIUM the browser (default: /usr/bin/chromium).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const serverBin = process.env.EVENIRE_SERVER_BIN ?? join(root, "target/debug/evenire-server");
const cliBin = process.env.EVENIRE_CLI_BIN ?? join(root, "target/debug/evenire");
const shots = join(root, "target/admin-screenshots");

let server;
let dataDir;
let grpc;
let admin;
let browser;

/** Starts the server and resolves with its gRPC and admin addresses once it serves. */
function startServer(dir) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(serverBin, ["--listen", "127.0.0.1:0", "--data-dir", dir], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    const found = {};
    const lines = createInterface({ input: child.stderr });
    lines.on("line", (line) => {
      const field = (name) => line.match(new RegExp(`(?:^|\\s)${name}=(\\S+)`))?.[1];
      found.grpc ??= field("listen");
      found.admin ??= field("admin_listen");
      if (found.grpc && found.admin) resolvePromise({ child, ...found });
    });
    child.on("exit", (code) => reject(new Error(`the server exited with ${code}`)));
  });
}

/** Appends `count` events to `stream` (TYPE/KEY) with the CLI, in one call. */
function append(stream, count, type = "Recorded") {
  const file = join(dataDir, "..", `events-${stream.replace("/", "-")}.jsonl`);
  const lines = Array.from({ length: count }, (_, i) =>
    JSON.stringify({ type, data: { n: i, note: `event ${i} of ${stream}` } }),
  );
  writeFileSync(file, lines.join("\n") + "\n");
  execFileSync(cliBin, ["--server", `http://${grpc}`, "append", stream, "--jsonl", file]);
}

const orders = [
  "order/00000000-0000-4000-8000-000000000001",
  "order/00000000-0000-4000-8000-000000000002",
  "order/00000000-0000-4000-8000-000000000003",
];
const sensor = "sensor/10000000-0000-4000-8000-000000000001";

before(async () => {
  const work = mkdtempSync(join(tmpdir(), "evenire-admin-"));
  dataDir = join(work, "data");
  ({ child: server, grpc, admin } = await startServer(dataDir));
  append(orders[0], 45, "Placed");
  append(orders[1], 2, "Placed");
  append(orders[2], 1, "Placed");
  append(sensor, 3, "Reading");
  mkdirSync(shots, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    // As root (CI containers), Chromium's sandbox cannot start.
    args: ["--no-sandbox"],
  });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  if (dataDir) rmSync(dirname(dataDir), { recursive: true, force: true });
});

test("the streams page lists and filters", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`http://${admin}/`);
  const rows = page.locator("table.streams tbody tr");
  await rows.first().waitFor();
  assert.equal(await rows.count(), 4);
  assert.deepEqual(
    await page.locator("table.streams tbody td.key").allTextContents(),
    [...orders, sensor].map((s) => s.split("/")[1]),
  );
  await page.screenshot({ path: join(shots, "streams.png"), fullPage: true });

  await page.getByLabel("Type").fill("sensor");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForFunction(() => document.querySelectorAll("table.streams tbody tr").length === 1);
  assert.equal(await rows.locator("td").first().textContent(), "sensor");
  assert.match(page.url(), /#\/streams\?type=sensor$/);

  await page.getByLabel("Type").fill("");
  await page.getByLabel("Key starts with").fill("00000000-0000-4000-8000-00000000000");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForFunction(() => document.querySelectorAll("table.streams tbody tr").length === 3);
  await page.close();
});

test("a stream opens a page of events at a time, newest or oldest first", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`http://${admin}/`);
  await page.getByRole("link", { name: orders[0].split("/")[1] }).click();
  const versions = page.locator(".event header strong");
  await versions.first().waitFor();
  assert.equal(await page.locator(".info dd").nth(1).textContent(), "44", "its version");
  assert.equal(await versions.count(), 20);
  assert.equal(await versions.first().textContent(), "#44");
  // Data shown as the JSON it is.
  assert.match(await page.locator(".event pre.json").first().textContent(), /"note": "event 44 of/);
  await page.screenshot({ path: join(shots, "stream.png"), fullPage: true });

  await page.getByRole("button", { name: "Next page" }).click();
  await page.waitForFunction(() => document.querySelector(".event header strong")?.textContent === "#24");
  await page.getByRole("button", { name: "Next page" }).click();
  await page.waitForFunction(() => document.querySelector(".event header strong")?.textContent === "#4");
  assert.equal(await versions.count(), 5);
  assert.equal(await page.getByRole("button", { name: "Next page" }).isHidden(), true);
  await page.getByRole("button", { name: "Previous page" }).click();
  await page.waitForFunction(() => document.querySelector(".event header strong")?.textContent === "#24");

  await page.getByLabel("Order").selectOption("forward");
  await page.waitForFunction(() => document.querySelector(".event header strong")?.textContent === "#0");
  assert.equal(await versions.count(), 20);
  await page.close();
});

test("the page fits a phone's screen", async () => {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
  await page.goto(`http://${admin}/`);
  await page.locator("table.streams tbody tr").first().waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than the screen`);
  await page.screenshot({ path: join(shots, "streams-phone.png"), fullPage: true });
  await page.close();
});

test("an append shows in the live tail; a wrong expected version is refused with the actual one", async () => {
  const tail = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await tail.goto(`http://${admin}/#/tail`);
  await tail.getByLabel("Stream types").fill("order");
  await tail.getByRole("button", { name: "Follow" }).click();
  await tail.getByText("Caught up").waitFor();

  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const key = orders[1].split("/")[1];
  await page.goto(`http://${admin}/#/append?type=order&key=${key}`);
  await page.getByLabel("Event type").fill("Shipped");
  await page.getByLabel("Data (JSON)").fill("{not json");
  await page.getByRole("button", { name: "Append" }).click();
  await page.getByText("Data is not JSON").waitFor();

  await page.getByLabel("Data (JSON)").fill('{"carrier": "post"}');
  await page.getByLabel("Expected version", { exact: true }).first().selectOption("exact");
  await page.getByRole("spinbutton", { name: "Expected version" }).fill("7");
  await page.getByRole("button", { name: "Append" }).click();
  const refused = page.locator(".status.error");
  await refused.waitFor();
  assert.match(await refused.textContent(), /wrong expected version, the stream is at version 1\b/);
  await page.screenshot({ path: join(shots, "append-refused.png"), fullPage: true });

  await page.getByRole("spinbutton", { name: "Expected version" }).fill("1");
  await page.getByRole("button", { name: "Append" }).click();
  await page.getByText("Appended: version 2").waitFor();

  // The tail shows it: newest first.
  await tail.waitForFunction(() => document.querySelector("table.tail tbody tr td:nth-child(4)")?.textContent === "Shipped");
  assert.match(await tail.locator("table.tail tbody tr").first().textContent(), new RegExp(key));
  await tail.screenshot({ path: join(shots, "tail.png"), fullPage: true });
  await tail.getByRole("button", { name: "Pause" }).click();
  await tail.getByRole("button", { name: "Clear" }).click();
  assert.equal(await tail.locator("table.tail tbody tr").count(), 0);
  await tail.close();
  await page.close();
});

test("delete and tombstone ask first, then the state changes", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const key = orders[2].split("/")[1];
  await page.goto(`http://${admin}/#/stream/order/${key}`);
  const state = page.locator(".info dd").first();
  await page.getByRole("button", { name: "Delete…" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  assert.match(await dialog.textContent(), new RegExp(`order/${key} at version 0`));
  await page.screenshot({ path: join(shots, "delete-confirm.png") });
  await dialog.getByRole("button", { name: "Delete", exact: true }).click();
  await page.getByText("Deleted through version 0").waitFor();
  await page.waitForFunction(() => document.querySelector(".info dd")?.textContent === "deleted");
  assert.equal(await state.textContent(), "deleted");

  await page.getByRole("button", { name: "Tombstone…" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Tombstone", exact: true }).click();
  await page.waitForFunction(() => document.querySelector(".info dd")?.textContent === "tombstoned");
  assert.equal(await page.getByRole("button", { name: "Tombstone…" }).count(), 0);
  await page.close();
});

test("the server page shows its state, version and what the store holds, as the CLI does", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`http://${admin}/`);
  await page.getByRole("link", { name: "Server" }).click();
  const info = page.getByLabel("The server");
  await info.locator("dd").first().waitFor();
  const told = JSON.parse(execFileSync(cliBin, ["--server", `http://${grpc}`, "--json", "server"], { encoding: "utf8" }));
  const value = async (list, term) => list.locator(`dt:text-is("${term}") + dd`).textContent();
  assert.match(await value(info, "State"), /^serving: /);
  assert.match(await value(info, "Health"), /^SERVING /);
  assert.equal(await value(info, "Version"), told.version);
  assert.equal(await value(info, "Backend"), "file");
  const held = page.getByLabel("The store");
  assert.equal(await value(held, "Streams"), told.store.streams.toLocaleString("en"));
  assert.equal(await value(held, "Events"), told.store.events.toLocaleString("en"));
  assert.ok(told.store.events >= 51, `the store holds ${told.store.events} events`);
  assert.equal(await value(held, "Log segments"), String(told.store.log_segments));
  await page.screenshot({ path: join(shots, "server.png"), fullPage: true });
  await page.close();
});
