//! `qa-pms-bench load`: the nine scenarios of the load harness, each measured against the limits
//! of this machine in the same run.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::Request;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use qa_pms_api::layers::{self, LayerKind, Limits};
use qa_pms_api::{AppConfig, AppState};
use qa_pms_core::template::BUG_FIX_ID;
use qa_pms_core::{CacheConfig, CacheKind, JiraTicket, Period, TicketKey, WorkflowTemplate};
use rand::Rng;
use serde::Serialize;
use serde_json::json;
use tower::ServiceExt;

use crate::load::{
    self, drive, drive_samples, get_expecting, get_not_modified, Load, Measured, Run,
};
use crate::stats::Samples;
use crate::zipf::Zipf;
use crate::Sizes;

#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Measured time per scenario (after a warm-up of a fifth of it).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Where to write the numbers as JSON.
    #[arg(long, default_value = "bench-out/load.json")]
    pub json: std::path::PathBuf,
    /// Where to write the latency chart.
    #[arg(long, default_value = "bench-out/load.svg")]
    pub svg: std::path::PathBuf,
    /// Run only the scenarios whose name contains this text (for profiling one of them);
    /// `stack`: the stack against the minimal server alone; `layers`: the per-layer cost alone.
    #[arg(long)]
    pub only: Option<String>,
    /// Rounds the comparison of the stack with the minimal server is interleaved in (each
    /// scenario runs `duration / rounds` per round). Each ratio is the median of the rounds'
    /// ratios, so that a slower moment of a shared machine weighs on one round only.
    #[arg(long, default_value_t = 10)]
    pub rounds: u32,
    /// The per-layer measurement sends exactly this many requests per variant (after a warm-up)
    /// instead of running for a time: for counting instructions with callgrind.
    #[arg(long)]
    pub layer_requests: Option<u32>,
}

impl LoadArgs {
    pub fn for_smoke(&self, smoke: bool) -> Self {
        let mut args = self.clone();
        if smoke {
            args.duration = Duration::from_millis(300);
            args.connections = args.connections.min(4);
            args.rounds = 1;
        }
        args
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub name: String,
    #[serde(flatten)]
    pub measured: Measured,
    /// Throughput as a share of the reference it is compared with, when it has one.
    pub vs_bare: Option<f64>,
    pub vs_minimal: Option<f64>,
}

impl Scenario {
    fn new(name: impl Into<String>, measured: Measured) -> Self {
        Self {
            name: name.into(),
            measured,
            vs_bare: None,
            vs_minimal: None,
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub backend: String,
    pub sizes: Option<Sizes>,
    pub connections: usize,
    pub duration_s: f64,
    pub scenarios: Vec<Scenario>,
    pub zipf_hit_rate: f64,
    pub zipf_best_possible: f64,
    pub stampede_loads: u64,
    pub stampede_p99_us: f64,
    pub mix_stale_reads: u64,
    pub mix_writes: u64,
    pub rss_before_fill_kib: u64,
    pub rss_after_fill_kib: u64,
    pub rss_peak_kib: u64,
    /// What the caches' entries cost with every cache full (`CacheStats::bytes`), and the sum of
    /// their byte budgets.
    pub cache_bytes_full: u64,
    pub cache_budget_bytes: u64,
    /// What the stack costs, layer by layer, in process (see [`layer_costs`]).
    pub layers: Vec<LayerRow>,
    /// The stack against the minimal server, round by round (see [`stack`]).
    pub stack_ratios: Vec<RoundRatios>,
}

/// A throughput ratio measured in each round of the interleaved comparison: within a round the
/// two sides ran seconds apart, so a slow moment of the machine moves both.
#[derive(Debug, Clone, Serialize)]
pub struct RoundRatios {
    /// `<scenario> ÷ <reference>`.
    pub name: String,
    pub scenario: String,
    pub reference: String,
    /// Requests/s of the scenario ÷ those of the reference, one per round.
    pub rounds: Vec<f64>,
}

impl RoundRatios {
    pub fn median(&self) -> f64 {
        let mut sorted = self.rounds.clone();
        sorted.sort_by(f64::total_cmp);
        match sorted.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        }
    }

    fn min(&self) -> f64 {
        self.rounds.iter().copied().fold(f64::INFINITY, f64::min)
    }

    fn max(&self) -> f64 {
        self.rounds
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

impl Report {
    /// What the scenario called `name` measured, if it ran.
    fn measured(&self, name: &str) -> Option<&Measured> {
        self.scenarios
            .iter()
            .find(|s| s.name == name)
            .map(|s| &s.measured)
    }
}

struct Servers {
    cached: String,
    uncached: String,
    minimal: String,
    state: AppState,
    _tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Serves `router` on 127.0.0.1:0 until its task is aborted; returns its base URL and the task.
pub(crate) async fn listen(
    router: Router,
) -> anyhow::Result<(String, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(qa_pms_api::serve(listener, router, std::future::pending()));
    Ok((base, task))
}

/// A route that answers `body` as JSON: no cache lookup, no database.
fn static_json<S: Clone + Send + Sync + 'static>(path: &str, body: Bytes) -> Router<S> {
    Router::new().route(
        path,
        get(move || {
            let body = body.clone();
            async move { ([(CONTENT_TYPE, "application/json")], body) }
        }),
    )
}

/// [`static_json`] with the headers a cached hit carries after the stack (values of the same
/// length): what the wire and the client cost for them, apart from any middleware.
fn with_hit_headers(path: &str, body: Bytes) -> Router {
    use axum::http::header::{AGE, ETAG};
    use axum::http::HeaderName;
    const HEADERS: [(HeaderName, &str); 6] = [
        (CONTENT_TYPE, "application/json"),
        (HeaderName::from_static("x-cache-status"), "HIT"),
        (
            HeaderName::from_static("cache-status"),
            "qa-pms; hit; ttl=299",
        ),
        (AGE, "1"),
        (ETAG, "\"0123456789abcdef0123456789abcdef\""),
        (
            HeaderName::from_static("x-request-id"),
            "01234567-89ab-4def-8123-456789abcdef",
        ),
    ];
    Router::new().route(
        path,
        get(move || {
            let body = body.clone();
            async move { (HEADERS, body) }
        }),
    )
}

async fn start(store: Arc<dyn qa_pms_storage::Store>) -> anyhow::Result<Servers> {
    // The reference bytes: exactly what a cached ticket response carries.
    let ticket = store.ticket(&TicketKey::parse("PROJ-1")?).await?;
    let body = Bytes::from(serde_json::to_vec(&ticket)?);
    let bare = static_json("/bench/bare", body.clone());
    let (cached_router, state) =
        qa_pms_api::build_with(Arc::clone(&store), AppConfig::default(), bare);
    let uncached_config = AppConfig {
        cache: CacheConfig::disabled(),
        ..AppConfig::default()
    };
    let (uncached_router, _) = qa_pms_api::build(Arc::clone(&store), uncached_config);
    let minimal_router =
        static_json("/", body.clone()).merge(with_hit_headers("/hit-headers", body));
    let (cached, a) = listen(cached_router).await?;
    let (uncached, b) = listen(uncached_router).await?;
    let (minimal, c) = listen(minimal_router).await?;
    Ok(Servers {
        cached,
        uncached,
        minimal,
        state,
        _tasks: vec![a, b, c],
    })
}

/// A scenario of plain GETs of one URL.
async fn gets(load: Load, url: String, cache: Option<&'static str>) -> Measured {
    let url = Arc::new(url);
    let run = |load| {
        let url = Arc::clone(&url);
        drive(load, move |client, rng, _| {
            let url = Arc::clone(&url);
            async move { (rng, get_expecting(&client, &url, cache).await) }
        })
    };
    run(warm_up(load)).await;
    run(load).await
}

fn warm_up(load: Load) -> Load {
    Load {
        duration: load.duration / 5,
        ..load
    }
}

pub async fn run(
    backend: &str,
    store: Arc<dyn qa_pms_storage::Store>,
    sizes: Sizes,
    args: &LoadArgs,
) -> anyhow::Result<()> {
    let load = Load {
        connections: args.connections,
        duration: args.duration,
    };
    let servers = start(Arc::clone(&store)).await?;
    let mut report = Report {
        backend: backend.to_owned(),
        sizes: Some(sizes),
        connections: load.connections,
        duration_s: load.duration.as_secs_f64(),
        ..Report::default()
    };
    let (cached, uncached) = (&servers.cached, &servers.uncached);
    let template = format!("/api/v1/templates/{BUG_FIX_ID}");
    let kpi = "/api/v1/dashboard/kpi?period=90d";
    let search = "/api/v1/search?query=login+api";

    let plain: Vec<(&str, String, Option<&'static str>)> = vec![
        (
            "2 ticket MISS",
            format!("{uncached}/api/v1/tickets/PROJ-1"),
            Some("MISS"),
        ),
        ("3 search HIT", format!("{cached}{search}"), Some("HIT")),
        ("3 search MISS", format!("{uncached}{search}"), Some("MISS")),
        ("4 kpi-90d HIT", format!("{cached}{kpi}"), Some("HIT")),
        ("4 kpi-90d MISS", format!("{uncached}{kpi}"), Some("MISS")),
        ("5 template HIT", format!("{cached}{template}"), Some("HIT")),
    ];
    let wanted = |name: &str| args.only.as_deref().is_none_or(|only| name.contains(only));
    // The limits, the ticket HIT and the 304 are compared with each other, in one interleaved
    // run (`--only stack` asks for the five).
    let stack_wanted: Vec<&str> = STACK
        .into_iter()
        .filter(|name| args.only.as_deref() == Some("stack") || wanted(name))
        .collect();
    if !stack_wanted.is_empty() {
        stack(
            &mut report,
            &servers,
            load,
            args.rounds.max(1),
            &stack_wanted,
        )
        .await?;
    }
    let client = load::client();
    for (name, url, cache) in plain.into_iter().filter(|(name, ..)| wanted(name)) {
        // Fill the cache so that a HIT scenario measures hits only.
        get_expecting(&client, &url, None).await;
        let measured = gets(load, url, cache).await;
        report.scenarios.push(Scenario::new(name, measured));
    }
    // Throughput ratios to the two limits, measured above in this run.
    let rps = |name: &str| report.measured(name).map_or(f64::NAN, |m| m.rps);
    let (minimal_rps, bare_rps) = (rps(MINIMAL), rps(BARE));
    for s in &mut report.scenarios {
        s.vs_bare = Some(s.measured.rps / bare_rps);
        s.vs_minimal = Some(s.measured.rps / minimal_rps);
    }

    if wanted("6 Zipf") {
        zipf(&mut report, &servers, sizes, load).await?;
    }
    if wanted("7 95/5 read/PATCH mix") {
        mix(&mut report, &servers, sizes, load).await?;
    }
    if wanted("8 stampede") {
        stampede(&mut report, &servers, sizes).await?;
    }
    if wanted("9 memory") {
        fill_to_capacity(&mut report, &servers, store.as_ref()).await?;
    }
    if wanted("layers: per-layer cost") || args.only.as_deref() == Some("layers") {
        report.layers = layer_costs(Arc::clone(&store), load.duration, args.layer_requests).await?;
    }

    print(&report);
    if let Some(dir) = args.json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let with_backend = |p: &std::path::Path| {
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("load");
        let ext = p.extension().and_then(|s| s.to_str()).unwrap_or("");
        p.with_file_name(format!("{stem}-{backend}.{ext}"))
    };
    let (json_path, svg_path) = (with_backend(&args.json), with_backend(&args.svg));
    std::fs::write(&json_path, serde_json::to_vec_pretty(&report)?)?;
    if let Some(dir) = svg_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&svg_path, crate::svg::latency_chart(&report))?;
    println!("wrote {} and {}", json_path.display(), svg_path.display());
    Ok(())
}

const MINIMAL: &str = "limit: minimal axum";
const BARE: &str = "limit: bare route";
const HIT: &str = "1 ticket HIT";
const NOT_MODIFIED: &str = "1 ticket 304";
const MINIMAL_HIT_HEADERS: &str = "limit: minimal, HIT headers";
/// The scenarios [`stack`] measures together.
const STACK: [&str; 5] = [MINIMAL, MINIMAL_HIT_HEADERS, BARE, HIT, NOT_MODIFIED];
/// What the whole stack should keep of the minimal server's throughput.
pub const GOAL_VS_MINIMAL: f64 = 0.9;

/// What a request of a scenario must answer.
#[derive(Clone)]
enum Expect {
    /// 2xx, with this `X-Cache-Status` if any.
    Ok(Option<&'static str>),
    /// 304 from the cache for `If-None-Match` with this tag.
    NotModified(Arc<str>),
}

async fn run_gets(load: Load, url: &str, expect: &Expect) -> Run {
    let (url, expect) = (Arc::<str>::from(url), expect.clone());
    drive_samples(load, move |client, rng, _| {
        let (url, expect) = (Arc::clone(&url), expect.clone());
        async move {
            let ok = match &expect {
                Expect::Ok(cache) => get_expecting(&client, &url, *cache).await,
                Expect::NotModified(etag) => get_not_modified(&client, &url, etag).await,
            };
            (rng, ok)
        }
    })
    .await
}

/// Scenario 1 and the limits: the minimal axum server (also with the headers of a hit), the bare
/// route behind the middleware, a ticket HIT and a ticket 304 (`If-None-Match` with the ETag of
/// a first GET), those of them `wanted`, in `rounds` interleaved rounds after one warm-up each,
/// so that their ratios come from the same moments.
async fn stack(
    report: &mut Report,
    servers: &Servers,
    load: Load,
    rounds: u32,
    wanted: &[&str],
) -> anyhow::Result<()> {
    let ticket = format!("{}/api/v1/tickets/PROJ-1", servers.cached);
    // Fills the cache, and gives the tag the 304s send back.
    let first = load::client().get(&ticket).send().await?;
    let etag = first
        .headers()
        .get(ETAG)
        .context("a cached ticket has an ETag")?
        .to_str()?
        .to_owned();
    first.bytes().await?;
    let mut targets = vec![
        (MINIMAL, format!("{}/", servers.minimal), Expect::Ok(None)),
        (
            MINIMAL_HIT_HEADERS,
            format!("{}/hit-headers", servers.minimal),
            Expect::Ok(Some("HIT")),
        ),
        (
            BARE,
            format!("{}/bench/bare", servers.cached),
            Expect::Ok(None),
        ),
        (HIT, ticket.clone(), Expect::Ok(Some("HIT"))),
        (NOT_MODIFIED, ticket, Expect::NotModified(etag.into())),
    ];
    targets.retain(|(name, ..)| wanted.contains(name));
    for (_, url, expect) in &targets {
        run_gets(warm_up(load), url, expect).await;
    }
    let round = Load {
        duration: load.duration / rounds,
        ..load
    };
    let mut runs = vec![Run::default(); targets.len()];
    let mut round_rps = vec![Vec::new(); targets.len()];
    for r in 0..rounds as usize {
        // Each round starts with another scenario, so that none is always first.
        for i in (0..targets.len()).map(|i| (i + r) % targets.len()) {
            let (_, url, expect) = &targets[i];
            let run = run_gets(round, url, expect).await;
            round_rps[i].push(run.measured().rps);
            runs[i].add(run);
        }
    }
    let rps_of = |name: &str| {
        targets
            .iter()
            .position(|(n, ..)| *n == name)
            .map(|i| &round_rps[i])
    };
    let mut pairs: Vec<(&str, &str)> = [MINIMAL_HIT_HEADERS, BARE, HIT, NOT_MODIFIED]
        .into_iter()
        .map(|name| (name, MINIMAL))
        .collect();
    // What the hit's headers cost apart (they cost the client too), and the 304 against the HIT.
    pairs.push((HIT, MINIMAL_HIT_HEADERS));
    pairs.push((NOT_MODIFIED, HIT));
    for (scenario, reference) in pairs {
        if let (Some(s), Some(r)) = (rps_of(scenario), rps_of(reference)) {
            report.stack_ratios.push(RoundRatios {
                name: format!("{scenario} ÷ {reference}"),
                scenario: scenario.to_owned(),
                reference: reference.to_owned(),
                rounds: s.iter().zip(r).map(|(s, r)| s / r).collect(),
            });
        }
    }
    for ((name, ..), run) in targets.iter().zip(runs) {
        report.scenarios.push(Scenario::new(*name, run.measured()));
    }
    Ok(())
}

/// One line of the per-layer table.
#[derive(Debug, Clone, Serialize)]
pub struct LayerRow {
    pub variant: String,
    /// Time per request: the 10th percentile of the means of the variant's batches.
    pub ns_per_request: f64,
    /// What the line costs: for a stack without one layer, that layer (full stack minus this
    /// line); for the full stack, the whole stack (full stack minus no middleware).
    pub cost_ns: Option<f64>,
}

/// Requests per batch of the in-process measurement.
const LAYER_BATCH: u32 = 100;

type MakeRequest = Box<dyn Fn() -> Request<Body> + Send + Sync>;

/// Per-layer cost, in process: requests sent straight into the router (`oneshot`, no sockets, no
/// client), one at a time, through the full stack, the stack without each layer in turn, and no
/// middleware at all, all serving the bare route; then a ticket HIT and a ticket 304 through the
/// full stack. The variants take turns batch by batch for `2 × duration`, and each line is the
/// 10th percentile of its batches' means: another process on the machine can only make a batch
/// slower.
///
/// With `exact_requests` set, every variant runs one warm-up batch and then one batch of that
/// many requests instead, for counting instructions: under
/// `valgrind --tool=callgrind --toggle-collect='*run_requests*' --dump-after='*run_requests*'`
/// each measured batch is one dump, in the order of the table, after the warm-ups.
async fn layer_costs(
    store: Arc<dyn qa_pms_storage::Store>,
    duration: Duration,
    exact_requests: Option<u32>,
) -> anyhow::Result<Vec<LayerRow>> {
    let ticket = store.ticket(&TicketKey::parse("PROJ-1")?).await?;
    let body = Bytes::from(serde_json::to_vec(&ticket)?);
    let config = AppConfig::default();
    let stack = |without: &[LayerKind]| -> anyhow::Result<Router> {
        let state = AppState::new(Arc::clone(&store), &config)?;
        let routes = static_json("/bench/bare", body.clone());
        Ok(layers::apply_without(routes, &state, Limits::default(), without).with_state(state))
    };
    let get = |uri: &str, etag: Option<&str>| -> MakeRequest {
        let (uri, etag) = (uri.to_owned(), etag.map(str::to_owned));
        Box::new(move || {
            let mut request = Request::get(uri.as_str());
            if let Some(etag) = &etag {
                request = request.header(IF_NONE_MATCH, etag.as_str());
            }
            request.body(Body::empty()).expect("a valid request")
        })
    };
    let mut variants: Vec<(String, Router, MakeRequest)> = Vec::new();
    let bare = "/bench/bare";
    variants.push((
        "no middleware".into(),
        stack(&LayerKind::ALL)?,
        get(bare, None),
    ));
    variants.push(("full stack".into(), stack(&[])?, get(bare, None)));
    for kind in LayerKind::ALL {
        variants.push((
            format!("  without {}", kind.name()),
            stack(&[kind])?,
            get(bare, None),
        ));
    }
    // The real app for a HIT and a 304.
    let (app, _) = qa_pms_api::build(Arc::clone(&store), AppConfig::default());
    let uri = "/api/v1/tickets/PROJ-1";
    let first = app.clone().oneshot(get(uri, None)()).await?;
    let etag = first
        .headers()
        .get(ETAG)
        .context("a cached ticket has an ETag")?
        .to_str()?
        .to_owned();
    variants.push(("ticket HIT, full stack".into(), app.clone(), get(uri, None)));
    variants.push(("ticket 304, full stack".into(), app, get(uri, Some(&etag))));

    // Polling on this thread, outside the scheduler: the variants' futures are all ready at once.
    let times = tokio::task::block_in_place(|| {
        let mut times = vec![Vec::new(); variants.len()];
        let ns = |elapsed: Duration, n: u32| elapsed.as_nanos() as f64 / f64::from(n);
        match exact_requests {
            Some(n) => {
                for (_, router, make) in &variants {
                    run_requests(router, make.as_ref(), LAYER_BATCH);
                }
                for (i, (_, router, make)) in variants.iter().enumerate() {
                    times[i].push(ns(run_requests(router, make.as_ref(), n), n));
                }
            }
            None => {
                let started = Instant::now();
                let mut round = 0;
                while started.elapsed() < 2 * duration || round < 2 {
                    for (i, (_, router, make)) in variants.iter().enumerate() {
                        let elapsed = run_requests(router, make.as_ref(), LAYER_BATCH);
                        if round > 0 {
                            times[i].push(ns(elapsed, LAYER_BATCH));
                        }
                    }
                    round += 1;
                }
            }
        }
        times
    });
    let low = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 10]
    };
    let ns: Vec<f64> = times.into_iter().map(low).collect();
    let (none, full) = (ns[0], ns[1]);
    Ok(variants
        .iter()
        .zip(&ns)
        .enumerate()
        .map(|(i, ((variant, ..), &t))| LayerRow {
            variant: variant.clone(),
            ns_per_request: t,
            cost_ns: if i == 1 {
                Some(full - none)
            } else if (2..2 + LayerKind::ALL.len()).contains(&i) {
                Some(full - t)
            } else {
                None
            },
        })
        .collect())
}

/// Sends `n` requests into `router` one after the other, reading each response's body; how long
/// that took.
#[inline(never)]
fn run_requests(
    router: &Router,
    make: &(dyn Fn() -> Request<Body> + Send + Sync),
    n: u32,
) -> Duration {
    let started = Instant::now();
    for _ in 0..n {
        let response = ready(router.clone().oneshot(make())).expect("a router never fails");
        let _ = ready(axum::body::to_bytes(response.into_body(), usize::MAX));
    }
    started.elapsed()
}

/// Polls `future` on this thread until it is ready (at once, for the routes measured here).
fn ready<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::yield_now();
    }
}

/// Keys the Zipf scenarios draw from (fewer if the dataset has fewer tickets).
const ZIPF_KEYS: u64 = 10_000;

fn zipf_keys(sizes: Sizes) -> usize {
    sizes.tickets.min(ZIPF_KEYS) as usize
}

/// Scenario 6: Zipf(s=1) over 10k ticket keys on a cache of the default capacity: hit rate against the
/// best any cache of that size can do.
async fn zipf(
    report: &mut Report,
    servers: &Servers,
    sizes: Sizes,
    load: Load,
) -> anyhow::Result<()> {
    let keys = zipf_keys(sizes);
    let capacity = servers.state.cache.settings(CacheKind::Tickets).capacity as usize;
    let distribution = Arc::new(Zipf::new(keys, 1.0));
    let base = Arc::new(servers.cached.clone());
    let run = |load| {
        let (distribution, base) = (Arc::clone(&distribution), Arc::clone(&base));
        drive(load, move |client, mut rng, _| {
            let url = format!(
                "{base}/api/v1/tickets/PROJ-{}",
                distribution.sample(&mut rng)
            );
            async move {
                let ok = get_expecting(&client, &url, None).await;
                (rng, ok)
            }
        })
    };
    run(load).await; // warm-up: as long as the measurement
    let before = servers.state.cache.stats(CacheKind::Tickets);
    let measured = run(load).await;
    let after = servers.state.cache.stats(CacheKind::Tickets);
    let hits = after.hits - before.hits;
    let lookups = hits + (after.misses - before.misses);
    report.zipf_hit_rate = hits as f64 / lookups.max(1) as f64;
    report.zipf_best_possible = distribution.top_mass(capacity);
    report
        .scenarios
        .push(Scenario::new(format!("6 Zipf over {keys} keys"), measured));
    Ok(())
}

/// Scenario 7: 95% reads, 5% PATCHes over Zipf keys. Writes to one key are serialized by the client, so
/// a key's versions commit in order; a read is stale if it shows a version older than the last
/// one acknowledged before the read began.
async fn mix(
    report: &mut Report,
    servers: &Servers,
    sizes: Sizes,
    load: Load,
) -> anyhow::Result<()> {
    let keys = zipf_keys(sizes);
    struct Shared {
        zipf: Zipf,
        base: String,
        acked: Vec<AtomicU64>,
        locks: Vec<tokio::sync::Mutex<()>>,
        next_version: AtomicU64,
        stale: AtomicU64,
        writes: AtomicU64,
    }
    let shared = Arc::new(Shared {
        zipf: Zipf::new(keys, 1.0),
        base: servers.cached.clone(),
        acked: (0..=keys).map(|_| AtomicU64::new(0)).collect(),
        locks: (0..=keys).map(|_| tokio::sync::Mutex::new(())).collect(),
        next_version: AtomicU64::new(0),
        stale: AtomicU64::new(0),
        writes: AtomicU64::new(0),
    });
    let sh = Arc::clone(&shared);
    let measured = drive(load, move |client, mut rng, _| {
        let sh = Arc::clone(&sh);
        let k = sh.zipf.sample(&mut rng);
        let write = rng.gen_bool(0.05);
        async move {
            let url = format!("{}/api/v1/tickets/PROJ-{k}", sh.base);
            let ok = if write {
                let _one_writer = sh.locks[k].lock().await;
                let version = sh.next_version.fetch_add(1, SeqCst) + 1;
                let sent = client
                    .patch(&url)
                    .json(&json!({"summary": format!("v{version}")}))
                    .send()
                    .await;
                let ok = matches!(&sent, Ok(r) if r.status().is_success());
                if ok {
                    sh.acked[k].fetch_max(version, SeqCst);
                    sh.writes.fetch_add(1, SeqCst);
                }
                ok
            } else {
                let floor = sh.acked[k].load(SeqCst);
                match client.get(&url).send().await {
                    Ok(r) if r.status().is_success() => match r.json::<JiraTicket>().await {
                        Ok(ticket) => {
                            let seen = ticket
                                .summary
                                .strip_prefix('v')
                                .and_then(|v| v.parse::<u64>().ok())
                                .unwrap_or(0);
                            if seen < floor {
                                sh.stale.fetch_add(1, SeqCst);
                            }
                            true
                        }
                        Err(_) => false,
                    },
                    _ => false,
                }
            };
            (rng, ok)
        }
    })
    .await;
    report.mix_stale_reads = shared.stale.load(SeqCst);
    report.mix_writes = shared.writes.load(SeqCst);
    report
        .scenarios
        .push(Scenario::new("7 95/5 read/PATCH mix", measured));
    Ok(())
}

/// Scenario 8: 1,000 simultaneous requests, each on its own connection, for one cold key. Connections are
/// opened first (with a request to `/health`), so that what is measured is the stampede on the
/// cache, not 1,000 TCP handshakes racing the accept backlog.
async fn stampede(report: &mut Report, servers: &Servers, sizes: Sizes) -> anyhow::Result<()> {
    const REQUESTS: usize = 1_000;
    let key = TicketKey::parse(&format!("PROJ-{}", sizes.tickets))?;
    servers.state.cache.tickets.invalidate(&key).await;
    let url = Arc::new(format!("{}/api/v1/tickets/{key}", servers.cached));
    let health = Arc::new(format!("{}/health", servers.cached));
    let before = servers.state.cache.stats(CacheKind::Tickets).loads;
    let barrier = Arc::new(tokio::sync::Barrier::new(REQUESTS));
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let (url, barrier, health) =
                (Arc::clone(&url), Arc::clone(&barrier), Arc::clone(&health));
            tokio::spawn(async move {
                let client = load::client();
                get_expecting(&client, &health, None).await;
                barrier.wait().await;
                let start = Instant::now();
                let ok = get_expecting(&client, &url, None).await;
                (start.elapsed(), ok)
            })
        })
        .collect();
    let mut samples = Samples::default();
    let mut errors = 0;
    let started = Instant::now();
    // `before` was read before any task ran; warming connections on /health loads no ticket, so
    // the loads counted between it and the end are the stampede's alone.
    for task in tasks {
        let (elapsed, ok) = task.await?;
        samples.push(elapsed);
        errors += u64::from(!ok);
    }
    let measured = Measured::from_samples(&samples, errors, started.elapsed());
    report.stampede_loads = servers.state.cache.stats(CacheKind::Tickets).loads - before;
    report.stampede_p99_us = measured.p99_us;
    report
        .scenarios
        .push(Scenario::new("8 stampede, 1000 at once", measured));
    Ok(())
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let rest = line.strip_prefix(field)?;
                rest.trim().trim_end_matches("kB").trim().parse().ok()
            })
        })
        .unwrap_or(0)
}

/// Scenario 9: Every cache filled to capacity with the largest values the API allows, then the process's
/// resident memory.
async fn fill_to_capacity(
    report: &mut Report,
    servers: &Servers,
    store: &dyn qa_pms_storage::Store,
) -> anyhow::Result<()> {
    use qa_pms_core::catalog::{NAME_MAX, URL_MAX};
    use qa_pms_core::template::{STEPS_MAX, STEP_MAX};
    use qa_pms_core::ticket::{DESCRIPTION_MAX, SHORT_TEXT_MAX, SUMMARY_MAX};
    report.rss_before_fill_kib = rss_kib("VmRSS:");
    let cache = &servers.state.cache;
    let client = load::client();
    let base = &servers.cached;
    let now = chrono::Utc::now();

    let tickets = cache.settings(CacheKind::Tickets).capacity;
    let big: Vec<_> = (1..=tickets)
        .map(|n| JiraTicket {
            key: format!("BIG-{n}"),
            summary: "s".repeat(SUMMARY_MAX),
            status: "t".repeat(SHORT_TEXT_MAX),
            description: Some("d".repeat(DESCRIPTION_MAX)),
            assignee: Some("a".repeat(SHORT_TEXT_MAX)),
            priority: Some("p".repeat(SHORT_TEXT_MAX)),
            updated_at: now,
        })
        .collect();
    store.insert_tickets(&big).await?;
    for n in 1..=tickets {
        get_expecting(&client, &format!("{base}/api/v1/tickets/BIG-{n}"), None).await;
    }

    let templates = cache.settings(CacheKind::Templates).capacity;
    for n in 0..templates {
        let template = WorkflowTemplate {
            id: uuid::Uuid::new_v4(),
            name: format!("big {n}"),
            steps: vec!["x".repeat(STEP_MAX); STEPS_MAX],
            workflow_type: "big".into(),
            estimated_minutes: 60,
            updated_at: now,
        };
        store.insert_template(&template).await?;
        get_expecting(
            &client,
            &format!("{base}/api/v1/templates/{}", template.id),
            None,
        )
        .await;
    }

    // 100 entries with the longest names and urls that all match one term, then one distinct
    // query per search-cache slot, each answered with all 100 of them.
    let entries: Vec<_> = (0..100)
        .map(|n| qa_pms_core::CatalogEntry {
            source: qa_pms_core::Source::Postman,
            name: format!("bigterm {n} {}", "n".repeat(NAME_MAX - 15)),
            url: format!("https://big.example.test/{n}/{}", "u".repeat(URL_MAX - 40)),
            text: String::new(),
        })
        .collect();
    store.import_catalog(&entries).await?;
    cache.search.invalidate_all();
    for n in 0..cache.settings(CacheKind::Search).capacity {
        get_expecting(
            &client,
            &format!("{base}/api/v1/search?query=bigterm+q{n}&limit=100"),
            None,
        )
        .await;
    }
    for period in Period::ALL {
        get_expecting(
            &client,
            &format!("{base}/api/v1/dashboard/kpi?period={period}"),
            None,
        )
        .await;
    }
    cache.run_pending_tasks().await;
    report.rss_after_fill_kib = rss_kib("VmRSS:");
    report.rss_peak_kib = rss_kib("VmHWM:");
    for kind in CacheKind::ALL {
        report.cache_bytes_full += cache.stats(kind).bytes;
        report.cache_budget_bytes += cache.settings(kind).max_bytes.unwrap_or(0);
    }
    Ok(())
}

fn print(report: &Report) {
    println!(
        "\n{:<28} {:>10} {:>9} {:>9} {:>9} {:>8} {:>8} {:>7}",
        "scenario", "req/s", "p50 µs", "p99 µs", "p99.9 µs", "÷bare", "÷min", "errors"
    );
    for s in &report.scenarios {
        let ratio = |r: Option<f64>| r.map_or(String::new(), |r| format!("{r:.2}"));
        println!(
            "{:<28} {:>10.0} {:>9.0} {:>9.0} {:>9.0} {:>8} {:>8} {:>7}",
            s.name,
            s.measured.rps,
            s.measured.p50_us,
            s.measured.p99_us,
            s.measured.p999_us,
            ratio(s.vs_bare),
            ratio(s.vs_minimal),
            s.measured.errors
        );
    }
    print_goal(report);
    print_layers(report);
    let p50 = |name: &str| report.measured(name).map_or(f64::NAN, |m| m.p50_us);
    println!(
        "\nticket HIT p50 / MISS p50: {:.3};  kpi-90d MISS p50 / HIT p50: {:.0}x",
        p50(HIT) / p50("2 ticket MISS"),
        p50("4 kpi-90d MISS") / p50("4 kpi-90d HIT")
    );
    println!(
        "Zipf hit rate {:.1}%, best possible for the capacity {:.1}%, ratio {:.3}",
        report.zipf_hit_rate * 100.0,
        report.zipf_best_possible * 100.0,
        report.zipf_hit_rate / report.zipf_best_possible
    );
    println!(
        "read/write mix: {} writes, {} stale reads",
        report.mix_writes, report.mix_stale_reads
    );
    println!(
        "stampede: {} load(s) for 1000 simultaneous requests, p99 {:.0} µs",
        report.stampede_loads, report.stampede_p99_us
    );
    println!(
        "process RSS: {} MiB before filling the caches, {} MiB with every cache full, peak {} MiB",
        report.rss_before_fill_kib / 1024,
        report.rss_after_fill_kib / 1024,
        report.rss_peak_kib / 1024
    );
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    println!(
        "byte budget: every cache full holds {:.1} MiB of entries against budgets summing to \
         {:.1} MiB; RSS grew {:.1} MiB while filling them (the grace stores, the database's \
         pages and the allocator's free lists included)",
        mib(report.cache_bytes_full),
        mib(report.cache_budget_bytes),
        (report
            .rss_after_fill_kib
            .saturating_sub(report.rss_before_fill_kib)) as f64
            / 1024.0
    );
}

/// The stack against the minimal server, next to the goal.
fn print_goal(report: &Report) {
    if report.stack_ratios.is_empty() {
        return;
    }
    let cpu = |name: &str| report.measured(name).and_then(|m| m.cpu_us_per_request);
    let rounds = report.stack_ratios[0].rounds.len();
    println!(
        "\nthe stack against the minimal axum server (same run, {rounds} interleaved rounds; \
         each ratio the median of the rounds' ratios, their range beside it)\n\
         {:<42} {:>7} {:>13}  {:<14} {:>10}",
        "", "median", "rounds", "goal", "CPU ratio"
    );
    for ratio in &report.stack_ratios {
        let median = ratio.median();
        let goal = match (ratio.scenario.as_str(), ratio.reference.as_str()) {
            (BARE | HIT | NOT_MODIFIED, MINIMAL) => Some((GOAL_VS_MINIMAL, ">=")),
            (NOT_MODIFIED, HIT) => Some((1.0, ">")),
            _ => None,
        };
        let verdict = goal.map_or(String::new(), |(goal, op)| {
            let met = if op == ">=" {
                median >= goal
            } else {
                median > goal
            };
            format!("{op} {goal:.2} {}", if met { "met" } else { "not met" })
        });
        // The same ratio from the process's CPU time per request over all rounds.
        let cpu_ratio = cpu(&ratio.reference)
            .zip(cpu(&ratio.scenario))
            .map_or(String::new(), |(r, s)| format!("{:.3}", r / s));
        println!(
            "{:<42} {median:>7.3} {:>13}  {verdict:<14} {cpu_ratio:>10}",
            ratio.name,
            format!("{:.2}–{:.2}", ratio.min(), ratio.max()),
        );
    }
    println!(
        "CPU ratio: from the process's CPU time per request (client and server) over all rounds"
    );
}

fn print_layers(report: &Report) {
    if report.layers.is_empty() {
        return;
    }
    println!(
        "\nper-layer cost, in process (requests straight into the router, one at a time; \
         10th percentile of batches of {LAYER_BATCH})\n{:<34} {:>10} {:>10}",
        "variant (bare route unless named)", "ns/req", "cost ns"
    );
    for row in &report.layers {
        println!(
            "{:<34} {:>10.0} {:>10}",
            row.variant,
            row.ns_per_request,
            row.cost_ns.map_or(String::new(), |c| format!("{c:.0}"))
        );
    }
}
