//! `qa-pms-bench`: what the cache layer buys, measured in one run, on SQLite or PostgreSQL.
//!
//! - `latency`: each cached endpoint, one request at a time, MISS vs HIT of the same key; the cost
//!   of one cache lookup; the hit rate under Zipf key popularity (story 14.4).
//! - `load`: closed-loop load over loopback against the real router and two references (the same
//!   middleware with a static handler, and a bare axum server), nine scenarios, a table, JSON and
//!   an SVG chart.
//! - `jira`: qa-pms in front of a fake Jira Cloud (150 ms, 10 requests/s): Zipf reads with webhooks,
//!   a Jira outage and the recovery, with nginx's stale cache as a reference when it is installed.
//! - `replicas`: three replicas on PostgreSQL across a delayed link: how soon a write is served
//!   everywhere, stale reads without and with the consistency token, MISS vs HIT.
//! - `restart`: the Zipf hit rate in the first seconds after a restart against the rate before it,
//!   with the warm restart and without it.
//!
//! It prints numbers; it asserts nothing (a scenario that errors is reported as such).

mod harness;
mod jira;
mod jira_nginx;
mod jira_phases;
mod jira_report;
mod latency;
mod load;
mod replicas;
mod restart;
mod stats;
mod svg;
mod zipf;

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use qa_pms_api::seed::{seed, SeedSpec};
use sqlx::Connection;

/// The same allocator as the `qa-pms` binary, so that the benchmark measures what production runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(about = "Benchmarks of the qa-pms cache layer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// MISS vs HIT per cached endpoint, lookup cost, Zipf hit rate (one request at a time).
    Latency(latency::LatencyArgs),
    /// Closed-loop load: throughput and latency percentiles against the physical limits.
    Load(harness::LoadArgs),
    /// Tickets from a fake Jira: steady Zipf load with webhooks, an outage, the recovery.
    Jira(jira::JiraArgs),
    /// Three replicas on PostgreSQL across a delayed link: write-to-visible delay, stale reads
    /// with and without the consistency token, MISS vs HIT.
    Replicas(replicas::ReplicasArgs),
    /// The Zipf hit rate just after a restart vs before it: warm restart and cold.
    Restart(restart::RestartArgs),
}

#[derive(Debug, Clone, clap::Args)]
struct DatabaseArgs {
    /// Run on PostgreSQL (default: SQLite).
    #[arg(long, global = true)]
    postgres: bool,
    /// Run on SQLite and then PostgreSQL.
    #[arg(long, global = true, conflicts_with = "postgres")]
    both: bool,
    /// A PostgreSQL server URL whose user may create databases; the benchmark makes its own.
    #[arg(
        long,
        global = true,
        env = "QA_PMS_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_url: String,
    #[arg(long, global = true, default_value_t = 100_000)]
    tickets: u64,
    #[arg(long, global = true, default_value_t = 1_000_000)]
    workflows: u64,
    #[arg(long, global = true, default_value_t = 50_000)]
    catalog: u64,
    /// A few seconds on tiny data, to check the benchmark itself works (CI runs this).
    #[arg(long, global = true)]
    smoke: bool,
}

/// The dataset size a run seeded.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Sizes {
    pub tickets: u64,
    pub workflows: u64,
    pub catalog: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let db = &cli.database;
    if let Command::Replicas(args) = &cli.command {
        // Replicas share a database only on PostgreSQL.
        return replicas::run(&db.postgres_url, args, db.smoke).await;
    }
    if let Command::Jira(args) = &cli.command {
        // Tickets come from the fake Jira: the database starts empty and only mirrors them.
        for backend in backends(db) {
            println!("\n## {backend}");
            jira::run(backend, &db.postgres_url, args, db.smoke).await?;
        }
        return Ok(());
    }
    let sizes = if db.smoke {
        Sizes {
            tickets: 2_000,
            workflows: 5_000,
            catalog: 500,
        }
    } else {
        Sizes {
            tickets: db.tickets,
            workflows: db.workflows,
            catalog: db.catalog,
        }
    };
    anyhow::ensure!(sizes.tickets >= 1, "--tickets must be at least 1");
    println!(
        "qa-pms-bench: {} tickets, {} workflows, {} catalog entries; {} cores; {}",
        sizes.tickets,
        sizes.workflows,
        sizes.catalog,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        if cfg!(debug_assertions) {
            "DEBUG build: numbers are not representative"
        } else {
            "release build"
        }
    );
    for backend in backends(db) {
        println!("\n## {backend}");
        let database = TempDatabase::create(backend, &db.postgres_url, "").await?;
        let result = async {
            let store = qa_pms_storage::connect(&database.url).await?;
            store.migrate().await?;
            let started = Instant::now();
            let spec = SeedSpec {
                tickets: sizes.tickets,
                workflows: sizes.workflows,
                catalog: sizes.catalog,
                seed: 1,
                history_days: 365,
            };
            seed(store.as_ref(), spec, chrono::Utc::now()).await?;
            println!("seeded in {:.1?}", started.elapsed());
            match &cli.command {
                Command::Latency(args) => {
                    let args = if db.smoke {
                        latency::LatencyArgs {
                            pairs: 20,
                            zipf_requests: 2_000,
                        }
                    } else {
                        args.clone()
                    };
                    latency::run(Arc::clone(&store), sizes, &args).await
                }
                Command::Load(args) => {
                    harness::run(backend, store, sizes, &args.for_smoke(db.smoke)).await
                }
                Command::Restart(args) => restart::run(&database.url, sizes, args, db.smoke).await,
                Command::Jira(_) | Command::Replicas(_) => {
                    unreachable!("these scenarios seed nothing")
                }
            }
        }
        .await;
        database.drop_now().await;
        result?;
    }
    Ok(())
}

/// The backends a run covers, in order.
fn backends(db: &DatabaseArgs) -> Vec<&'static str> {
    let mut backends = Vec::new();
    if !db.postgres {
        backends.push("sqlite");
    }
    if db.postgres || db.both {
        backends.push("postgres");
    }
    backends
}

/// A database made for one run: an SQLite file in the temp dir or a new PostgreSQL database.
struct TempDatabase {
    url: String,
    postgres: Option<(String, String)>,
}

impl TempDatabase {
    /// `tag` tells apart the databases of one process (empty for the only one).
    async fn create(backend: &str, postgres_url: &str, tag: &str) -> anyhow::Result<Self> {
        let id = std::process::id();
        if backend == "sqlite" {
            let path = std::env::temp_dir().join(format!("qa-pms-bench-{id}{tag}.db"));
            return Ok(Self {
                url: format!("sqlite:{}", path.display()),
                postgres: None,
            });
        }
        let name = format!("qa_pms_bench_{id}{tag}");
        let mut admin = sqlx::PgConnection::connect(postgres_url)
            .await
            .with_context(|| format!("cannot reach PostgreSQL at {postgres_url}"))?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        let url = match postgres_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => bail!("--postgres-url needs a database part"),
        };
        Ok(Self {
            url,
            postgres: Some((postgres_url.to_owned(), name)),
        })
    }

    async fn drop_now(self) {
        match self.postgres {
            Some((admin_url, name)) => {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await;
                }
            }
            None => {
                let path = self.url.trim_start_matches("sqlite:");
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{path}{suffix}"));
                }
            }
        }
    }
}
