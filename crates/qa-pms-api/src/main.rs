//! The `qa-pms` binary: parse the command line and run it.

use clap::Parser;
use qa_pms_api::cli::{Cli, Command};

/// glibc's allocator serializes tokio's worker threads on its arena locks under load; mimalloc
/// keeps per-thread heaps (measured with `qa-pms-bench load`, see the README).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info".into()),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        None => qa_pms_api::cli::serve(cli.serve).await,
        Some(Command::Serve(args)) => qa_pms_api::cli::serve(*args).await,
        Some(Command::Migrate(args)) => qa_pms_api::cli::migrate(args).await,
        Some(Command::Seed(args)) => qa_pms_api::cli::seed(args).await,
        Some(Command::Sync(command)) => qa_pms_api::cli::sync(command).await,
        Some(Command::Cache(command)) => qa_pms_api::cache_cli::run(command).await,
    }
}
