//! `qa-pms-bench jira`: qa-pms with its tickets in a fake Jira Cloud (150 ms median, 10 requests/s)
//! under Zipf reads and webhooks, through a Jira outage and back; nginx's stale cache in front of
//! an uncached qa-pms is the reference when nginx is installed.

use std::sync::Arc;
use std::time::Duration;

use qa_pms_api::{AppConfig, JiraSettings};
use qa_pms_core::CacheConfig;
use qa_pms_fakes::jira::{FakeIssue, FakeJira};
use qa_pms_jira::JiraConfig;
use qa_pms_storage::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::RwLock;

use crate::jira_nginx::{self, Nginx};
use crate::jira_phases::{self, Plan, Target, WEBHOOK_SECRET};
use crate::TempDatabase;

#[derive(Debug, Clone, clap::Args)]
pub struct JiraArgs {
    /// The steady phase: Zipf reads and 5% webhooks.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// The outage phase: Jira refuses connections, reads go on.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub outage: Duration,
    /// The recovery phase: Jira accepts connections again.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub recovery: Duration,
    /// Issues in the fake Jira, PROJ-1..PROJ-<keys>, all drawn from.
    #[arg(long, default_value_t = 10_000)]
    pub keys: usize,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
}

/// The app's Jira client settings: Jira Cloud's own budget and a 5 s deadline.
const APP_MAX_RPS: u32 = 10;
const JIRA_TIMEOUT: Duration = Duration::from_secs(5);
const TICKET_TTL: Duration = Duration::from_secs(15);

/// Everything one run uses: the phases' plan and the fake's behaviour.
#[derive(Debug, Clone, Copy)]
struct Setup {
    plan: Plan,
    jira_latency: Duration,
    jira_rate_limit: u32,
}

impl Setup {
    fn new(args: &JiraArgs, smoke: bool) -> Self {
        let plan = Plan {
            keys: args.keys.max(1),
            connections: args.connections.max(1),
            steady: args.duration,
            outage: args.outage,
            recovery: args.recovery,
            ticket_ttl: TICKET_TTL,
            jira_timeout: JIRA_TIMEOUT,
        };
        if smoke {
            return Self {
                plan: Plan {
                    keys: 200,
                    steady: Duration::from_secs(3),
                    outage: Duration::from_secs(2),
                    recovery: Duration::from_secs(2),
                    ..plan
                },
                jira_latency: Duration::from_millis(5),
                jira_rate_limit: 50,
            };
        }
        Self {
            plan,
            jira_latency: Duration::from_millis(150),
            jira_rate_limit: 10,
        }
    }
}

pub async fn run(
    backend: &str,
    postgres_url: &str,
    args: &JiraArgs,
    smoke: bool,
) -> anyhow::Result<()> {
    let setup = Setup::new(args, smoke);
    println!(
        "fake Jira: {} issues, median latency {} ms, {} req/s then 429; app: Jira max_rps \
         {APP_MAX_RPS}, timeout {} s, ticket TTL {} s; {}",
        setup.plan.keys,
        setup.jira_latency.as_millis(),
        setup.jira_rate_limit,
        JIRA_TIMEOUT.as_secs(),
        TICKET_TTL.as_secs(),
        if cfg!(debug_assertions) {
            "DEBUG build: numbers are not representative"
        } else {
            "release build"
        }
    );
    one_target(backend, postgres_url, &setup, false).await?;
    if jira_nginx::installed() {
        one_target(backend, postgres_url, &setup, true).await?;
    } else {
        println!("\nnginx not installed: reference skipped (apt-get install nginx)");
    }
    Ok(())
}

/// One fresh database, fake Jira and app; with `nginx`, the app is uncached and nginx caches in
/// front of it.
async fn one_target(
    backend: &str,
    postgres_url: &str,
    setup: &Setup,
    nginx: bool,
) -> anyhow::Result<()> {
    let tag = if nginx { "_jira_nginx" } else { "_jira" };
    let database = TempDatabase::create(backend, postgres_url, tag).await?;
    let result = async {
        let store = qa_pms_storage::connect(&database.url).await?;
        store.migrate().await?;
        let fake = start_fake(setup).await;
        let (base, server) = start_app(store, &fake, setup, nginx).await?;
        let fake = Arc::new(RwLock::new(fake));
        let target = |label, base| Target {
            label,
            base,
            fake: Arc::clone(&fake),
            rate_limit: setup.jira_rate_limit,
        };
        if nginx {
            let proxy = Nginx::start(&base, TICKET_TTL).await;
            match proxy {
                Ok(proxy) => {
                    jira_phases::run(&target("nginx", proxy.url.clone()), &setup.plan).await;
                    proxy.stop().await;
                }
                Err(error) => println!("\nnginx did not start: {error:#}; reference skipped"),
            }
        } else {
            jira_phases::run(&target("qa-pms", base), &setup.plan).await;
        }
        server.abort();
        Ok::<_, anyhow::Error>(())
    }
    .await;
    database.drop_now().await;
    result
}

/// The fake Jira with `keys` issues and the run's latency and rate limit.
async fn start_fake(setup: &Setup) -> FakeJira {
    let fake = FakeJira::start().await;
    let mut rng = StdRng::seed_from_u64(42);
    for n in 1..=setup.plan.keys {
        fake.put_issue(issue(n, &mut rng));
    }
    fake.set_latency(setup.jira_latency);
    fake.set_rate_limit(Some(setup.jira_rate_limit));
    fake
}

/// qa-pms with Jira as its ticket source; `uncached`: a tickets cache of capacity 0.
async fn start_app(
    store: Arc<dyn Store>,
    fake: &FakeJira,
    setup: &Setup,
    uncached: bool,
) -> anyhow::Result<(String, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let mut cache = CacheConfig::default();
    cache.tickets.ttl = setup.plan.ticket_ttl;
    if uncached {
        cache.tickets.capacity = 0;
    }
    let mut client = JiraConfig::new(fake.url(), fake.email(), fake.token());
    client.timeout = JIRA_TIMEOUT;
    client.max_rps = APP_MAX_RPS;
    let config = AppConfig {
        cache,
        jira: Some(JiraSettings {
            client,
            webhook_secret: Some(WEBHOOK_SECRET.to_owned()),
        }),
        ..AppConfig::default()
    };
    let (router, _state) = qa_pms_api::try_build(store, config, axum::Router::new())?;
    crate::harness::listen(router).await
}

const AREAS: [&str; 10] = [
    "Login",
    "Checkout",
    "Payment gateway",
    "User profile",
    "Search",
    "Shopping cart",
    "Reports export",
    "Admin console",
    "Email notifications",
    "Public API",
];
const PROBLEMS: [&str; 10] = [
    "fails with HTTP 500 after the session times out",
    "shows a blank page on Safari 17",
    "is slow with more than 1,000 items",
    "loses the form state on back navigation",
    "accepts an invalid e-mail address",
    "shows stale data after an update",
    "times out behind the corporate proxy",
    "charges twice when the user retries",
    "ignores the user's locale",
    "breaks with right-to-left text",
];
const STATUSES: [&str; 4] = ["To Do", "In Progress", "QA", "Done"];
const PRIORITIES: [&str; 5] = ["Highest", "High", "Medium", "Low", "Lowest"];
const ASSIGNEES: [&str; 4] = ["Ana Souza", "Bruno Lima", "Carla Mendes", "Diego Rocha"];

/// Issue `PROJ-n`: a plausible bug report, the same for the same `rng` state.
fn issue(n: usize, rng: &mut StdRng) -> FakeIssue {
    let area = AREAS[rng.gen_range(0..AREAS.len())];
    let problem = PROBLEMS[rng.gen_range(0..PROBLEMS.len())];
    let mut issue = FakeIssue::new(
        format!("PROJ-{n}"),
        format!("{area}: {problem}"),
        STATUSES[rng.gen_range(0..STATUSES.len())],
    )
    .with_description(format!(
        "Steps to reproduce:\n1. Open {area}.\n2. Repeat what the reporter did.\n\
         Expected: it works.\nActual: it {problem}."
    ))
    .with_priority(PRIORITIES[rng.gen_range(0..PRIORITIES.len())]);
    if rng.gen_bool(0.8) {
        issue = issue.with_assignee(ASSIGNEES[rng.gen_range(0..ASSIGNEES.len())]);
    }
    let age = chrono::Duration::minutes(rng.gen_range(0..60 * 24 * 90));
    let updated = issue.updated - age;
    issue.with_updated(updated)
}
