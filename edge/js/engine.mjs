// Design documents' JavaScript inside the Worker: QuickJS compiled to WebAssembly
// (quickjs-emscripten), the engine the native server runs too. A Worker's own V8 refuses `eval`,
// and QuickJS's C does not build for the Rust side's wasm32 target, so the engine lives here and
// the Rust core calls `globalThis.couchkvJs.call` (edge/src/js.rs).
//
// Bounds: 128 MiB of QuickJS memory and 512 KiB of stack per runtime; and, since a Worker's
// clock stands still while code runs, time is counted in QuickJS's interrupt checks (one every
// 10,000 or so operations): a call gets FUEL of them, then it is interrupted. A call that fails
// on a bound throws, and its runtime is thrown away.
// By path: wrangler picks a module rule by the import ending in .wasm, not by what it resolves to.
import wasmModule from "../node_modules/@jitl/quickjs-wasmfile-release-sync/dist/emscripten-module.wasm";
import baseVariant from "@jitl/quickjs-wasmfile-release-sync";
import { newQuickJSWASMModuleFromVariant, newVariant } from "quickjs-emscripten-core";

const MEMORY = 128 * 1024 * 1024;
const STACK = 512 * 1024;
const FUEL = 10000;
const CONTEXTS = 16;

let module = null;
let loading = null;
let runtime = null;
let fuel = 0;
// key -> context, most recently used last.
const contexts = new Map();

function reset() {
  for (const ctx of contexts.values()) {
    try { ctx.dispose(); } catch { /* the runtime goes anyway */ }
  }
  contexts.clear();
  try { runtime?.dispose(); } catch { /* already broken */ }
  runtime = null;
}

function freshRuntime() {
  const rt = module.newRuntime();
  rt.setMemoryLimit(MEMORY);
  rt.setMaxStackSize(STACK);
  rt.setInterruptHandler(() => --fuel < 0);
  return rt;
}

/** Fails with a message as the native engine's: limits say "stopped". */
class JsLimit extends Error {}

function unwrap(ctx, result) {
  if (result.error) {
    const e = ctx.dump(result.error);
    result.error.dispose();
    const text = typeof e === "object" && e !== null ? `${e.name ?? "Error"}: ${e.message ?? JSON.stringify(e)}` : String(e);
    if (e === null || /interrupted|out of memory|stack/i.test(text)) throw new JsLimit(`a design document function was stopped: ${text}`);
    throw new Error(text);
  }
  return result.value;
}

function context(key, prelude, ddoc) {
  const found = contexts.get(key);
  if (found) {
    contexts.delete(key);
    contexts.set(key, found);
    return found;
  }
  const ctx = runtime.newContext();
  unwrap(ctx, ctx.evalCode(prelude, "prelude.js")).dispose();
  const init = ctx.getProp(ctx.global, "__init");
  const arg = ctx.newString(ddoc);
  try {
    unwrap(ctx, ctx.callFunction(init, ctx.undefined, arg)).dispose();
  } finally {
    init.dispose();
    arg.dispose();
  }
  if (contexts.size >= CONTEXTS) {
    const [oldest, ctxOld] = contexts.entries().next().value;
    contexts.delete(oldest);
    ctxOld.dispose();
  }
  contexts.set(key, ctx);
  return ctx;
}

globalThis.couchkvJs = {
  /** Loads the engine once per isolate. */
  ready() {
    if (module) return Promise.resolve();
    loading ??= newQuickJSWASMModuleFromVariant(newVariant(baseVariant, { wasmModule })).then((m) => {
      module = m;
    });
    return loading;
  },
  /** `__call(op, args)` of the prelude for the design document `ddoc` (JSON text). */
  call(key, ddoc, prelude, op, args) {
    if (!module) throw new Error("the JavaScript engine is not loaded");
    runtime ??= freshRuntime();
    fuel = FUEL;
    try {
      const ctx = context(key, prelude, ddoc);
      const fn = ctx.getProp(ctx.global, "__call");
      const a = ctx.newString(op);
      const b = ctx.newString(args);
      try {
        const out = unwrap(ctx, ctx.callFunction(fn, ctx.undefined, a, b));
        const text = ctx.getString(out);
        out.dispose();
        return text;
      } finally {
        fn.dispose();
        a.dispose();
        b.dispose();
      }
    } catch (e) {
      reset();
      throw e instanceof JsLimit ? e : new Error(String(e && e.message || e));
    }
  },
  /** Whether the last failure was a bound (for the Rust side's error kind). */
  isLimit(message) {
    return /stopped/.test(String(message));
  },
};
