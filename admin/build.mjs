// Bundles src/ into dist/app.js and copies the page and its styles beside it: what
// evenire-server embeds (server/src/admin/assets.rs). The output is committed, and
// scripts/test-all fails when it is stale, so building the server needs no Node.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

mkdirSync("dist", { recursive: true });
await build({
  entryPoints: ["src/main.ts"],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  // The same bytes from the same sources, whoever builds them.
  legalComments: "none",
  outfile: "dist/app.js",
  logLevel: "warning",
});
copyFileSync("index.html", "dist/index.html");
copyFileSync("app.css", "dist/app.css");
