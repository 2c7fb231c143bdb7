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

/// Requests and hits seen by the clients, per tenth of a second since counting began.
struct Counts {
    started: std::sync::OnceLock<Instant>,
    requests: Vec<AtomicU64>,
    hits: Vec<AtomicU64>,
}

impl Counts {
    fn new(window: Duration) -> Self {
        let slots = (window.as_millis() / 100) as usize + 2;
        Self {
            started: std::sync::OnceLock::new(),
            requests: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            hits: (0..slots).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn record(&self, hit: bool) {
        let started = self.started.get_or_init(Instant::now);
        let slot = (started.elapsed().as_millis() / 100) as usize;
        let slot = slot.min(self.requests.len() - 1);
        self.requests[slot].fetch_add(1, Relaxed);
        self.hits[slot].fetch_add(u64::from(hit), Relaxed);
    }

    /// The hit rate of the first `within` of the window.
    fn hit_rate(&self, within: Duration) -> f64 {
        let slots = ((within.as_millis() / 100) as usize).min(self.requests.len());
        let sum = |v: &[AtomicU64]| v[..slots].iter().map(|c| c.load(Relaxed)).sum::<u64>();
        sum(&self.hits) as f64 / sum(&self.requests).max(1) as f64
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
                        counts.record(hit);
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
    let counts = Arc::new(Counts::new(window));
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
    Arc::try_unwrap(counts).unwrap_or_else(|_| Counts::new(window))
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
    let before_counts = measure(
        &first,
        keys,
        connections,
        before.saturating_sub(window),
        window,
        before,
    )
    .await;
    let saved = first.stop().await?;

    // A warm restart: the saved keys load in the background while the process serves.
    let warm = Process::start(url).await?;
    let restore_state = warm.state.clone();
    let restore = tokio::spawn(async move {
        let started = Instant::now();
        let warmed = qa_pms_api::warm::restore(&restore_state).await;
        (warmed, started.elapsed())
    });
    let warm_counts = measure(&warm, keys, connections, Duration::ZERO, window, window).await;
    let (warmed, took) = restore.await?;
    let warmed = warmed.map_err(|e| anyhow::anyhow!("{e}"))?;
    warm.stop().await?;

    // A cold restart, for comparison.
    let cold = Process::start(url).await?;
    let cold_counts = measure(&cold, keys, connections, Duration::ZERO, window, window).await;
    cold.task.abort();

    println!(
        "saved at shutdown: {saved} keys (tickets capacity {capacity}); loaded back at start: \
         {} in {took:.1?} ({} failed)",
        warmed.loaded, warmed.failed
    );
    let first_second = Duration::from_secs(1).min(window);
    let before_rate = before_counts.hit_rate(window);
    let span = humantime::format_duration(window);
    let second = humantime::format_duration(first_second);
    println!("| phase | hit rate, first {second} | hit rate, {span} | ÷ before | goal |");
    println!("|---|---:|---:|---:|---|");
    println!(
        "| before the restart (last {span}) | | {:.1}% | 1.00 | |",
        before_rate * 100.0
    );
    for (name, counts, goal) in [
        ("warm restart", &warm_counts, true),
        ("cold restart", &cold_counts, false),
    ] {
        let rate = counts.hit_rate(window);
        let verdict = match (goal, rate >= 0.9 * before_rate) {
            (false, _) => "",
            (true, true) => ">= 0.90 met",
            (true, false) => ">= 0.90 NOT met",
        };
        println!(
            "| {name} (first {span}) | {:.1}% | {:.1}% | {:.2} | {verdict} |",
            counts.hit_rate(first_second) * 100.0,
            rate * 100.0,
            rate / before_rate.max(f64::MIN_POSITIVE),
        );
    }
    Ok(())
}
