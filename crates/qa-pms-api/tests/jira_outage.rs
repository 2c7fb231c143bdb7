//! Jira slow, rate-limited or down, on both backends: warm keys answer STALE from the last known
//! value, cold keys 503/504 within the Jira timeout, fresh values come back without a restart,
//! the rate budget and `Retry-After` are honoured, a key another fetch is refreshing answers at
//! once from the mirror (stale-while-revalidate), and writes and webhooks racing reads (with
//! refreshes and fallbacks happening) never let a read return an older value.

#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is the point

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::delayed::DelayedTicketReads;
use common::jira::{config_with, issue, issue_reads, send_webhook};
use common::TestApp;
use qa_pms_core::cache::UPDATING_RETRY;
use qa_pms_fakes::jira::{Failure, FakeJira};
use qa_pms_storage::Backend;
use serde_json::json;

on_both_backends!(
    with_jira_refusing_connections_warm_keys_answer_stale_cold_keys_503_then_fresh_values_return,
    a_jira_that_never_answers_is_a_504_within_the_timeout,
    while_another_replica_refetches_a_key_its_mirrored_value_answers_at_once,
    while_a_refresh_ahead_is_under_way_an_expired_key_answers_at_once,
    a_key_read_soon_after_it_expired_answers_at_once_and_is_fetched_in_the_background,
    never_more_than_the_configured_rate_reaches_jira,
    retry_after_is_honoured_before_the_next_jira_call,
    writes_and_webhooks_racing_reads_never_let_a_read_see_an_older_value,
);

/// A short ticket TTL, so that tests see entries expire.
fn short_ttl(jira: &FakeJira, ttl: Duration) -> qa_pms_api::AppConfig {
    config_with(jira, |c| {
        c.cache.tickets.ttl = ttl;
        c.cache.tickets.tti = None;
    })
}

/// A 400 ms ticket TTL and a Jira timeout (5 s) well above the slow Jira of the test (0.5–1.5 s).
fn slow_jira_short_ttl(jira: &FakeJira) -> qa_pms_api::AppConfig {
    config_with(jira, |c| {
        c.cache.tickets.ttl = Duration::from_millis(400);
        c.cache.tickets.tti = None;
        if let Some(settings) = &mut c.jira {
            settings.client.timeout = Duration::from_secs(5);
        }
    })
}

async fn with_jira_refusing_connections_warm_keys_answer_stale_cold_keys_503_then_fresh_values_return(
    backend: Backend,
) {
    let mut jira = FakeJira::start().await;
    let app = TestApp::with_config(backend, short_ttl(&jira, Duration::from_millis(500))).await;
    for n in 1..=3 {
        jira.put_issue(issue(&format!("PROJ-{n}"), "Before the outage"));
        let warm = app.get(&format!("/api/v1/tickets/PROJ-{n}")).await;
        assert_eq!(warm.status, StatusCode::OK);
    }

    jira.refuse_connections().await;
    // Past twice the TTL: a read no longer answers from the mirror while Jira is asked in the
    // background (UPDATING), it asks Jira itself.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    for _ in 0..3 {
        for n in 1..=3 {
            let read = app.get(&format!("/api/v1/tickets/PROJ-{n}")).await;
            assert_eq!(read.status, StatusCode::OK, "{:?}", read.json());
            assert_eq!(read.cache_status(), "STALE");
            assert_eq!(read.json()["summary"], "Before the outage");
            let status = read.header("cache-status");
            assert!(
                status.starts_with("qa-pms; hit; fwd=stale; fwd-status=")
                    && status.ends_with("; detail=stale-if-error"),
                "{status}"
            );
            assert!(read.header("age").parse::<u64>().is_ok());
        }
    }
    let started = Instant::now();
    let cold = app.get("/api/v1/tickets/PROJ-99").await;
    let cold_took = started.elapsed();
    assert_eq!(
        cold.assert_error(StatusCode::SERVICE_UNAVAILABLE),
        "upstream_unavailable"
    );
    assert!(cold_took < Duration::from_secs(5), "no hang: {cold_took:?}");
    assert!(
        app.metric(
            "qa_pms_cache_stale_served_total",
            &[("cache_type", "tickets")]
        )
        .await
            >= 9.0
    );

    jira.accept_connections().await;
    let mut after = issue("PROJ-1", "After the outage");
    after.updated += chrono::Duration::seconds(1);
    jira.put_issue(after);
    // The breaker may be open for its cooldown (10 s): poll until Jira answers again.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut fresh = None;
    while Instant::now() < deadline {
        let read = app.get("/api/v1/tickets/PROJ-1").await;
        if read.status == StatusCode::OK && read.cache_status() != "STALE" {
            fresh = Some(read);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let fresh = fresh.expect("fresh values come back after Jira does, without a restart");
    assert_eq!(fresh.json()["summary"], "After the outage");
}

async fn while_another_replica_refetches_a_key_its_mirrored_value_answers_at_once(
    backend: Backend,
) {
    let jira = FakeJira::start().await;
    let config = slow_jira_short_ttl(&jira);
    let a = Arc::new(TestApp::with_config(backend, config.clone()).await);
    let b = a.replica_with(config).await;
    let uri = "/api/v1/tickets/PROJ-1";
    jira.put_issue(issue("PROJ-1", "Before"));
    assert_eq!(a.get(uri).await.json()["summary"], "Before");
    // The mirrored row grows older than twice the TTL: the next miss waits for Jira.
    tokio::time::sleep(Duration::from_millis(900)).await;
    jira.put_issue(issue("PROJ-1", "After"));
    jira.set_latency(Duration::from_millis(1_000));

    let on_a = tokio::spawn({
        let a = Arc::clone(&a);
        async move { a.get(uri).await }
    });
    while issue_reads(&jira, "PROJ-1") < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let during = b.get(uri).await;
    let fetched = on_a.await.unwrap();
    tokio::time::sleep(UPDATING_RETRY + Duration::from_millis(50)).await;
    let after = b.get(uri).await;

    assert_eq!(during.status, StatusCode::OK);
    assert_eq!(during.header("x-cache-status"), "UPDATING");
    assert!(
        during
            .header("cache-status")
            .contains("stale-while-revalidate"),
        "{}",
        during.header("cache-status")
    );
    assert_eq!(during.json()["summary"], "Before");
    assert_eq!(fetched.json()["summary"], "After");
    assert_eq!(
        after.json()["summary"],
        "After",
        "the fetched value, from the mirror"
    );
    assert_eq!(issue_reads(&jira, "PROJ-1"), 2, "b made no Jira call");
}

async fn while_a_refresh_ahead_is_under_way_an_expired_key_answers_at_once(backend: Backend) {
    let jira = FakeJira::start().await;
    let app = TestApp::with_config(backend, slow_jira_short_ttl(&jira)).await;
    let uri = "/api/v1/tickets/PROJ-1";
    jira.put_issue(issue("PROJ-1", "Before"));
    assert_eq!(app.get(uri).await.json()["summary"], "Before");
    jira.put_issue(issue("PROJ-1", "After"));
    jira.set_latency(Duration::from_millis(1_000));

    // A hit past 0.8 of the TTL starts a refresh that Jira takes a while to answer; the entry
    // expires meanwhile, and the miss that follows must not wait for Jira.
    tokio::time::sleep(Duration::from_millis(340)).await;
    let hit = app.get(uri).await;
    while issue_reads(&jira, "PROJ-1") < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    let expired = app.get(uri).await;

    assert_eq!(hit.header("x-cache-status"), "HIT");
    assert_eq!(expired.header("x-cache-status"), "UPDATING");
    assert_eq!(expired.json()["summary"], "Before");
    let mut refreshed = None;
    for _ in 0..60 {
        let read = app.get(uri).await;
        if read.json()["summary"] == "After" {
            refreshed = Some(read);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        refreshed.is_some(),
        "the refresh's value is served once it lands"
    );
    assert_eq!(issue_reads(&jira, "PROJ-1"), 2, "one call: the refresh's");
}

async fn a_key_read_soon_after_it_expired_answers_at_once_and_is_fetched_in_the_background(
    backend: Backend,
) {
    let jira = FakeJira::start().await;
    let app = TestApp::with_config(backend, slow_jira_short_ttl(&jira)).await;
    let uri = "/api/v1/tickets/PROJ-1";
    jira.put_issue(issue("PROJ-1", "Before"));
    assert_eq!(app.get(uri).await.json()["summary"], "Before");
    jira.put_issue(issue("PROJ-1", "After"));
    jira.set_latency(Duration::from_millis(1_000));

    // Expired (400 ms), no hit came to refresh it, but fetched less than two TTLs ago.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let expired = app.get(uri).await;
    let mut calls_before_it_landed = 0;
    let mut refreshed = None;
    for _ in 0..80 {
        let read = app.get(uri).await;
        if read.json()["summary"] == "After" {
            refreshed = Some(read);
            break;
        }
        calls_before_it_landed = issue_reads(&jira, "PROJ-1");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert_eq!(expired.header("x-cache-status"), "UPDATING");
    assert_eq!(expired.json()["summary"], "Before");
    assert_eq!(
        calls_before_it_landed, 2,
        "the background fetch was under way while the old value answered"
    );
    assert!(
        refreshed.is_some(),
        "the background fetch's value is served once it lands"
    );
    assert_eq!(issue_reads(&jira, "PROJ-1"), 2, "one background call");
}

async fn a_jira_that_never_answers_is_a_504_within_the_timeout(backend: Backend) {
    let jira = FakeJira::start().await;
    let app = TestApp::with_config(backend, short_ttl(&jira, Duration::from_secs(60))).await;
    jira.put_issue(issue("PROJ-1", "Unreachable"));
    jira.set_down(Some(Failure::Hang));

    let started = Instant::now();
    let read = app.get("/api/v1/tickets/PROJ-1").await;
    let took = started.elapsed();

    assert_eq!(
        read.assert_error(StatusCode::GATEWAY_TIMEOUT),
        "upstream_timeout"
    );
    // The Jira timeout is 1.5 s; the bound only proves the request did not hang.
    assert!(took < Duration::from_secs(5), "{took:?}");
}

async fn never_more_than_the_configured_rate_reaches_jira(backend: Backend) {
    let jira = FakeJira::start().await;
    let config = config_with(&jira, |c| {
        if let Some(settings) = &mut c.jira {
            settings.client.max_rps = 4;
            settings.client.timeout = Duration::from_secs(10);
        }
    });
    let app = Arc::new(TestApp::with_config(backend, config).await);
    const KEYS: usize = 16;
    for n in 1..=KEYS {
        jira.put_issue(issue(&format!("RATE-{n}"), "Cold"));
    }

    let reads: Vec<_> = (1..=KEYS)
        .map(|n| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { app.get(&format!("/api/v1/tickets/RATE-{n}")).await.status })
        })
        .collect();
    for read in reads {
        assert_eq!(read.await.unwrap(), StatusCode::OK);
    }

    let mut times: Vec<Instant> = jira.requests().iter().map(|r| r.received_at).collect();
    times.sort();
    assert_eq!(times.len(), KEYS, "one call per key");
    // One call every 250 ms: the 16th comes 3.75 s after the first, and no window of 900 ms
    // holds more than 4 (a bucket that allowed bursts would put 4 more in the first one).
    let span = times[KEYS - 1] - times[0];
    assert!(span >= Duration::from_millis(3_500), "16 calls in {span:?}");
    for (i, start) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .take_while(|t| **t - *start < Duration::from_millis(900))
            .count();
        assert!(in_window <= 4, "{in_window} calls within 900 ms");
    }
}

async fn retry_after_is_honoured_before_the_next_jira_call(backend: Backend) {
    let jira = FakeJira::start().await;
    let config = config_with(&jira, |c| {
        if let Some(settings) = &mut c.jira {
            settings.client.timeout = Duration::from_secs(5);
        }
    });
    let app = TestApp::with_config(backend, config).await;
    jira.put_issue(issue("PROJ-1", "Behind a 429"));
    jira.fail_next(
        1,
        Failure::TooManyRequests {
            retry_after_secs: 2,
        },
    );

    let read = app.get("/api/v1/tickets/PROJ-1").await;

    assert_eq!(read.status, StatusCode::OK);
    let times: Vec<Instant> = jira.requests().iter().map(|r| r.received_at).collect();
    assert_eq!(times.len(), 2, "the 429, then the retry");
    let waited = times[1] - times[0];
    assert!(
        waited >= Duration::from_millis(1_950),
        "retried after {waited:?}"
    );
    assert_eq!(
        app.metric(
            "qa_pms_upstream_requests_total",
            &[("upstream", "jira"), ("outcome", "rate_limited")]
        )
        .await,
        1.0
    );
}

const KEYS: usize = 3;
const VERSIONS: u64 = 25;
const READERS: usize = 12;

/// Jira numbers issues from 1.
fn race_key(k: usize) -> String {
    format!("RACE-{}", k + 1)
}

fn version_of(summary: &str) -> u64 {
    summary
        .strip_prefix('v')
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("summary `{summary}` is not a version"))
}

/// Key 0 and 1 change through PATCH (Jira first, then the mirror), key 2 through webhooks (Jira
/// changed elsewhere). Reads of the mirror are slowed, the TTL is short (refresh ahead runs) and
/// Jira fails in bursts and once for two seconds (loads fall back to the mirror): a read may be
/// answered MISS, HIT, UPDATING or STALE, but never with a version older than the last write
/// acknowledged before it began.
async fn writes_and_webhooks_racing_reads_never_let_a_read_see_an_older_value(backend: Backend) {
    let jira = FakeJira::start().await;
    let config = short_ttl(&jira, Duration::from_millis(300));
    let app = Arc::new(
        TestApp::with_store(backend, config, |inner| {
            Arc::new(DelayedTicketReads::reads(
                inner,
                Duration::ZERO,
                Duration::from_millis(10),
            ))
        })
        .await,
    );
    for k in 0..KEYS {
        jira.put_issue(issue(&race_key(k), "v0"));
    }
    // Slow Jira answers widen the window in which a load overlaps a write.
    jira.set_latency(Duration::from_millis(20));
    let jira = Arc::new(jira);
    let acknowledged: Arc<Vec<AtomicU64>> =
        Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));

    let writers: Vec<_> = (0..KEYS)
        .map(|k| {
            let (app, jira, acknowledged) = (
                Arc::clone(&app),
                Arc::clone(&jira),
                Arc::clone(&acknowledged),
            );
            tokio::spawn(async move {
                let key = race_key(k);
                for version in 1..=VERSIONS {
                    let summary = format!("v{version}");
                    loop {
                        let status = if k < 2 {
                            let uri = format!("/api/v1/tickets/{key}");
                            app.patch(&uri, json!({"summary": summary})).await.status
                        } else {
                            let mut changed = issue(&key, &summary);
                            changed.updated += chrono::Duration::milliseconds(version as i64);
                            jira.put_issue(changed.clone());
                            send_webhook(&app, "jira:issue_updated", &changed)
                                .await
                                .status
                        };
                        if status.is_success() {
                            break;
                        }
                        // Jira failed the write (a burst below): not acknowledged, try again.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    acknowledged[k].store(version, SeqCst);
                    tokio::time::sleep(Duration::from_millis(4)).await;
                }
            })
        })
        .collect();
    let upstream = match &app.state.tickets {
        qa_pms_api::tickets::TicketSource::Jira(jira) => jira.client.upstream().clone(),
        qa_pms_api::tickets::TicketSource::Database => unreachable!("Jira is configured"),
    };
    let chaos = {
        let (jira, done, acknowledged) = (
            Arc::clone(&jira),
            Arc::clone(&done),
            Arc::clone(&acknowledged),
        );
        tokio::spawn(async move {
            let mut outage = false;
            while !done.load(SeqCst) {
                tokio::time::sleep(Duration::from_millis(150)).await;
                // Once, a whole outage longer than a mirror row answers without Jira (two TTLs):
                // reads of the PATCHed keys answer STALE for a while, whatever the bursts below
                // hit, with the webhook key changing meanwhile and the other writes retrying
                // until it ends.
                if !outage && acknowledged[0].load(SeqCst) >= 3 {
                    outage = true;
                    jira.set_down(Some(Failure::Status(503)));
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    jira.set_down(None);
                    continue;
                }
                // Once the bursts have opened the circuit, the rest of a burst would only fail
                // its probes one per cooldown: the burst is over.
                if upstream.circuit_open() {
                    jira.clear_failures();
                    continue;
                }
                // A burst that fails two whole calls (four attempts each), queued only once the
                // last one is used up: bursts never pile up while the circuit is open.
                if jira.pending_failures() == 0 {
                    jira.fail_next(8, Failure::Status(503));
                }
            }
        })
    };
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (app, acknowledged, done) = (
                Arc::clone(&app),
                Arc::clone(&acknowledged),
                Arc::clone(&done),
            );
            tokio::spawn(async move {
                let (mut stale, mut seen_status) = (Vec::new(), std::collections::BTreeMap::new());
                let mut stale_served = 0;
                let mut i = r;
                while !done.load(SeqCst) {
                    let k = i % KEYS;
                    i += 1;
                    let floor = acknowledged[k].load(SeqCst);
                    let read = app.get(&format!("/api/v1/tickets/{}", race_key(k))).await;
                    if read.status != StatusCode::OK {
                        *seen_status.entry(read.status.as_u16()).or_insert(0) += 1;
                        continue;
                    }
                    *seen_status.entry(200).or_insert(0) += 1;
                    if read.header("x-cache-status") == "STALE" {
                        stale_served += 1;
                    }
                    let seen = version_of(read.json()["summary"].as_str().unwrap());
                    if seen < floor {
                        stale.push((k, floor, seen, read.header("cache-status").to_owned()));
                    }
                }
                (stale, seen_status, stale_served)
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    done.store(true, SeqCst);
    chaos.await.unwrap();
    let mut stale = Vec::new();
    let mut statuses = std::collections::BTreeMap::new();
    let mut stale_served = 0;
    for reader in readers {
        let (found, seen, served) = reader.await.unwrap();
        stale.extend(found);
        stale_served += served;
        for (status, n) in seen {
            *statuses.entry(status).or_insert(0) += n;
        }
    }

    let stats = app.state.cache.stats(qa_pms_core::CacheKind::Tickets);
    eprintln!(
        "{backend:?}: statuses {statuses:?}, {stale_served} STALE; {} hits, {} loads, {} refreshes, {} stale served, \
         {} stale discards",
        stats.hits, stats.loads, stats.refreshes, stats.stale_served, stats.stale_discards
    );
    assert!(
        stale.is_empty(),
        "{} stale reads (key, last acknowledged, seen, cache-status): {:?}",
        stale.len(),
        &stale[..stale.len().min(10)]
    );
    assert!(stats.hits > 0, "the cache served reads");
    assert!(stale_served > 0, "Jira's failures made reads answer STALE");
    assert!(
        statuses.get(&200).copied().unwrap_or(0) > 100,
        "{statuses:?}"
    );
    for k in 0..KEYS {
        let last = app
            .get(&format!("/api/v1/tickets/{}", race_key(k)))
            .await
            .json();
        assert_eq!(last["summary"], format!("v{VERSIONS}"));
    }
    assert!(issue_reads(&jira, &race_key(0)) > 0);
}
