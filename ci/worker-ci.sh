#!/usr/bin/env bash
# worker-ci.sh: build a Rust Cloudflare Worker with panic=unwind and prove that the bundle
# unwinds, recovers and will load. Copy it into your repository (e.g. as ci/worker-ci.sh) and
# run it from any CI system: `bash ci/worker-ci.sh`. It exits non-zero when a step fails.
#
# Steps: install cargo-worker-build if it is not on PATH, set up the Rust toolchain,
# `cargo worker-build --unwind`, then `cargo worker-build --unwind --check-eh`.
#
# Settings (environment variables, all optional):
#   WORKER_DIR           directory of the Worker's Cargo.toml                       [.]
#   WORKER_EH            exception-handling encoding: exnref or legacy              [exnref]
#   WORKER_RUNTIME       runtime the bundle must load in: workerd, node20, node22, node24  [workerd]
#   WORKER_OUT_DIR       bundle directory, relative to WORKER_DIR                   [build]
#   WORKER_BUILD_ARGS    more arguments for both commands, e.g. "-p api --features metrics"
#   WORKER_LOCKED        1: pass --locked; 0: do not; auto: when a Cargo.lock exists  [auto]
#   WORKER_CHECK_REPORT  also write the check's JSON report to this file
#   WORKER_CACHE         compile cache: auto (sccache when on PATH), sccache or none     [auto]
#   CWB_VERSION          the cargo-worker-build version to require (reinstalled when different)
#   CWB_INSTALL          arguments for `cargo install` when cargo-worker-build must be installed
#                        [cargo-worker-build --locked, plus --version CWB_VERSION when set]
# Cargo's own variables (CARGO_TARGET_DIR, CARGO_HOME, ...) and CARGO_WORKER_BUILD_CACHE (the tool
# cache, default ~/.cache/cargo-worker-build) are honoured. Cache that directory and the target
# directory between runs: the tool cache holds the wasm-bindgen CLI, which takes minutes to build.
set -euo pipefail

worker_dir=${WORKER_DIR:-.}
eh=${WORKER_EH:-exnref}
runtime=${WORKER_RUNTIME:-workerd}
out_dir=${WORKER_OUT_DIR:-build}
locked=${WORKER_LOCKED:-auto}
read -r -a extra_args <<<"${WORKER_BUILD_ARGS:-}"
# The compile cache (sccache, e.g. with SCCACHE_GHA_ENABLED=true in GitHub Actions).
export WORKER_BUILD_CACHE=${WORKER_CACHE:-${WORKER_BUILD_CACHE:-auto}}

# Collapsible sections in GitHub Actions logs; plain headings elsewhere.
group_open=0
step() {
  end_step
  if [ "${GITHUB_ACTIONS:-}" = true ]; then
    echo "::group::$1"
    group_open=1
  else
    printf '\n==> %s\n' "$1"
  fi
}
end_step() {
  if [ "$group_open" = 1 ]; then
    echo "::endgroup::"
    group_open=0
  fi
}
fail() {
  end_step
  echo "worker-ci: $1" >&2
  exit 1
}

case "$eh" in exnref | legacy) ;; *) fail "WORKER_EH must be exnref or legacy, not '$eh'" ;; esac
[ -f "$worker_dir/Cargo.toml" ] || fail "no Cargo.toml in WORKER_DIR=$worker_dir; set WORKER_DIR to the Worker's directory"
command -v cargo >/dev/null || fail "cargo is not on PATH; install Rust with rustup first"
command -v rustup >/dev/null || fail "rustup is not on PATH; cargo worker-build installs toolchains with it"
start_dir=$PWD
cd "$worker_dir"

step "cargo-worker-build"
installed=$(cargo-worker-build --version 2>/dev/null | awk '{print $2}' || true)
if [ -z "$installed" ] || { [ -n "${CWB_VERSION:-}" ] && [ "$installed" != "$CWB_VERSION" ]; }; then
  if [ -n "${CWB_INSTALL:-}" ]; then
    read -r -a install_args <<<"$CWB_INSTALL"
  else
    install_args=(cargo-worker-build --locked ${CWB_VERSION:+--version "$CWB_VERSION"})
  fi
  echo "installing: cargo install ${install_args[*]}"
  cargo install "${install_args[@]}"
fi
echo "using $(command -v cargo-worker-build) ($(cargo-worker-build --version))"

step "Rust toolchain"
if [ -f rust-toolchain.toml ] || [ -f rust-toolchain ]; then
  # The project pins its toolchain (the templates pin the nightly --unwind needs): install it
  # with the components and targets the file lists, so that `cargo` here resolves to it.
  rustup toolchain install --no-self-update
else
  echo "no rust-toolchain.toml: cargo worker-build installs the nightly it pins on first use"
fi
# Decided before anything can create a lock file (the plan below would): CI should build
# exactly what was committed.
lock_args=()
case "$locked" in
  1 | true) lock_args=(--locked) ;;
  0 | false) ;;
  auto)
    workspace_manifest=$(cargo locate-project --workspace --message-format plain)
    if [ -f "$(dirname "$workspace_manifest")/Cargo.lock" ]; then
      lock_args=(--locked)
    else
      echo "worker-ci: warning: no Cargo.lock next to $workspace_manifest; commit it so CI builds the dependency versions you tested" >&2
    fi
    ;;
  *) fail "WORKER_LOCKED must be 1, 0 or auto, not '$locked'" ;;
esac

# The plan: toolchain, rustflags, the exact cargo command and the wasm-bindgen arguments.
cargo worker-build --unwind --eh "$eh" --out-dir "$out_dir" --dry-run -v ${extra_args[@]+"${extra_args[@]}"}

step "Build with --unwind"
cargo worker-build --unwind --eh "$eh" --out-dir "$out_dir" ${lock_args[@]+"${lock_args[@]}"} ${extra_args[@]+"${extra_args[@]}"}

step "Check that the bundle unwinds, recovers and loads in $runtime"
cargo worker-build --unwind --eh "$eh" --out-dir "$out_dir" --check-eh --runtime "$runtime" \
  ${lock_args[@]+"${lock_args[@]}"} ${extra_args[@]+"${extra_args[@]}"}
if [ -n "${WORKER_CHECK_REPORT:-}" ]; then
  report=$WORKER_CHECK_REPORT
  case "$report" in /*) ;; *) report="$start_dir/$report" ;; esac
  cargo worker-build check "$out_dir" --expect unwind --eh "$eh" --runtime "$runtime" \
    --message-format json >"$report"
  echo "JSON report: $report"
fi
if [ "$WORKER_BUILD_CACHE" != none ] && command -v sccache >/dev/null; then
  step "Compile cache"
  sccache --show-stats || true
fi
end_step
echo "worker-ci: passed ($out_dir, unwind, $eh, loads in $runtime)"
