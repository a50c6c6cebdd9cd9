use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use couchkv::cli::{Cli, Command, TokenArgs, TokenCommand};
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
        Command::Token(TokenCommand::Create(args)) => create_token(args).await,
        Command::Kv(args) => couchkv::kv_cli::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "couchkv stopped");
            ExitCode::FAILURE
        }
    }
}

async fn create_token(args: TokenArgs) -> Result<(), server::ServerError> {
    if !args.read && !args.write {
        eprintln!("say --read or --write");
        return Err(server::ServerError::Io(std::io::Error::other(
            "no scope given",
        )));
    }
    let store = server::open_redb(&args.data)?;
    let token = server::create_token(&store, &args.name, args.namespaces, args.write).await?;
    println!("{token}");
    use couchkv_adapters::Store;
    store.close().await?;
    Ok(())
}

async fn serve(args: couchkv::cli::ServeArgs) -> Result<(), server::ServerError> {
    let store = server::open_store(&args).await?;
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let config = server::RunConfig {
        sweep_interval: Duration::from_secs(args.sweep_interval),
        http: couchkv::http::HttpConfig {
            cors_origins: args.cors_origins.clone(),
            max_body_bytes: args.max_body_bytes,
            body_timeout: Duration::from_secs(args.body_timeout.max(1)),
            idle_timeout: Duration::from_secs(args.idle_timeout.max(1)),
            write_stall_timeout: Duration::from_secs(args.write_stall_timeout.max(1)),
        },
        auth: args.auth_config(),
    };
    server::run(listener, store, config, server::shutdown_signal()).await
}
