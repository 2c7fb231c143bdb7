//! A closed-loop HTTP load generator over loopback: a fixed number of keep-alive connections,
//! each sending its next request as soon as the last one answered, for a fixed time.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;

use crate::stats::Samples;

#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub connections: usize,
    pub duration: Duration,
}

/// What one scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    pub requests: u64,
    pub errors: u64,
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    /// CPU time of the whole process (client and server, user and system) per request: unlike
    /// the rate, hardly changed by other processes competing for the cores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_us_per_request: Option<f64>,
}

impl Measured {
    pub fn from_samples(samples: &Samples, errors: u64, elapsed: Duration) -> Self {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        Self {
            requests: samples.count() as u64,
            errors,
            rps: samples.count() as f64 / elapsed.as_secs_f64(),
            p50_us: us(samples.quantile(0.5)),
            p99_us: us(samples.quantile(0.99)),
            p999_us: us(samples.quantile(0.999)),
            cpu_us_per_request: None,
        }
    }
}

/// CPU time this process has used so far, all threads, user and system (from `/proc`, in
/// ticks of 10 ms); `None` where there is no `/proc`.
pub fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command (which may hold spaces) end with `)`; utime and stime are the
    // 14th and 15th fields, the 12th and 13th after it.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // USER_HZ is 100 on every Linux architecture that exposes it through /proc.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// A client with one connection of its own.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .http1_only()
        .build()
        .expect("HTTP client")
}

/// The raw outcome of one [`drive_samples`]: every latency, the errors and the time it took.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub samples: Samples,
    pub errors: u64,
    pub elapsed: Duration,
    /// Process CPU time used meanwhile, if known.
    pub cpu: Option<Duration>,
}

impl Run {
    /// Adds another run of the same scenario (the rounds of an interleaved comparison).
    pub fn add(&mut self, other: Run) {
        let first = self.elapsed.is_zero();
        self.samples.extend(other.samples);
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.cpu = if first {
            other.cpu
        } else {
            self.cpu.zip(other.cpu).map(|(a, b)| a + b)
        };
    }

    pub fn measured(&self) -> Measured {
        let mut measured = Measured::from_samples(&self.samples, self.errors, self.elapsed);
        measured.cpu_us_per_request = self
            .cpu
            .filter(|_| self.samples.count() > 0)
            .map(|cpu| cpu.as_secs_f64() * 1e6 / self.samples.count() as f64);
        measured
    }
}

/// Runs `request` on `load.connections` connections for `load.duration`. `request` gets the
/// connection's client, a per-connection random generator and the connection index, and returns
/// whether the response was the expected one.
pub async fn drive<F, Fut>(load: Load, request: F) -> Measured
where
    F: Fn(reqwest::Client, StdRng, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (StdRng, bool)> + Send,
{
    drive_samples(load, request).await.measured()
}

/// [`drive`], returning the samples rather than their summary.
pub async fn drive_samples<F, Fut>(load: Load, request: F) -> Run
where
    F: Fn(reqwest::Client, StdRng, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (StdRng, bool)> + Send,
{
    let request = Arc::new(request);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let cpu_before = process_cpu();
    let workers: Vec<_> = (0..load.connections)
        .map(|c| {
            let (request, stop) = (Arc::clone(&request), Arc::clone(&stop));
            tokio::spawn(async move {
                let client = client();
                let mut rng = StdRng::seed_from_u64(c as u64 + 1);
                let mut samples = Samples::default();
                let mut errors = 0;
                while !stop.load(Relaxed) {
                    let start = Instant::now();
                    let (next, ok) = request(client.clone(), rng, c).await;
                    rng = next;
                    samples.push(start.elapsed());
                    if !ok {
                        errors += 1;
                    }
                }
                (samples, errors)
            })
        })
        .collect();
    tokio::time::sleep(load.duration).await;
    stop.store(true, Relaxed);
    let mut all = Samples::default();
    let mut errors = 0;
    for worker in workers {
        if let Ok((samples, e)) = worker.await {
            all.extend(samples);
            errors += e;
        }
    }
    Run {
        samples: all,
        errors,
        elapsed: started.elapsed(),
        cpu: process_cpu()
            .zip(cpu_before)
            .map(|(after, before)| after.saturating_sub(before)),
    }
}

/// A GET that must answer 2xx with the given `X-Cache-Status`, if any.
pub async fn get_expecting(client: &reqwest::Client, url: &str, cache: Option<&str>) -> bool {
    match client.get(url).send().await {
        Ok(response) => {
            let status_ok = response.status().is_success();
            let cache_ok = cache.is_none_or(|want| {
                response
                    .headers()
                    .get("x-cache-status")
                    .is_some_and(|got| got.as_bytes() == want.as_bytes())
            });
            response.bytes().await.is_ok() && status_ok && cache_ok
        }
        Err(_) => false,
    }
}

/// A GET with `If-None-Match: etag` that must answer 304 Not Modified from the cache (a HIT).
pub async fn get_not_modified(client: &reqwest::Client, url: &str, etag: &str) -> bool {
    match client
        .get(url)
        .header(reqwest::header::IF_NONE_MATCH, etag)
        .send()
        .await
    {
        Ok(response) => {
            let status_ok = response.status() == reqwest::StatusCode::NOT_MODIFIED;
            let cache_ok = response
                .headers()
                .get("x-cache-status")
                .is_some_and(|got| got.as_bytes() == b"HIT");
            response.bytes().await.is_ok() && status_ok && cache_ok
        }
        Err(_) => false,
    }
}
