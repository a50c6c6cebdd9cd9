use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use couchkv::cli::{Cli, Command};
use couchkv::server;
use tracing_subscriber::EnvFilter;

/// glibc's allocator spent a third of the server's CPU in `_int_malloc` and
/// `malloc_consolidate` under PouchDB replication (measured with perf); mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "couchkv stopped");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: couchkv::cli::ServeArgs) -> Result<(), server::ServerError> {
    let store = server::open_store(&args)?;
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let config = server::RunConfig {
        sweep_interval: Duration::from_secs(args.sweep_interval),
        http: couchkv::http::HttpConfig {
            cors_origins: args.cors_origins.clone(),
            max_body_bytes: args.max_body_bytes,
        },
        auth: args.auth_config(),
    };
    server::run(listener, store, config, server::shutdown_signal()).await
}
