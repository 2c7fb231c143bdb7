//! The phases of `qa-pms-bench jira` against one target (qa-pms, or nginx in front of it): steady
//! Zipf reads with webhooks, a Jira outage, the recovery; each prints what it measured.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use qa_pms_fakes::jira::{webhook_body, webhook_signature, FakeIssue, FakeJira, RecordedRequest};
use rand::rngs::StdRng;
use rand::Rng;
use reqwest::header::HeaderMap;
use tokio::sync::RwLock;

use crate::jira_report as report;
use crate::load::{drive, Load, Measured};
use crate::zipf::Zipf;

/// The secret the app checks webhook signatures with.
pub const WEBHOOK_SECRET: &str = "qa-pms-bench-webhook-secret";
/// The Zipf ranks counted as hot keys (key `PROJ-n` has rank n).
pub(crate) const HOT_KEYS: u32 = 100;
/// The share of steady-phase requests that are webhooks.
pub(crate) const WEBHOOK_SHARE: f64 = 0.05;

/// Where the phases send their requests, and the fake Jira behind it.
pub struct Target {
    pub label: &'static str,
    pub base: String,
    pub fake: Arc<RwLock<FakeJira>>,
    /// The fake's requests per second, to count the 429s it answered from its request log.
    pub rate_limit: u32,
}

/// How long each phase lasts and how it loads the target.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub keys: usize,
    pub connections: usize,
    pub steady: Duration,
    pub outage: Duration,
    pub recovery: Duration,
    pub ticket_ttl: Duration,
    pub jira_timeout: Duration,
}

/// How the cache answered, from `X-Cache-Status`, or from nginx's `X-Proxy-Cache` when present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cache {
    Hit,
    Miss,
    Stale,
    Unknown,
}

impl Cache {
    fn of(headers: &HeaderMap) -> Self {
        let get = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let value = match get("x-proxy-cache") {
            Some("HIT") => "HIT",
            Some("STALE" | "UPDATING") => "STALE",
            _ => get("x-cache-status").unwrap_or(""),
        };
        match value {
            "HIT" => Cache::Hit,
            "MISS" => Cache::Miss,
            "STALE" | "UPDATING" => Cache::Stale,
            _ => Cache::Unknown,
        }
    }
}

/// One request as the load generator saw it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record {
    /// When it was sent, from the start of its phase.
    pub at: Duration,
    pub key: u32,
    pub webhook: bool,
    /// 0: no HTTP answer (connection error or truncated body).
    pub status: u16,
    pub cache: Cache,
    pub latency: Duration,
}

impl Record {
    pub fn is_read(&self) -> bool {
        !self.webhook
    }
    pub fn answered_at(&self) -> Duration {
        self.at + self.latency
    }
}

/// One phase's shared state: the connections' records, and the edits webhooks made.
struct Phase {
    base: String,
    zipf: Zipf,
    fake: Arc<RwLock<FakeJira>>,
    webhooks: bool,
    started: Instant,
    records: Vec<Mutex<Vec<Record>>>,
    edits: AtomicU64,
}

impl Phase {
    async fn request(&self, client: &reqwest::Client, rng: &mut StdRng) -> Record {
        let key = self.zipf.sample(rng) as u32;
        let webhook = self.webhooks && rng.gen_bool(WEBHOOK_SHARE);
        let request = if webhook {
            let body = self.edit(key).await;
            let signature = webhook_signature(WEBHOOK_SECRET.as_bytes(), &body);
            client
                .post(format!("{}/api/v1/webhooks/jira", self.base))
                .header("content-type", "application/json")
                .header("x-hub-signature", signature)
                .body(body)
        } else {
            client.get(format!("{}/api/v1/tickets/PROJ-{key}", self.base))
        };
        let start = Instant::now();
        let (status, cache) = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let cache = Cache::of(response.headers());
                match response.bytes().await {
                    Ok(_) => (status, cache),
                    Err(_) => (0, Cache::Unknown),
                }
            }
            Err(_) => (0, Cache::Unknown),
        };
        Record {
            at: start.duration_since(self.started),
            key,
            webhook,
            status,
            cache,
            latency: start.elapsed(),
        }
    }

    /// Changes the issue's summary in the fake Jira, then returns the webhook Jira would send.
    async fn edit(&self, key: u32) -> Vec<u8> {
        let n = self.edits.fetch_add(1, Relaxed) + 1;
        let key = format!("PROJ-{key}");
        let fake = self.fake.read().await;
        let fresh = FakeIssue::new(&key, "", "To Do");
        let mut issue = fake.issue(&key).unwrap_or_else(|| fresh.clone());
        let original = issue
            .summary
            .split(" (edit ")
            .next()
            .unwrap_or("")
            .to_owned();
        issue.summary = format!("{original} (edit {n})");
        issue.updated = fresh.updated;
        fake.put_issue(issue.clone());
        webhook_body("jira:issue_updated", &issue)
    }
}

/// Runs a closed loop for `duration` and returns every request's record.
async fn load(target: &Target, plan: &Plan, duration: Duration, webhooks: bool) -> Phased {
    let phase = Arc::new(Phase {
        base: target.base.clone(),
        zipf: Zipf::new(plan.keys, 1.0),
        fake: Arc::clone(&target.fake),
        webhooks,
        started: Instant::now(),
        records: (0..plan.connections).map(|_| Mutex::default()).collect(),
        edits: AtomicU64::new(0),
    });
    let shared = Arc::clone(&phase);
    let load = Load {
        connections: plan.connections,
        duration,
    };
    let measured = drive(load, move |client, mut rng, c| {
        let phase = Arc::clone(&shared);
        async move {
            let record = phase.request(&client, &mut rng).await;
            let ok = (200..300).contains(&record.status);
            if let Some(records) = phase.records.get(c) {
                records
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(record);
            }
            (rng, ok)
        }
    })
    .await;
    let records = phase
        .records
        .iter()
        .flat_map(|r| std::mem::take(&mut *r.lock().unwrap_or_else(PoisonError::into_inner)))
        .collect();
    Phased { records, measured }
}

pub(crate) struct Phased {
    pub records: Vec<Record>,
    pub measured: Measured,
}

/// Every phase against one target, printed as it goes.
pub async fn run(target: &Target, plan: &Plan) {
    println!("\n### {}", target.label);
    let before = target.fake.read().await.calls();
    let steady = load(target, plan, plan.steady, true).await;
    let after = target.fake.read().await.calls();
    let jira = Jira::observe(target, before..after).await;
    report::steady(plan, &steady, &jira);

    let read_before: HashSet<u32> = steady
        .records
        .iter()
        .filter(|r| r.is_read() && r.status == 200)
        .map(|r| r.key)
        .collect();
    target.fake.write().await.refuse_connections().await;
    let outage = load(target, plan, plan.outage, false).await;
    report::outage(plan, &outage, &read_before);

    let stale: HashSet<u32> = outage
        .records
        .iter()
        .filter(|r| r.status == 200 && r.cache == Cache::Stale)
        .map(|r| r.key)
        .collect();
    target.fake.write().await.accept_connections().await;
    let before = target.fake.read().await.calls();
    let recovery = load(target, plan, plan.recovery, false).await;
    let after = target.fake.read().await.calls();
    let jira = Jira::observe(target, before..after).await;
    report::recovery(plan, &recovery, &stale, &jira);
}

/// What the fake Jira saw during a phase.
pub(crate) struct Jira {
    pub calls: usize,
    pub issue_gets: usize,
    /// Answered 429.
    pub rate_limited: usize,
}

impl Jira {
    /// The fake's requests numbered `calls` in its log.
    async fn observe(target: &Target, calls: std::ops::Range<usize>) -> Self {
        let log = target.fake.read().await.requests();
        let limited = rate_limited(&log, target.rate_limit);
        let issue_gets = log
            .get(calls.clone())
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method == "GET" && r.path.starts_with("/rest/api/3/issue/"))
            .count();
        let rate_limited = limited
            .get(calls.clone())
            .unwrap_or_default()
            .iter()
            .filter(|l| **l)
            .count();
        Self {
            calls: calls.len(),
            issue_gets,
            rate_limited,
        }
    }
}

/// Which requests of the log the fake answered 429: its own rule (a one-second window opened by
/// the first request after it, more than `limit` requests in it), replayed on the log, which
/// holds the requests in the order the fake counted them. No failures are injected here.
fn rate_limited(log: &[RecordedRequest], limit: u32) -> Vec<bool> {
    let mut window: Option<(Instant, u32)> = None;
    log.iter()
        .map(|r| {
            let (start, count) = match window {
                Some((start, count))
                    if r.received_at.duration_since(start) < Duration::from_secs(1) =>
                {
                    (start, count + 1)
                }
                _ => (r.received_at, 1),
            };
            window = Some((start, count));
            count > limit
        })
        .collect()
}
