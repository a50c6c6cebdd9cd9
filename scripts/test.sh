#!/usr/bin/env bash
# The whole test suite, as README.md gives it and CI runs it. It installs what the tests need
# (toolchain components, the wasm32 target) and then runs, in order: formatting, clippy, the
# edge-ready (wasm32) build of the core, and every test of the workspace.
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

step "cargo test --workspace --all-features"
cargo test --workspace --all-features
