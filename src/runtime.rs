//! What a host hands the API core besides the store and the clock: timers, background tasks and a
//! place for CPU-heavy work. The native host runs them on tokio; a Worker on its event loop
//! (`worker::Delay`, `spawn_local`). The core never names a runtime itself.

use std::time::Duration;

use futures::future::BoxFuture;

/// Timers and tasks, as the host provides them.
pub trait Runtime: Send + Sync + 'static {
    /// A future that completes once `duration` has passed. Heartbeats, long-poll timeouts and
    /// login back-off wait on it.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;

    /// Runs `task` in the background, detached from the request that started it (compaction).
    fn spawn(&self, task: BoxFuture<'static, ()>);

    /// Runs `work` where it does not hold up other requests (password hashing), and completes
    /// when it has run. A host without threads runs it in place.
    fn run_blocking(&self, work: Box<dyn FnOnce() + Send + 'static>) -> BoxFuture<'static, ()>;
}

impl dyn Runtime {
    /// [`Runtime::run_blocking`] with a result; `None` if the work did not finish (it panicked on
    /// the host's side).
    pub async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.run_blocking(Box::new(move || {
            let _ = tx.send(work());
        }))
        .await;
        rx.await.ok()
    }
}

/// The native host's runtime: tokio timers and tasks, a blocking pool for CPU-heavy work.
#[cfg(feature = "server")]
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioRuntime;

#[cfg(feature = "server")]
impl Runtime for TokioRuntime {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }

    fn spawn(&self, task: BoxFuture<'static, ()>) {
        tokio::spawn(task);
    }

    fn run_blocking(&self, work: Box<dyn FnOnce() + Send + 'static>) -> BoxFuture<'static, ()> {
        let handle = tokio::task::spawn_blocking(work);
        Box::pin(async move {
            let _ = handle.await;
        })
    }
}
