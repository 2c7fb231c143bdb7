//! `qa-pms sync jira --jql '...'`: copies every issue a JQL search finds into the mirror, page by
//! page. The running processes drop those tickets from their caches when they read the
//! invalidations the mirror's trigger recorded (`invalidation.rs`).

use chrono::Utc;
use qa_pms_jira::JiraClient;
use qa_pms_storage::Store;

/// What a sync did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncReport {
    pub pages: u64,
    pub tickets: u64,
}

/// Runs one sync. Stops at the first failing page: what was mirrored before it stays.
pub async fn sync_jira(
    client: &JiraClient,
    store: &dyn Store,
    jql: &str,
) -> anyhow::Result<SyncReport> {
    let mut report = SyncReport::default();
    let mut token: Option<String> = None;
    loop {
        let page = client.search_page(jql, token.as_deref()).await?;
        report.pages += 1;
        for ticket in &page.tickets {
            // The mirror's trigger records the invalidation for every running replica.
            store.mirror_ticket(ticket, Utc::now()).await?;
            report.tickets += 1;
        }
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => return Ok(report),
        }
    }
}
