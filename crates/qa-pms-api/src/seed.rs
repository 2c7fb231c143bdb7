//! Generated data: the small demo dataset `serve` loads into an empty embedded database, and the
//! large deterministic dataset of `qa-pms seed` that benchmarks run on. One generator serves both.

use chrono::{DateTime, Duration, Utc};
use qa_pms_core::template::default_templates;
use qa_pms_core::{
    CatalogEntry, JiraTicket, Pattern, Source, StepProgress, TemplateDraft, Workflow, WorkflowState,
};
use qa_pms_storage::{Store, StoreError, StoreResult};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

/// How much to generate, and over how many days of history.
#[derive(Debug, Clone, Copy)]
pub struct SeedSpec {
    pub tickets: u64,
    pub workflows: u64,
    pub catalog: u64,
    pub seed: u64,
    pub history_days: i64,
}

impl SeedSpec {
    /// The demo dataset: every endpoint answers something real at once.
    pub const DEMO: SeedSpec = SeedSpec {
        tickets: 320,
        workflows: 600,
        catalog: 240,
        seed: 42,
        history_days: 90,
    };
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeedReport {
    pub tickets: u64,
    pub workflows: u64,
    pub patterns: u64,
    pub catalog: u64,
}

/// Rows generated and written per batch: memory stays flat whatever the size.
const CHUNK: u64 = 10_000;

const STATUSES: [&str; 5] = ["To Do", "In Progress", "In Review", "QA", "Done"];
const PRIORITIES: [&str; 4] = ["Highest", "High", "Medium", "Low"];
const PEOPLE: [&str; 8] = [
    "ana.souza",
    "bruno.lima",
    "carla.mendes",
    "diego.rocha",
    "elena.costa",
    "felipe.alves",
    "gabriela.reis",
    "hugo.martins",
];
const AREAS: [&str; 12] = [
    "login",
    "checkout",
    "payment",
    "search",
    "profile",
    "cart",
    "invoice",
    "shipping",
    "notifications",
    "reports",
    "permissions",
    "onboarding",
];
const PROBLEMS: [&str; 8] = [
    "fails on retry",
    "shows the wrong total",
    "times out under load",
    "loses the session",
    "rejects valid input",
    "returns stale data",
    "is slow on mobile",
    "needs new fields",
];
const VERBS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
const CASES: [&str; 6] = [
    "with valid credentials",
    "with an expired token",
    "with missing fields",
    "as an admin",
    "on a slow network",
    "after a restart",
];

/// Fills an empty database. Refuses a database that already has tickets or workflows.
pub async fn seed(
    store: &dyn Store,
    spec: SeedSpec,
    now: DateTime<Utc>,
) -> StoreResult<SeedReport> {
    if !store.is_empty().await? {
        return Err(StoreError::Conflict(
            "the database already has tickets or workflows; seed an empty one".into(),
        ));
    }
    if spec.workflows > 0 && spec.tickets == 0 {
        return Err(StoreError::Conflict(
            "workflows need at least one ticket".into(),
        ));
    }
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let mut report = SeedReport::default();
    let templates = default_templates();

    let mut start = 1;
    while start <= spec.tickets {
        let end = (start + CHUNK).min(spec.tickets + 1);
        let batch: Vec<_> = (start..end).map(|n| ticket(&mut rng, n, now)).collect();
        store.insert_tickets(&batch).await?;
        report.tickets += batch.len() as u64;
        start = end;
    }

    let mut done = 0;
    while done < spec.workflows {
        let size = CHUNK.min(spec.workflows - done);
        let mut workflows = Vec::with_capacity(size as usize);
        let mut patterns = Vec::new();
        for _ in 0..size {
            let (id, draft) = &templates[rng.gen_range(0..templates.len())];
            let wf = workflow(&mut rng, *id, draft, spec, now);
            if let Some(mut pattern) = Pattern::time_excess(&wf, wf.completed_at.unwrap_or(now)) {
                pattern.id = random_uuid(&mut rng);
                patterns.push(pattern);
            }
            workflows.push(wf);
        }
        store.insert_workflows(&workflows).await?;
        store.insert_patterns(&patterns).await?;
        report.workflows += size;
        report.patterns += patterns.len() as u64;
        done += size;
    }

    let mut start = 0;
    while start < spec.catalog {
        let end = (start + CHUNK).min(spec.catalog);
        let entries: Vec<_> = (start..end).map(|i| catalog_entry(&mut rng, i)).collect();
        store.import_catalog(&entries).await?;
        report.catalog += entries.len() as u64;
        start = end;
    }
    store.refresh_statistics().await?;
    Ok(report)
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.gen_range(0..items.len())]
}

fn random_uuid(rng: &mut StdRng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.gen()).into_uuid()
}

fn ticket(rng: &mut StdRng, n: u64, now: DateTime<Utc>) -> JiraTicket {
    let area = pick(rng, &AREAS);
    let problem = pick(rng, &PROBLEMS);
    JiraTicket {
        key: format!("PROJ-{n}"),
        summary: format!("The {area} flow {problem}"),
        status: pick(rng, &STATUSES).to_owned(),
        description: rng.gen_bool(0.7).then(|| {
            format!("Reported by support: the {area} flow {problem}. Steps to reproduce attached.")
        }),
        assignee: rng.gen_bool(0.8).then(|| pick(rng, &PEOPLE).to_owned()),
        priority: Some(pick(rng, &PRIORITIES).to_owned()),
        updated_at: now - Duration::minutes(rng.gen_range(0..60 * 24 * 30)),
    }
}

fn workflow(
    rng: &mut StdRng,
    template_id: Uuid,
    template: &TemplateDraft,
    spec: SeedSpec,
    now: DateTime<Utc>,
) -> Workflow {
    let estimate = i64::from(template.estimated_minutes);
    // Between 0.3x and 2.5x the estimate: some runs overrun enough to record a pattern.
    let minutes_taken = rng.gen_range(estimate * 3 / 10..=estimate * 5 / 2);
    let history_minutes = spec.history_days * 24 * 60;
    let started_at =
        now - Duration::minutes(rng.gen_range(minutes_taken..=history_minutes.max(minutes_taken)));
    let state = match rng.gen_range(0..10) {
        0..=6 => WorkflowState::Completed,
        7 => WorkflowState::Active,
        8 => WorkflowState::Paused,
        _ => WorkflowState::Cancelled,
    };
    let finished = state == WorkflowState::Completed;
    let completed_at = finished.then(|| started_at + Duration::minutes(minutes_taken));
    let done_steps = if finished {
        template.steps.len()
    } else {
        rng.gen_range(0..template.steps.len())
    };
    let steps = template
        .steps
        .iter()
        .enumerate()
        .map(|(i, name)| StepProgress {
            name: name.clone(),
            completed_at: (i < done_steps).then_some(started_at + Duration::minutes(i as i64 + 1)),
        })
        .collect();
    Workflow {
        id: random_uuid(rng),
        template_id,
        ticket_key: format!("PROJ-{}", rng.gen_range(1..=spec.tickets)),
        state,
        steps,
        estimated_minutes: template.estimated_minutes,
        started_at,
        completed_at,
        updated_at: completed_at.unwrap_or(started_at),
        version: 1,
    }
}

fn catalog_entry(rng: &mut StdRng, i: u64) -> CatalogEntry {
    let area = pick(rng, &AREAS);
    if i.is_multiple_of(2) {
        let verb = pick(rng, &VERBS);
        CatalogEntry {
            source: Source::Postman,
            name: format!("{verb} /api/{area}/{i}"),
            url: format!("https://postman.example.test/collections/qa/requests/{i}"),
            text: format!("{verb} request for the {area} service; checks status codes and the response schema"),
        }
    } else {
        let case = pick(rng, &CASES);
        CatalogEntry {
            source: Source::Testmo,
            name: format!("TC-{i} {area} {case}"),
            url: format!("https://testmo.example.test/repositories/1/cases/{i}"),
            text: format!(
                "Open the {area} page {case} and verify the result matches the acceptance criteria"
            ),
        }
    }
}
