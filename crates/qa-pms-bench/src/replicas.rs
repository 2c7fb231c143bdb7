//! `qa-pms-bench replicas`: three replicas over one PostgreSQL database, each reaching it through a
//! proxy that holds every chunk for `--db-delay-ms` each way (a database across a network). It
//! measures how long after an acknowledged write (through the API, and by SQL from outside the
//! service) every other replica serves the new value; how many reads right after a write on another
//! replica return the old value, without and with `X-Consistency-Token`; and a ticket's MISS and
//! HIT with the database that far away.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use qa_pms_api::invalidation::listen;
use qa_pms_api::{AppConfig, AppState};
use qa_pms_core::TicketKey;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

use crate::stats::{micros, Samples};
use crate::TempDatabase;

#[derive(Debug, Clone, clap::Args)]
pub struct ReplicasArgs {
    /// Writes per measurement.
    #[arg(long, default_value_t = 200)]
    pub writes: usize,
    /// How long the proxy holds each chunk, each way, between the replicas and PostgreSQL.
    #[arg(long, default_value_t = 1)]
    pub db_delay_ms: u64,
}

/// How long a replica is given to serve a write before it counts as never having served it.
const GIVE_UP: Duration = Duration::from_secs(5);
const KEYS: usize = 50;

struct Replica {
    base: String,
    state: AppState,
}

pub async fn run(postgres_url: &str, args: &ReplicasArgs, smoke: bool) -> anyhow::Result<()> {
    let writes = if smoke { 10 } else { args.writes };
    let database = TempDatabase::create("postgres", postgres_url, "_replicas").await?;
    let result = measure(
        &database.url,
        writes,
        Duration::from_millis(args.db_delay_ms),
    )
    .await;
    database.drop_now().await;
    result
}

async fn measure(url: &str, writes: usize, delay: Duration) -> anyhow::Result<()> {
    let proxy = DelayProxy::start(url, delay).await?;
    let url = proxy.url(url);
    let mut replicas = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..3 {
        let store = qa_pms_storage::connect(&url).await?;
        if i == 0 {
            store.migrate().await?;
        }
        let (router, state) = qa_pms_api::build(store, AppConfig::default());
        listen(state.clone()).await?;
        let (base, task) = crate::harness::listen(router).await?;
        replicas.push(Replica { base, state });
        tasks.push(task);
    }
    let client = reqwest::Client::new();
    for key in 1..=KEYS {
        let body = json!({"summary": "0", "status": "Open"});
        let response = client
            .put(format!("{}/api/v1/tickets/PROJ-{key}", replicas[0].base))
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "seeding: {}",
            response.status()
        );
    }
    println!(
        "3 replicas, PostgreSQL behind a proxy holding each chunk {delay:?} each way; {writes} writes per row"
    );
    println!(
        "\n{:<44} {:>10} {:>10} {:>8}",
        "write → every other replica serves it", "p50 µs", "p99 µs", "missed"
    );
    let api = visibility(&client, &replicas, writes, Writer::Api).await?;
    row("through the API (PATCH on one replica)", &api);
    let sql = sqlx::PgPool::connect(&url).await?;
    let outside = visibility(&client, &replicas, writes, Writer::Sql(&sql)).await?;
    row("by SQL from outside the service (UPDATE)", &outside);
    sql.close().await;

    let (without, with) = stale_reads(&client, &replicas, writes).await?;
    println!(
        "\nreads right after a write on another replica that returned the old value:\n  \
         without the token: {without} of {writes} ({:.1}%)\n  with X-Consistency-Token: {with} of {writes}",
        100.0 * without as f64 / writes as f64
    );

    let (miss, hit) = miss_and_hit(&client, &replicas[1], writes).await?;
    println!(
        "\nticket with the database {delay:?} away each way: MISS p50 {} µs p99 {} µs, HIT p50 {} µs p99 {} µs, HIT/MISS p50 {:.2}",
        micros(miss.p50()),
        micros(miss.p99()),
        micros(hit.p50()),
        micros(hit.p99()),
        hit.p50().as_secs_f64() / miss.p50().as_secs_f64()
    );
    for task in tasks {
        task.abort();
    }
    proxy.stop();
    Ok(())
}

fn row(name: &str, (samples, missed): &(Samples, usize)) {
    println!(
        "{:<44} {:>10} {:>10} {:>8}",
        name,
        micros(samples.p50()),
        micros(samples.p99()),
        missed
    );
}

enum Writer<'a> {
    Api,
    Sql(&'a sqlx::PgPool),
}

async fn summary(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> anyhow::Result<Value> {
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.header("x-consistency-token", token);
    }
    let response = request.send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    Ok(response.json::<Value>().await?["summary"].clone())
}

/// For each write: every replica caches the key, one writes it, and the time from the write's
/// acknowledgement until each other replica serves the new value is one sample.
async fn visibility(
    client: &reqwest::Client,
    replicas: &[Replica],
    writes: usize,
    writer: Writer<'_>,
) -> anyhow::Result<(Samples, usize)> {
    let mut samples = Samples::default();
    let mut missed = 0;
    for n in 0..writes {
        let key = format!("PROJ-{}", n % KEYS + 1);
        let value = match writer {
            Writer::Api => format!("api-{n}"),
            Writer::Sql(_) => format!("sql-{n}"),
        };
        for replica in replicas {
            summary(
                client,
                &format!("{}/api/v1/tickets/{key}", replica.base),
                None,
            )
            .await?;
        }
        let by = n % replicas.len();
        let acknowledged = match writer {
            Writer::Api => {
                let response = client
                    .patch(format!("{}/api/v1/tickets/{key}", replicas[by].base))
                    .json(&json!({"summary": value}))
                    .send()
                    .await?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "PATCH: {}",
                    response.status()
                );
                Instant::now()
            }
            Writer::Sql(pool) => {
                sqlx::query("UPDATE jira_tickets SET summary = $1 WHERE key = $2")
                    .bind(&value)
                    .bind(&key)
                    .execute(pool)
                    .await?;
                Instant::now()
            }
        };
        for (i, replica) in replicas.iter().enumerate() {
            if matches!(writer, Writer::Api) && i == by {
                continue;
            }
            let url = format!("{}/api/v1/tickets/{key}", replica.base);
            loop {
                if summary(client, &url, None).await? == json!(value) {
                    samples.push(acknowledged.elapsed());
                    break;
                }
                if acknowledged.elapsed() > GIVE_UP {
                    missed += 1;
                    break;
                }
            }
        }
    }
    Ok((samples, missed))
}

/// A write on one replica, then at once a read of it on the next one: without the write's token,
/// and (for the next write) with it.
async fn stale_reads(
    client: &reqwest::Client,
    replicas: &[Replica],
    writes: usize,
) -> anyhow::Result<(usize, usize)> {
    let (mut without, mut with) = (0, 0);
    for n in 0..writes * 2 {
        let key = format!("PROJ-{}", n % KEYS + 1);
        let (by, reader) = (n % 3, (n + 1) % 3);
        let url = |i: usize| format!("{}/api/v1/tickets/{key}", replicas[i].base);
        summary(client, &url(reader), None).await?;
        let value = format!("v{n}");
        let response = client
            .patch(url(by))
            .json(&json!({"summary": value}))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "PATCH: {}",
            response.status()
        );
        let token = response
            .headers()
            .get("x-consistency-token")
            .and_then(|v| v.to_str().ok())
            .context("a write without a consistency token")?
            .to_owned();
        let use_token = n % 2 == 1;
        let read = summary(client, &url(reader), use_token.then_some(token.as_str())).await?;
        if read != json!(value) {
            if use_token {
                with += 1;
            } else {
                without += 1;
            }
        }
    }
    Ok((without, with))
}

/// A ticket dropped from one replica's cache and read (MISS), then read again (HIT).
async fn miss_and_hit(
    client: &reqwest::Client,
    replica: &Replica,
    pairs: usize,
) -> anyhow::Result<(Samples, Samples)> {
    let (mut miss, mut hit) = (Samples::default(), Samples::default());
    for n in 0..pairs {
        let key = TicketKey::parse(&format!("PROJ-{}", n % KEYS + 1))?;
        let url = format!("{}/api/v1/tickets/{key}", replica.base);
        replica.state.cache.tickets.invalidate(&key).await;
        for samples in [&mut miss, &mut hit] {
            let started = Instant::now();
            summary(client, &url, None).await?;
            samples.push(started.elapsed());
        }
    }
    Ok((miss, hit))
}

/// A TCP proxy that holds every chunk it forwards for a fixed delay, in each direction.
struct DelayProxy {
    address: std::net::SocketAddr,
    target: String,
    stopped: Arc<AtomicBool>,
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl DelayProxy {
    async fn start(url: &str, delay: Duration) -> anyhow::Result<Self> {
        let target = host_port(url).context("no host:port in the database URL")?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let stopped = Arc::new(AtomicBool::new(false));
        let tasks = Arc::new(Mutex::new(Vec::new()));
        let (to, is_stopped, open) = (target.clone(), Arc::clone(&stopped), Arc::clone(&tasks));
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if is_stopped.load(SeqCst) {
                    break;
                }
                let to = to.clone();
                let task = tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(&to).await else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let (in_read, in_write) = inbound.into_split();
                    let (out_read, out_write) = outbound.into_split();
                    tokio::join!(
                        forward(in_read, out_write, delay),
                        forward(out_read, in_write, delay)
                    );
                });
                if let Ok(mut open) = open.lock() {
                    open.push(task.abort_handle());
                }
            }
        });
        Ok(Self {
            address,
            target,
            stopped,
            tasks,
        })
    }

    fn url(&self, url: &str) -> String {
        url.replacen(&self.target, &self.address.to_string(), 1)
    }

    fn stop(&self) {
        self.stopped.store(true, SeqCst);
        if let Ok(mut tasks) = self.tasks.lock() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
    }
}

/// Copies `from` to `to`, each chunk sent `delay` after it arrived (chunks keep their order and
/// overlap in flight, as on a link with that latency).
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (chunks, mut queued) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, chunk)) = queued.recv().await {
            tokio::time::sleep_until(due.into()).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    let mut buffer = vec![0; 64 * 1024];
    while let Ok(n) = from.read(&mut buffer).await {
        if n == 0
            || chunks
                .send((Instant::now() + delay, buffer[..n].to_vec()))
                .is_err()
        {
            break;
        }
    }
    drop(chunks);
    let _ = writer.await;
}

/// `127.0.0.1:5432` of `postgres://user@127.0.0.1:5432/db`.
fn host_port(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    Some(rest.split('/').next()?.to_owned())
}
