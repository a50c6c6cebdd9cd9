//! Design documents' JavaScript in the Worker: the core's [`JsEngine`] over QuickJS compiled to
//! WebAssembly, which `js/engine.mjs` loads beside this crate and exposes as
//! `globalThis.couchkvJs` (a Worker's V8 refuses `eval`, and QuickJS's C does not build for
//! this crate's target). The prelude and the calls are the native engine's.

use couchkv::couch::js::{DesignCode, JsEngine, JsError, PRELUDE};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = couchkvJs, js_name = ready)]
    fn js_ready() -> js_sys::Promise;

    #[wasm_bindgen(js_namespace = couchkvJs, js_name = call, catch)]
    fn js_call(
        key: &str,
        ddoc: &str,
        prelude: &str,
        op: &str,
        args: &str,
    ) -> Result<String, JsValue>;
}

/// The Worker's engine (stateless here: the runtime and compiled contexts live on the JS side,
/// one per isolate).
pub struct WorkerJs;

/// Loads the engine (once per isolate): the first request of an object waits for it.
pub async fn load() -> Result<(), JsValue> {
    wasm_bindgen_futures::JsFuture::from(js_ready())
        .await
        .map(|_| ())
}

impl JsEngine for WorkerJs {
    fn call(&self, ddoc: &DesignCode, op: &str, args: &str) -> Result<String, JsError> {
        js_call(&ddoc.key, &ddoc.json, PRELUDE, op, args).map_err(|e| {
            let message = e
                .dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
                .unwrap_or_else(|| format!("{e:?}"));
            if message.contains("was stopped") {
                JsError::Limit(message)
            } else {
                JsError::Engine(message)
            }
        })
    }
}
