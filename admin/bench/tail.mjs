// The live tail under a steady write load, measured in Chromium: does the page keep up,
// stay bounded and stay responsive? Not a test (figures, no verdict on timing): the
// browser test checks what must hold at any speed (MAX_ROWS at most, nothing missed);
// this prints what it costs.
//
//   cargo build --release -p evenire-server -p evenire-testkit --bins
//   cd admin && node bench/tail.mjs [--rate 10000] [--seconds 120] [--every 10]
//
// The server and the load generator run on CPU 0 (taskset, when there is one), the
// browser wherever the system puts it. Every --every seconds it prints: events the page
// has received, rows shown, DOM nodes, the JavaScript heap after a forced garbage
// collection, frames drawn a second, the share of the main thread spent on work (and of
// it, on script and on style and layout), and tasks over 50 ms (what a person notices as
// a stuck page).

import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";
import { startServer, stopServer } from "../harness.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const { values: options } = parseArgs({
  options: {
    rate: { type: "string", default: "10000" },
    seconds: { type: "string", default: "120" },
    every: { type: "string", default: "10" },
  },
});
const rate = Number(options.rate);
const seconds = Number(options.seconds);
const every = Number(options.every);
const serverBin = process.env.EVENIRE_SERVER_BIN ?? join(root, "target/release/evenire-server");
const loadBin = process.env.EVENIRE_LOAD_BIN ?? join(root, "target/release/evenire-load");

/** `command` on CPU 0 when taskset is there, so the browser has the other core. */
function pinned(command, args) {
  try {
    execFileSync("taskset", ["-V"], { stdio: "ignore" });
    return ["taskset", ["-c", "0", command, ...args]];
  } catch {
    return [command, args];
  }
}

const work = mkdtempSync(join(tmpdir(), "evenire-tail-bench-"));
const { child: server, grpc, admin } = await startServer(...pinned(serverBin, ["--listen", "127.0.0.1:0", "--data-dir", join(work, "data")]));
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`http://${admin}/#/tail`);
  await page.getByRole("button", { name: "Follow" }).click();
  await page.getByText("Caught up").waitFor();
  await page.evaluate(() => {
    window.benchFrames = 0;
    window.benchLongTasks = 0;
    const frame = () => {
      window.benchFrames++;
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
    new PerformanceObserver((list) => (window.benchLongTasks += list.getEntries().length)).observe({ type: "longtask" });
  });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Performance.enable");
  const sample = async () => {
    await cdp.send("HeapProfiler.collectGarbage");
    const { metrics } = await cdp.send("Performance.getMetrics");
    const metric = Object.fromEntries(metrics.map((m) => [m.name, m.value]));
    const page_ = await page.evaluate(() => ({
      frames: window.benchFrames,
      longTasks: window.benchLongTasks,
      counts: document.querySelector(".counts")?.textContent ?? "",
      rows: document.querySelectorAll("table.tail tbody tr").length,
    }));
    return {
      at: performance.now(),
      busy: metric.TaskDuration,
      script: metric.ScriptDuration,
      layout: metric.LayoutDuration + metric.RecalcStyleDuration,
      heap: metric.JSHeapUsedSize,
      nodes: metric.Nodes,
      ...page_,
    };
  };

  console.log(`live tail of $all at ${rate} events/s for ${seconds} s (appends of 10), server and load on CPU 0`);
  console.log(`${"s".padStart(5)} ${"received".padStart(10)} ${"rows".padStart(5)} ${"nodes".padStart(6)} ${"heap MiB".padStart(9)} ${"frames/s".padStart(9)} ${"busy %".padStart(7)} ${"script %".padStart(9)} ${"layout %".padStart(9)} ${"long tasks".padStart(10)}`);
  const load = spawn(...pinned(loadBin, [`http://${grpc}`, String(rate), String(seconds)]), { stdio: ["ignore", "pipe", "inherit"] });
  let told = "";
  load.stdout.on("data", (chunk) => (told += chunk));
  const loadDone = new Promise((done) => load.on("exit", done));
  const started = performance.now();
  let previous = await sample();
  let running = true;
  void loadDone.then(() => (running = false));
  while (running) {
    await Promise.race([new Promise((r) => setTimeout(r, every * 1000)), loadDone]);
    const now = await sample();
    const wall = (now.at - previous.at) / 1000;
    console.log(
      [
        ((now.at - started) / 1000).toFixed(0).padStart(5),
        now.counts.split(" ")[0].padStart(10),
        String(now.rows).padStart(5),
        String(now.nodes).padStart(6),
        (now.heap / 2 ** 20).toFixed(1).padStart(9),
        ((now.frames - previous.frames) / wall).toFixed(0).padStart(9),
        ((100 * (now.busy - previous.busy)) / wall).toFixed(0).padStart(7),
        ((100 * (now.script - previous.script)) / wall).toFixed(0).padStart(9),
        ((100 * (now.layout - previous.layout)) / wall).toFixed(0).padStart(9),
        String(now.longTasks - previous.longTasks).padStart(10),
      ].join(" "),
    );
    previous = now;
  }
  const { appended, seconds: took } = JSON.parse(told);
  await page.waitForFunction((n) => document.querySelector(".counts")?.textContent?.startsWith(`${n} received`), appended, { timeout: 60_000 });
  console.log(`the load appended ${appended} events in ${took} s (${Math.round(appended / took)}/s); the page received every one`);
} finally {
  await browser.close();
  await stopServer(server);
  rmSync(work, { recursive: true, force: true });
}
