// The web admin in a real browser: Debian's Chromium driven by playwright-core (no
// browser is downloaded), against the real server binary with a log written by the
// real CLI. Screenshots of each page go to target/admin-screenshots/.
//
// EVENIRE_SERVER_BIN and EVENIRE_CLI_BIN name the binaries (default: target/debug);
// CHROMIUM the browser (default: /usr/bin/chromium).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer, stopServer } from "../harness.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const serverBin = process.env.EVENIRE_SERVER_BIN ?? join(root, "target/debug/evenire-server");
const cliBin = process.env.EVENIRE_CLI_BIN ?? join(root, "target/debug/evenire");
const loadBin = process.env.EVENIRE_LOAD_BIN ?? join(root, "target/debug/evenire-load");
const certsBin = process.env.EVENIRE_TEST_CERTS_BIN ?? join(root, "target/debug/evenire-test-certs");
const shots = join(root, "target/admin-screenshots");

let server;
let dataDir;
let grpc;
let admin;
let browser;

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
  ({ child: server, grpc, admin } = await startServer(serverBin, ["--listen", "127.0.0.1:0", "--data-dir", dataDir]));
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
  await stopServer(server);
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

test("every page fits a phone's screen", async () => {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
  for (const hash of ["#/streams", `#/stream/${orders[0]}`, "#/append", "#/tail", "#/server"]) {
    await page.goto(`http://${admin}/${hash}`);
    await page.locator("main h1").waitFor();
    await page.waitForLoadState("networkidle");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${hash} is ${overflow} px wider than the screen`);
    const name = hash.slice(2).split("/")[0];
    await page.screenshot({ path: join(shots, `${name}-phone.png`), fullPage: true });
  }
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

/** Every form control on the page without a name a screen reader would announce. */
function unlabelled(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll("input, select, textarea, button")]
      .filter((e) => !e.hidden && e.type !== "hidden")
      .filter((e) => !(e.labels?.length || e.getAttribute("aria-label") || e.getAttribute("aria-labelledby") || e.textContent.trim()))
      .map((e) => e.outerHTML),
  );
}

/** Presses Tab until `wanted` (a locator) has focus; fails after `most` presses. */
async function tabTo(page, wanted, most = 20) {
  for (let i = 0; i < most; i++) {
    if (await wanted.evaluate((e) => e === document.activeElement)) return;
    await page.keyboard.press("Tab");
  }
  assert.fail(`${most} presses of Tab did not reach ${wanted}`);
}

test("every page works from the keyboard, and every control has a name", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  for (const hash of ["#/streams", `#/stream/${sensor}`, "#/append", "#/tail", "#/server"]) {
    await page.goto(`http://${admin}/${hash}`);
    await page.locator("main h1").waitFor();
    assert.deepEqual(await unlabelled(page), [], `controls without a name on ${hash}`);
  }

  await page.goto(`http://${admin}/`);
  await page.locator("table.streams tbody tr").first().waitFor();
  await tabTo(page, page.getByLabel("Type"));
  await page.keyboard.type("sensor");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.querySelectorAll("table.streams tbody tr").length === 1);

  const key = sensor.split("/")[1];
  await tabTo(page, page.getByRole("link", { name: key }));
  await page.keyboard.press("Enter");
  await page.locator(".event header strong").first().waitFor();
  assert.match(page.url(), new RegExp(`#/stream/${sensor}$`));

  // A destructive dialog opens on Cancel, Escape closes it, and nothing changes.
  const open = page.getByRole("button", { name: "Delete…" });
  await tabTo(page, open, 40);
  await page.keyboard.press("Enter");
  await page.getByRole("dialog").waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Cancel");
  await page.keyboard.press("Escape");
  await page.getByRole("dialog").waitFor({ state: "hidden" });
  assert.equal(await open.evaluate((e) => e === document.activeElement), true, "focus goes back to the button");
  assert.equal(await page.locator(".info dd").first().textContent(), "live");
  await page.close();
});

test("the live tail keeps up with a steady load, keeps at most 200 rows, and misses nothing", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`http://${admin}/#/tail?types=load`);
  await page.getByRole("button", { name: "Follow" }).click();
  await page.getByText("Caught up").waitFor();

  // 2,000 events a second for 3 s, in appends of 10 (a debug server; the 10,000 a
  // second of the issue is measured by admin/bench/tail.mjs on a release build).
  const told = JSON.parse(execFileSync(loadBin, [`http://${grpc}`, "2000", "3"], { encoding: "utf8" }));
  assert.equal(told.appended, 6400, "the load's appends, rounded up to whole batches");
  await page.waitForFunction((n) => document.querySelector(".counts")?.textContent?.startsWith(`${n} received`), told.appended, {
    timeout: 30_000,
  });
  const rows = page.locator("table.tail tbody tr");
  assert.equal(await rows.count(), 200);
  const positions = (await page.locator("table.tail tbody td:first-child").allTextContents()).map(Number);
  assert.deepEqual(positions, [...positions].sort((a, b) => b - a), "newest first");
  assert.equal(positions[0] - positions[199], 199, "the newest 200, none missing between");
  await page.close();
});

test("over TLS with tokens: the page asks for a token, keeps it for the tab, and says what a role may not do", async () => {
  const files = mkdtempSync(join(tmpdir(), "evenire-admin-tls-"));
  execFileSync(certsBin, [files]);
  const grants = { viewer: "read", operator: "admin" };
  const entries = Object.entries(grants).map(
    ([name, role]) => `[[token]]\nname = "${name}"\nsha256 = "${createHash("sha256").update(name).digest("hex")}"\nrole = "${role}"\n`,
  );
  writeFileSync(join(files, "tokens.toml"), entries.join("\n"));
  const secure = await startServer(serverBin, [
    "--listen", "127.0.0.1:0",
    "--data-dir", join(files, "data"),
    "--tls-cert", join(files, "server.crt"),
    "--tls-key", join(files, "server.key"),
    "--auth-tokens", join(files, "tokens.toml"),
  ]);
  // The certificate is signed by the test's own CA, which Chromium does not know.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
  try {
    const page = await context.newPage();
    await page.goto(`https://${secure.admin}/`);
    await page.getByText("Not signed in: the server wants a token").waitFor();

    const appendWith = async (token) => {
      await page.getByLabel("Token (kept for this tab only)").fill(token);
      await page.getByRole("button", { name: "Use" }).click();
      await page.goto(`https://${secure.admin}/#/append?type=order`);
      await page.getByLabel("Event type").fill("Placed");
      await page.getByRole("button", { name: "Append" }).click();
    };
    await appendWith("operator");
    await page.getByText("Appended: version 0").waitFor();
    await appendWith("viewer");
    await page.getByText("This token may not do that: Append needs the `write` role").waitFor();
    await page.screenshot({ path: join(shots, "token-denied.png"), fullPage: true });

    await page.goto(`https://${secure.admin}/#/streams`);
    await page.locator("table.streams tbody tr").first().waitFor();
    assert.equal(await page.locator("table.streams tbody tr").count(), 1);

    // Another tab starts without the token.
    const other = await context.newPage();
    await other.goto(`https://${secure.admin}/`);
    await other.getByText("Not signed in: the server wants a token").waitFor();
    assert.equal(await other.getByLabel("Token (kept for this tab only)").inputValue(), "");
  } finally {
    await context.close();
    await stopServer(secure.child);
    rmSync(files, { recursive: true, force: true });
  }
});
