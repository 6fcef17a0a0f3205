// Builds ../src/liverfib/clinical/static/niivue-viewer.js from viewer.js with esbuild (minified,
// one IIFE exposing window.LiverfibViewer), plus NIIVUE-LICENSES.txt (the licence of every bundled
// package) and niivue-viewer.manifest.json (versions, sizes, sha256). Deterministic: the same
// lock file gives the same bytes, which `make viewer-check` relies on.
//   node build.mjs [OUT_DIR]
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const outDir = resolve(process.argv[2] || join(here, "..", "src", "liverfib", "clinical", "static"));
const pkg = (name) => JSON.parse(readFileSync(join(here, "node_modules", name, "package.json"), "utf8"));
const niivue = pkg("@niivue/niivue");

const result = await esbuild.build({
  entryPoints: [join(here, "viewer.js")],
  bundle: true,
  minify: true,
  format: "iife",
  globalName: "LiverfibViewer",
  target: ["es2020"],
  legalComments: "none",
  charset: "utf8",
  metafile: true,
  write: false,
  define: { __NIIVUE_VERSION__: JSON.stringify(niivue.version) },
  logLevel: "warning",
});
const js = result.outputFiles[0].contents;

// Packages whose code ended up in the bundle, from esbuild's metafile.
const bundled = new Set();
for (const input of Object.keys(result.metafile.inputs)) {
  const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (m) bundled.add(m[1]);
}
const names = [...bundled].sort();

function licenceText(name) {
  const dir = join(here, "node_modules", name);
  const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
  if (file) return readFileSync(join(dir, file), "utf8").trim();
  const local = join(here, "licenses", `${name.replace("/", "__")}.txt`);
  if (existsSync(local)) return readFileSync(local, "utf8").trim();
  throw new Error(`no licence text for bundled package ${name}; add webviewer/licenses/${name.replace("/", "__")}.txt`);
}

const sections = names.map((n) => {
  const p = pkg(n);
  return `${"=".repeat(72)}\n${n} ${p.version} (${p.license})\n${"=".repeat(72)}\n${licenceText(n)}\n`;
});
const licences = `Third-party code bundled in niivue-viewer.js (built by webviewer/build.mjs).\n\n${sections.join("\n")}`;

const sha256 = (data) => createHash("sha256").update(data).digest("hex");
const manifest = {
  file: "niivue-viewer.js",
  built_by: "webviewer/build.mjs (esbuild, minified IIFE, global LiverfibViewer)",
  esbuild: pkg("esbuild").version,
  bundled: Object.fromEntries(names.map((n) => [n, { version: pkg(n).version, license: pkg(n).license }])),
  bytes: js.length,
  sha256: sha256(js),
  licenses: "NIIVUE-LICENSES.txt",
};

mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, "niivue-viewer.js"), js);
writeFileSync(join(outDir, "NIIVUE-LICENSES.txt"), licences);
writeFileSync(join(outDir, "niivue-viewer.manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
console.log(`wrote ${join(outDir, "niivue-viewer.js")} (${(js.length / 1e6).toFixed(2)} MB; ${names.length} packages)`);
