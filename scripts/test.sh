#!/usr/bin/env bash
# The whole test suite, as README.md gives it and CI runs it. It installs what the tests need
# (toolchain components, the wasm32 target, the Node packages of the client tests) and then
# runs, in order: formatting, clippy, the edge-ready (wasm32) build of the core, every Rust test
# of the workspace (against a throwaway PostgreSQL cluster it starts, installing PostgreSQL from
# Debian's packages when missing), and the real-client tests (PouchDB from npm against the built
# server; the admin page in Debian's Chromium, installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain components"
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
    rustup component add "$component"
  fi
done
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, all features, -D warnings)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "edge-ready core: cargo check --target wasm32-unknown-unknown --no-default-features -p couchkv"
cargo check --target wasm32-unknown-unknown --no-default-features -p couchkv

# The API core with --features api for wasm32 is checked by the edge host's clippy below,
# which builds couchkv with exactly those features.
step "the edge host (edge/) and the API core: cargo clippy --target wasm32-unknown-unknown -D warnings"
cargo clippy --target wasm32-unknown-unknown -p couchkv-edge -- -D warnings

step "a throwaway PostgreSQL for the postgres backend's tests (scripts/postgres.sh)"
eval "$(scripts/postgres.sh)"
trap 'eval "$COUCHKV_TEST_POSTGRES_STOP"' EXIT
export COUCHKV_REQUIRE_POSTGRES=1

step "cargo test --workspace --all-features"
cargo test --workspace --all-features

step "client tests: PouchDB from npm against couchkv (tests/js)"
cargo build --bin couchkv
# `npm install`, not `npm ci`: this npm leaves other platforms' optional workerd packages out of
# the lock it writes, and `npm ci` then refuses that lock. Versions still come from the lock.
(cd tests/js && npm install --no-audit --no-fund --loglevel=error)

# The admin page's test drives Debian's Chromium (playwright-core from npm, no browser download).
if [ ! -x /usr/bin/chromium ]; then
  step "Chromium from Debian's packages for the admin page's browser test"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

step "the edge host's Worker (scripts/edge.sh: worker-build, tools installed once per machine)"
scripts/edge.sh
(cd tests/js && COUCHKV_BIN="$PWD/../../target/debug/couchkv" node --test --test-concurrency=1)
