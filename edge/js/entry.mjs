// The Worker's entry: the engine for design documents' JavaScript (it sets
// globalThis.couchkvJs), then everything worker-build made from the Rust crate.
import "./engine.mjs";
export * from "../build/index.js";
export { default } from "../build/index.js";
