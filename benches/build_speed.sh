#!/usr/bin/env bash
# Build speed and bundle size: cargo-worker-build against workers-rs `worker-build` 0.8.7 on the
# same workers-rs crate (tests/fixtures/workers-rs), same machine, one run, printed side by side.
#
#   benches/build_speed.sh                 (BENCHMARKS.md records its output)
#   MODES=unwind benches/build_speed.sh    (only the --unwind rows)
#   MODES=dev-unwind benches/build_speed.sh  (dev builds: --dev --unwind / --dev --panic-unwind,
#                                           plus a Miniflare run of MINIFLARE_INSTANCES (10)
#                                           instances over each dev bundle)
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
    (cd "$dir" && CARGO_TARGET_DIR="$dir/target" "$ours" "$profile" "${flags[@]}" -q >/dev/null 2>&1)
  else
    local flags=("$profile"); [ "$panic" = unwind ] && flags+=(--panic-unwind)
    (cd "$dir" && CARGO_TARGET_DIR="$dir/target" RUSTUP_TOOLCHAIN=$([ "$panic" = unwind ] && echo "$nightly" || echo stable) \
      WASM_BINDGEN_BIN="$bindgen" WASM_OPT_BIN="$wasm_opt" ESBUILD_BIN="$work/npm/node_modules/.bin/esbuild" \
      "$peer" "${flags[@]}" >/dev/null 2>&1)
  fi
}

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
