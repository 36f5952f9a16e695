// How long a Miniflare test run takes over a bundle: the harness workers-rs projects write
// (one Miniflare per test file, the module compiled anew by each), N times in a row, each
// answering one request. Prints one line: bundle, instances, total and per-instance seconds.
//
//   node benches/miniflare_run.mjs BUNDLE_DIR [INSTANCES] [PATH]
//
// Run with Node 24 (node_modules/.bin/node); miniflare comes from the repository's node_modules.
import { Miniflare } from "miniflare";
import path from "node:path";

const [bundle, count = "10", route = "/"] = process.argv.slice(2);
if (!bundle) {
  console.error("usage: node benches/miniflare_run.mjs BUNDLE_DIR [INSTANCES] [PATH]");
  process.exit(2);
}
const instances = Number(count);
// Exactly the harness: run from the project directory, with `./build/index.js`.
process.chdir(path.dirname(path.resolve(bundle)));
const scriptPath = `./${path.basename(bundle)}/index.js`;
const start = performance.now();
for (let i = 0; i < instances; i++) {
  const mf = new Miniflare({
    modules: true,
    scriptPath,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    compatibilityDate: "2025-09-01",
  });
  const response = await mf.dispatchFetch(`http://localhost${route}`);
  await response.text();
  if (response.status !== 200) {
    console.error(`${bundle}: GET ${route} answered ${response.status}`);
    process.exit(1);
  }
  await mf.dispose();
}
const seconds = (performance.now() - start) / 1000;
console.log(
  `${bundle}\tinstances ${instances}\ttotal_s ${seconds.toFixed(2)}\tper_instance_s ${(seconds / instances).toFixed(3)}`,
);
