//! `qa-pms-bench restart`: the hit rate of the Zipf workload of the load harness in the first
//! seconds after a restart, against the hit rate before it, with the warm restart (the most-read
//! keys saved at shutdown and loaded back at start, `qa_pms_api::warm`) and without it (cold).
//!
//! Each "process" is its own pool, caches and state over the same database, as a redeploy is.
//! Hit rates are counted by the client from `X-Cache-Status`, so the warm-up's own loads do not
//! count as requests.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qa_pms_api::{AppConfig, AppState};
use qa_pms_core::CacheKind;
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::load::client;
use crate::zipf::Zipf;
use crate::Sizes;

#[derive(Debug, Clone, clap::Args)]
pub struct RestartArgs {
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// How long the first process serves before it is stopped (its hit rate is that of the
    /// last `--window` of it).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub before: std::time::Duration,
    /// The window measured before the restart and after it.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub window: std::time::Duration,
}

/// Requests and hits seen by the clients.
#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    hits: AtomicU64,
}

impl Counts {
    fn hit_rate(&self) -> f64 {
        self.hits.load(Relaxed) as f64 / self.requests.load(Relaxed).max(1) as f64
    }
}

/// One process of the service over `url`: serving on loopback until dropped.
struct Process {
    base: String,
    state: AppState,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Process {
    async fn start(url: &str) -> anyhow::Result<Self> {
        let store = qa_pms_storage::connect(url).await?;
        let (router, state) = qa_pms_api::build(store, AppConfig::default());
        let (base, task) = crate::harness::listen(router).await?;
        Ok(Self { base, state, task })
    }

    /// Stops serving and saves the most-read keys, as `qa-pms serve` does on SIGTERM.
    async fn stop(self) -> anyhow::Result<usize> {
        self.task.abort();
        let saved = qa_pms_api::warm::save(&self.state).await?;
        Ok(saved)
    }
}

/// Zipf GETs on `connections` connections until `stop`; counts into `counts` while `counting`.
fn drive(
    base: &str,
    keys: usize,
    connections: usize,
    stop: &Arc<AtomicBool>,
    counting: &Arc<AtomicBool>,
    counts: &Arc<Counts>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let zipf = Arc::new(Zipf::new(keys, 1.0));
    (0..connections)
        .map(|i| {
            let (zipf, stop, counting, counts) = (
                Arc::clone(&zipf),
                Arc::clone(stop),
                Arc::clone(counting),
                Arc::clone(counts),
            );
            let base = base.to_owned();
            tokio::spawn(async move {
                let client = client();
                let mut rng = StdRng::seed_from_u64(i as u64);
                while !stop.load(Relaxed) {
                    let url = format!("{base}/api/v1/tickets/PROJ-{}", zipf.sample(&mut rng));
                    let Ok(response) = client.get(&url).send().await else {
                        continue;
                    };
                    let hit = response
                        .headers()
                        .get("x-cache-status")
                        .is_some_and(|v| v == "HIT");
                    let _ = response.bytes().await;
                    if counting.load(Relaxed) {
                        counts.requests.fetch_add(1, Relaxed);
                        counts.hits.fetch_add(u64::from(hit), Relaxed);
                    }
                }
            })
        })
        .collect()
}

/// Drives `process` for `total`, counting the requests of `window` starting at `from`.
async fn measure(
    process: &Process,
    keys: usize,
    connections: usize,
    from: Duration,
    window: Duration,
    total: Duration,
) -> Counts {
    let (stop, counting) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(from.is_zero())),
    );
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let tasks = drive(&process.base, keys, connections, &stop, &counting, &counts);
    tokio::time::sleep(from).await;
    counting.store(true, Relaxed);
    tokio::time::sleep(window).await;
    counting.store(false, Relaxed);
    tokio::time::sleep(total.saturating_sub(started.elapsed())).await;
    stop.store(true, Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    Arc::try_unwrap(counts).unwrap_or_default()
}

pub async fn run(url: &str, sizes: Sizes, args: &RestartArgs, smoke: bool) -> anyhow::Result<()> {
    let (before, window, connections) = if smoke {
        (Duration::from_secs(2), Duration::from_secs(1), 4)
    } else {
        (args.before, args.window, args.connections)
    };
    let keys = sizes.tickets.min(10_000) as usize;
    println!(
        "Zipf(s=1) over {keys} ticket keys, {connections} connections; hit rate of the last {} \
         before a restart and of the first {} after it",
        humantime::format_duration(window),
        humantime::format_duration(window)
    );

    let first = Process::start(url).await?;
    let capacity = first.state.cache.settings(CacheKind::Tickets).capacity;
    let before_rate = measure(
        &first,
        keys,
        connections,
        before.saturating_sub(window),
        window,
        before,
    )
    .await
    .hit_rate();
    let saved = first.stop().await?;

    // A warm restart: the saved keys load in the background while the process serves.
    let warm = Process::start(url).await?;
    let restore_state = warm.state.clone();
    let restore = tokio::spawn(async move {
        let started = Instant::now();
        let warmed = qa_pms_api::warm::restore(&restore_state).await;
        (warmed, started.elapsed())
    });
    let warm_rate = measure(&warm, keys, connections, Duration::ZERO, window, window)
        .await
        .hit_rate();
    let (warmed, took) = restore.await?;
    let warmed = warmed.map_err(|e| anyhow::anyhow!("{e}"))?;
    warm.stop().await?;

    // A cold restart, for comparison.
    let cold = Process::start(url).await?;
    let cold_rate = measure(&cold, keys, connections, Duration::ZERO, window, window)
        .await
        .hit_rate();
    cold.task.abort();

    println!(
        "saved at shutdown: {saved} keys (tickets capacity {capacity}); loaded back at start: \
         {} in {took:.1?} ({} failed)",
        warmed.loaded, warmed.failed
    );
    println!("| phase | hit rate | ÷ before | goal |");
    println!("|---|---:|---:|---|");
    println!(
        "| before the restart (last {}) | {:.1}% | 1.00 | |",
        humantime::format_duration(window),
        before_rate * 100.0
    );
    println!(
        "| warm restart (first {}) | {:.1}% | {:.2} | >= 0.90 {} |",
        humantime::format_duration(window),
        warm_rate * 100.0,
        warm_rate / before_rate.max(f64::MIN_POSITIVE),
        if warm_rate >= 0.9 * before_rate {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "| cold restart (first {}) | {:.1}% | {:.2} | |",
        humantime::format_duration(window),
        cold_rate * 100.0,
        cold_rate / before_rate.max(f64::MIN_POSITIVE)
    );
    Ok(())
}
