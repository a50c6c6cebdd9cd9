//! The framework's ceiling for `bench/kv_http.sh`: a minimal axum server on the same runtime
//! settings answering every GET with a constant and every PUT with `{}`.
//!
//! `cargo run --release --example ceiling -- 127.0.0.1:PORT`

use axum::routing::get;
use axum::Router;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let app = Router::new().fallback(get(|| async { "some value" }).put(|| async { "{}" }));
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    eprintln!("ceiling listening addr={}", listener.local_addr().unwrap());
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await.unwrap();
}
