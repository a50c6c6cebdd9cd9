//! The host's timers and tasks inside a Durable Object: `worker::Delay` for sleeps, each in a
//! task of its own (a `Delay` keeps the waker of its first poll, so it must not be polled from
//! a response stream that moves between tasks), `spawn_local` for background work, and blocking
//! work run in place (an object has one thread).

use std::time::Duration;

use couchkv::runtime::Runtime;
use futures::channel::oneshot;
use futures::future::BoxFuture;

pub struct DoRuntime;

impl Runtime for DoRuntime {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let (mut tx, rx) = oneshot::channel::<()>();
        wasm_bindgen_futures::spawn_local(async move {
            // When the sleeper goes away first (a live feed woken by a write drops its timer),
            // the Delay is dropped too, which clears its JS timeout: a runtime allows 10,000
            // active ones, and 100 subscribers × 100 writes would otherwise leave that many.
            let delay = std::pin::pin!(worker::Delay::from(duration));
            let gone = std::pin::pin!(tx.cancellation());
            if let futures::future::Either::Left(_) = futures::future::select(delay, gone).await {
                let _ = tx.send(());
            }
        });
        Box::pin(async move {
            let _ = rx.await;
        })
    }

    fn spawn(&self, task: BoxFuture<'static, ()>) {
        wasm_bindgen_futures::spawn_local(task);
    }

    fn run_blocking(&self, work: Box<dyn FnOnce() + Send + 'static>) -> BoxFuture<'static, ()> {
        work();
        Box::pin(futures::future::ready(()))
    }
}
