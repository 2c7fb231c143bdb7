//! What `qa-pms-bench jira` prints after each phase: counts, Jira calls, latency per TTL period,
//! availability during the outage and after it.

use std::collections::HashSet;
use std::time::Duration;

use crate::jira_phases::{Cache, Jira, Phased, Plan, Record, HOT_KEYS, WEBHOOK_SHARE};
use crate::stats::Samples;

pub(crate) fn steady(plan: &Plan, phase: &Phased, jira: &Jira) {
    let records = &phase.records;
    let reads: Vec<&Record> = records.iter().filter(|r| r.is_read()).collect();
    let webhooks = records.len() - reads.len();
    let count = |f: &dyn Fn(&Record) -> bool| reads.iter().filter(|r| f(r)).count();
    println!(
        "steady: {:.0} s, {} connections, Zipf(s=1) over {} keys, {:.0}% webhooks",
        plan.steady.as_secs_f64(),
        plan.connections,
        plan.keys,
        WEBHOOK_SHARE * 100.0
    );
    println!(
        "requests {} ({} reads, {webhooks} webhooks), {:.0} req/s",
        records.len(),
        reads.len(),
        phase.measured.rps
    );
    let webhooks_ok = records
        .iter()
        .filter(|r| r.webhook && r.status == 204)
        .count();
    println!(
        "reads by status: 200 {}, 503 {}, 504 {}, other {};  webhooks: 204 {webhooks_ok}, other {}",
        count(&|r| r.status == 200),
        count(&|r| r.status == 503),
        count(&|r| r.status == 504),
        count(&|r| !matches!(r.status, 200 | 503 | 504)),
        webhooks - webhooks_ok
    );
    println!(
        "X-Cache-Status of reads: HIT {}, MISS {}, STALE or UPDATING {}, none {}",
        count(&|r| r.cache == Cache::Hit),
        count(&|r| r.cache == Cache::Miss),
        count(&|r| r.cache == Cache::Stale),
        count(&|r| r.cache == Cache::Unknown)
    );
    jira_calls(jira, records.len());

    println!(
        "\n{:<10} {:>8} {:>11} {:>11} {:>11} {:>11}",
        "period", "reads", "hot p50 ms", "hot p99 ms", "all p50 ms", "all p99 ms"
    );
    let ttl = plan.ticket_ttl;
    let periods = (plan.steady.as_secs_f64() / ttl.as_secs_f64())
        .ceil()
        .max(1.0) as u32;
    for p in 0..periods {
        let (from, to) = (ttl * p, ttl * (p + 1));
        let in_period: Vec<&Record> = reads
            .iter()
            .copied()
            .filter(|r| r.at >= from && (r.at < to || p + 1 == periods))
            .collect();
        let hot = samples(in_period.iter().copied().filter(|r| r.key <= HOT_KEYS));
        let all = samples(in_period.iter().copied());
        println!(
            "{:<10} {:>8} {:>11} {:>11} {:>11} {:>11}",
            format!("{}-{} s", from.as_secs(), to.as_secs()),
            in_period.len(),
            ms(hot.p50()),
            ms(hot.p99()),
            ms(all.p50()),
            ms(all.p99())
        );
    }
    let hits = samples(reads.iter().copied().filter(|r| r.cache == Cache::Hit));
    println!(
        "HIT-answered reads: {}, p50 {} ms, p99 {} ms",
        hits.count(),
        ms(hits.p50()),
        ms(hits.p99())
    );
}

/// Jira calls during a phase, per 1,000 requests, and how many the fake answered 429.
fn jira_calls(jira: &Jira, requests: usize) {
    println!(
        "Jira calls {} ({} issue GETs), {:.2} per 1,000 requests; answered 429 by the fake: {}",
        jira.calls,
        jira.issue_gets,
        jira.calls as f64 * 1000.0 / requests.max(1) as f64,
        jira.rate_limited
    );
}

pub(crate) fn outage(plan: &Plan, phase: &Phased, read_before: &HashSet<u32>) {
    let records = &phase.records;
    println!(
        "\noutage: {:.0} s with Jira refusing connections, reads only: {} requests, {:.0} req/s",
        plan.outage.as_secs_f64(),
        records.len(),
        phase.measured.rps
    );
    println!(
        "{:<22} {:>8} {:>7} {:>14} {:>10} {:>8}",
        "keys", "reads", "200 %", "STALE % of 200", "503/504 %", "other %"
    );
    for (label, before) in [("read before outage", true), ("never read before", false)] {
        let group: Vec<&Record> = records
            .iter()
            .filter(|r| read_before.contains(&r.key) == before)
            .collect();
        let count = |f: &dyn Fn(&Record) -> bool| group.iter().filter(|r| f(r)).count();
        let ok = count(&|r| r.status == 200);
        println!(
            "{:<22} {:>8} {:>7} {:>14} {:>10} {:>8}",
            label,
            group.len(),
            pct(ok, group.len()),
            pct(count(&|r| r.status == 200 && r.cache == Cache::Stale), ok),
            pct(count(&|r| matches!(r.status, 503 | 504)), group.len()),
            pct(
                count(&|r| !matches!(r.status, 200 | 503 | 504)),
                group.len()
            )
        );
    }
    let worst = records
        .iter()
        .filter(|r| r.status != 200)
        .map(|r| r.latency)
        .max();
    println!(
        "max latency of non-200 answers: {} (Jira timeout {:.0} s)",
        worst.map_or("none".to_owned(), |d| format!("{} ms", ms(d))),
        plan.jira_timeout.as_secs_f64()
    );
}

pub(crate) fn recovery(plan: &Plan, phase: &Phased, stale: &HashSet<u32>, jira: &Jira) {
    let records = &phase.records;
    let ok = records.iter().filter(|r| r.status == 200).count();
    let first_fresh = records
        .iter()
        .filter(|r| r.status == 200 && matches!(r.cache, Cache::Hit | Cache::Miss))
        .filter(|r| stale.contains(&r.key))
        .map(Record::answered_at)
        .min();
    println!(
        "\nrecovery: {:.0} s after Jira accepts connections again: {} reads, availability {}%",
        plan.recovery.as_secs_f64(),
        records.len(),
        pct(ok, records.len())
    );
    println!(
        "first fresh (HIT/MISS) answer for one of the {} keys answered STALE in the outage: {}",
        stale.len(),
        first_fresh.map_or("none".to_owned(), |d| format!(
            "{:.2} s after recovery",
            d.as_secs_f64()
        ))
    );
    jira_calls(jira, records.len());
}

fn samples<'a>(records: impl Iterator<Item = &'a Record>) -> Samples {
    let mut samples = Samples::default();
    for r in records {
        samples.push(r.latency);
    }
    samples
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn pct(n: usize, of: usize) -> String {
    if of == 0 {
        return "-".to_owned();
    }
    format!("{:.1}", n as f64 * 100.0 / of as f64)
}
