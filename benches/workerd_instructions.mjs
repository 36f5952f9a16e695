// Instructions workerd executes per request, counted by Valgrind's callgrind: unlike time, the
// count does not move with the load of the machine, so it resolves what a runtime mechanism
// costs on a shared machine where throughput and CPU time cannot (BENCHMARKS.md).
//
// Run: BENCH_KEEP=/tmp/variants cargo bench --bench runtime_bench   (keeps each variant's
//      workerd config and bundle), then
//      node_modules/.bin/node benches/workerd_instructions.mjs /tmp/variants/*
// Knobs: WARMUP (3000 requests), REQUESTS (3000 per repetition), REPS (3), CONCURRENCY (16),
// PROCESSES (1: fresh workerd processes per directory, one after another), V8_FLAGS (none).
// Needs valgrind (`apt-get install valgrind`). Prints, per directory, the instructions per
// `/hello` of each repetition (all of workerd's threads, after the warm-up) and their median.
import { spawn, execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";

const setting = (name, fallback) => Number(process.env[name] ?? fallback);
const WARMUP = setting("WARMUP", 3000);
const REQUESTS = setting("REQUESTS", 3000);
const REPS = setting("REPS", 3);
const CONCURRENCY = setting("CONCURRENCY", 16);
const PROCESSES = setting("PROCESSES", 1);
// V8 flags for workerd (its config's `v8Flags`), e.g. V8_FLAGS="--single-threaded --random-seed=42
// --hash-seed=42": with the JIT and the GC on the isolate's thread and fixed seeds, two processes
// of one bundle count within 0.2% of each other instead of 2-4% (BENCHMARKS.md).
const V8_FLAGS = (process.env.V8_FLAGS ?? "").split(/\s+/).filter((flag) => flag !== "");
const workerd = resolve(new URL("..", import.meta.url).pathname, "node_modules/@cloudflare/workerd-linux-64/bin/workerd");

/** A port nothing listens on. */
function freePort() {
  return new Promise((done) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/** Sends `n` GET /hello on CONCURRENCY keep-alive connections; throws on any other answer. */
async function load(port, n) {
  let left = n;
  const one = async () => {
    while (left > 0) {
      left -= 1;
      const response = await fetch(`http://127.0.0.1:${port}/hello`);
      const body = await response.text();
      if (response.status !== 200 || body !== "hello") throw new Error(`GET /hello: ${response.status} ${body}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, one));
}

/** Instructions callgrind counted so far, summed over the threads. */
function counted(pid) {
  const text = execFileSync("callgrind_control", ["-e", "Ir", String(pid)], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  });
  let total = 0;
  for (const match of text.matchAll(/Th\s+\d+\s+([\d,]+)/g)) total += Number(match[1].replaceAll(",", ""));
  return total;
}

async function measure(dir) {
  const port = await freePort();
  const config = join(dir, "config.capnp");
  let text = readFileSync(config, "utf8")
    .replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${port}`)
    .replace(/^  v8Flags = \[.*\],\n/m, "");
  if (V8_FLAGS.length > 0) {
    const list = V8_FLAGS.map((flag) => JSON.stringify(flag)).join(", ");
    text = text.replace(/^const config :Workerd\.Config = \(\n/m, (head) => `${head}  v8Flags = [${list}],\n`);
  }
  writeFileSync(config, text);
  const child = spawn(
    "valgrind",
    ["--tool=callgrind", "--smc-check=all-non-file", "--callgrind-out-file=/dev/null", workerd, "serve", config],
    { cwd: dir, stdio: "ignore" },
  );
  try {
    for (let tries = 0; ; tries++) {
      try {
        await load(port, 1);
        break;
      } catch (error) {
        if (tries > 300 || child.exitCode !== null) throw new Error(`${dir}: workerd did not answer: ${error}`);
        await new Promise((done) => setTimeout(done, 500));
      }
    }
    await load(port, WARMUP);
    const perRequest = [];
    for (let rep = 0; rep < REPS; rep++) {
      execFileSync("callgrind_control", ["-z", String(child.pid)], { stdio: "ignore" });
      await load(port, REQUESTS);
      perRequest.push(Math.round(counted(child.pid) / REQUESTS));
    }
    return perRequest;
  } finally {
    child.kill();
  }
}

const dirs = process.argv.slice(2);
if (dirs.length === 0) {
  console.error("usage: node benches/workerd_instructions.mjs DIR... (from BENCH_KEEP)");
  process.exit(2);
}
console.log(
  `instructions per /hello (callgrind; ${WARMUP} warm-up, ${REPS} x ${REQUESTS} requests, concurrency ${CONCURRENCY}, ${PROCESSES} fresh workerd process(es) per directory${V8_FLAGS.length > 0 ? `, V8 flags ${V8_FLAGS.join(" ")}` : ""})`,
);
const median = (list) => {
  const sorted = [...list].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};
// Two processes of one bundle count a few percent apart (the JIT's and the GC's decisions
// differ between them), more than the mechanisms measured here cost: compare medians over
// several fresh processes. The directories of one process round are measured concurrently
// (the counts do not depend on the machine's load).
/** @type {number[][]} each directory's per-process medians */
const perProcess = dirs.map(() => []);
for (let round = 0; round < PROCESSES; round++) {
  const results = await Promise.all(dirs.map((dir) => measure(dir)));
  for (const [i, dir] of dirs.entries()) {
    perProcess[i].push(median(results[i]));
    console.log(`  process ${round + 1}: ${dir}: ${results[i].join(" ")}`);
  }
}
const first = median(perProcess[0]);
for (const [i, dir] of dirs.entries()) {
  const m = median(perProcess[i]);
  const against = i === 0 ? "" : `, ${(m / first).toFixed(3)}x the first directory`;
  console.log(`${dir}: median ${m} over ${PROCESSES} process(es) (${[...perProcess[i]].sort((a, b) => a - b).join(" ")})${against}`);
}
