// Writes dist/source.sha256: one hash over the sources the build is made from, so a test
// can tell when the committed dist is older than its sources. The same walk is done in
// Python by services/api/ui.py (source_digest); both must agree.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const SOURCES = ["index.html", "package.json", "package-lock.json", "vite.config.js", "scripts", "src"];

function files(path) {
  if (statSync(path).isDirectory()) {
    return readdirSync(path).flatMap((name) => files(join(path, name)));
  }
  return [path];
}

const manifest = SOURCES.flatMap((name) => files(join(root, name)))
  .map((path) => relative(root, path).split(sep).join("/"))
  .sort()
  .map((name) => `${createHash("sha256").update(readFileSync(join(root, name))).digest("hex")}  ${name}\n`)
  .join("");
const digest = createHash("sha256").update(manifest).digest("hex");
writeFileSync(join(root, "dist", "source.sha256"), `${digest}\n`);
console.log(`dist/source.sha256 ${digest}`);
