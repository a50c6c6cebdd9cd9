#!/usr/bin/env bash
# Builds the edge host (edge/, a workers-rs Worker) into edge/build/ without downloading anything
# from outside the package registries: worker-build and wasm-bindgen-cli from crates.io (installed
# once per machine, skipped when the right version is on PATH), wasm-opt and esbuild from npm
# (tests/js's node_modules, which the test command installs first).
set -euo pipefail
cd "$(dirname "$0")/.."

WORKER_BUILD_VERSION=0.8.7
WASM_BINDGEN_VERSION=0.2.130   # must equal the wasm-bindgen library edge/ pins

have() { command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | grep -qE "(^| )$2\$"; }

if ! have worker-build "$WORKER_BUILD_VERSION"; then
  echo "installing worker-build $WORKER_BUILD_VERSION (once per machine, about 5 minutes)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
fi
if ! have wasm-bindgen "$WASM_BINDGEN_VERSION"; then
  echo "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (once per machine, about 3 minutes)"
  # Not --locked: its lock pins a crate version the registry no longer serves.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

tools="$PWD/tests/js/node_modules"
if [ ! -x "$tools/.bin/wasm-opt" ]; then
  (cd tests/js && npm install --no-audit --no-fund --loglevel=error)
fi
# worker-build falls back to downloading a tool it cannot find here: these paths must be right.
export WASM_BINDGEN_BIN
WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
export WASM_OPT_BIN="$tools/.bin/wasm-opt"
export ESBUILD_BIN="$tools/@esbuild/linux-x64/bin/esbuild"
for tool in "$WASM_BINDGEN_BIN" "$WASM_OPT_BIN" "$ESBUILD_BIN"; do
  [ -x "$tool" ] || { echo "missing $tool" >&2; exit 1; }
done

# The Worker's JavaScript engine for design documents (QuickJS as WebAssembly), which wrangler
# bundles from edge/node_modules.
want_qjs=$(node -p "require('./edge/package.json').dependencies['quickjs-emscripten-core']")
have_qjs=$(node -p "try { require('./edge/node_modules/quickjs-emscripten-core/package.json').version } catch { '' }")
if [ "$want_qjs" != "$have_qjs" ]; then
  (cd edge && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "building the Worker (worker-build --release in edge/)"
(cd edge && worker-build --release)
ls -la edge/build/index.js edge/build/index_bg.wasm
