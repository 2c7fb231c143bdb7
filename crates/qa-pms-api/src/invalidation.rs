//! What a write invalidates, applied here and published to the other replicas.
//!
//! Within one process a write never lets a later read see what it replaced (the generation check
//! in `qa_pms_core::cache`). Across replicas on PostgreSQL, each write is also sent with `NOTIFY`;
//! every replica `LISTEN`s and applies it, so another replica stops serving the old entry within
//! the notification's delivery time (milliseconds), not at the end of the entry's TTL. If the feed
//! loses its connection, the replica drops everything it has cached, since it may have missed
//! messages.

use qa_pms_core::{AppCache, TicketKey};
use qa_pms_storage::Notice;
use uuid::Uuid;

use crate::state::AppState;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    Ticket(TicketKey),
    /// Any search may rank differently (a catalog import).
    AllSearches,
    /// Every KPI period (a workflow change or a recorded pattern).
    Dashboards,
    Template(Uuid),
}

impl Invalidation {
    pub async fn apply(&self, cache: &AppCache) {
        match self {
            Invalidation::Ticket(key) => cache.tickets.invalidate(key).await,
            Invalidation::AllSearches => cache.search.invalidate_all(),
            Invalidation::Dashboards => cache.invalidate_dashboards().await,
            Invalidation::Template(id) => cache.templates.invalidate(id).await,
        }
    }

    /// `<origin> <what> [<key>]`, e.g. `3f2a… ticket PROJ-1`.
    pub fn encode(&self, origin: &str) -> String {
        match self {
            Invalidation::Ticket(key) => format!("{origin} ticket {key}"),
            Invalidation::AllSearches => format!("{origin} search"),
            Invalidation::Dashboards => format!("{origin} dashboards"),
            Invalidation::Template(id) => format!("{origin} template {id}"),
        }
    }

    /// The origin and the invalidation of a message; `None` for one this version cannot read.
    pub fn decode(message: &str) -> Option<(&str, Self)> {
        let mut parts = message.split(' ');
        let origin = parts.next()?;
        let invalidation = match (parts.next()?, parts.next()) {
            ("ticket", Some(key)) => Invalidation::Ticket(TicketKey::parse(key).ok()?),
            ("search", None) => Invalidation::AllSearches,
            ("dashboards", None) => Invalidation::Dashboards,
            ("template", Some(id)) => Invalidation::Template(Uuid::parse_str(id).ok()?),
            _ => return None,
        };
        parts.next().is_none().then_some((origin, invalidation))
    }
}

/// Applies the other replicas' invalidations until the feed ends. Returns `false` at once where
/// the backend has no feed (SQLite: one process).
pub async fn listen(state: AppState) -> Result<bool, qa_pms_storage::StoreError> {
    let Some(mut notices) = state.store.subscribe_invalidations().await? else {
        return Ok(false);
    };
    tokio::spawn(async move {
        while let Some(notice) = notices.recv().await {
            match notice {
                Notice::Message(message) => match Invalidation::decode(&message) {
                    Some((origin, _)) if origin == &*state.instance => {}
                    Some((_, invalidation)) => invalidation.apply(&state.cache).await,
                    None => {
                        tracing::warn!(%message, "unreadable invalidation; dropping every cache");
                        state.cache.invalidate_all();
                    }
                },
                Notice::Lost => {
                    tracing::warn!("invalidation feed lost its connection; dropping every cache");
                    state.cache.invalidate_all();
                }
            }
        }
    });
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let all = [
            Invalidation::Ticket(TicketKey::parse("PROJ-1").unwrap()),
            Invalidation::AllSearches,
            Invalidation::Dashboards,
            Invalidation::Template(Uuid::new_v4()),
        ];
        for invalidation in all {
            let message = invalidation.encode("me");
            assert_eq!(Invalidation::decode(&message), Some(("me", invalidation)));
        }
    }

    #[test]
    fn unreadable_messages_decode_to_none() {
        for message in [
            "",
            "me",
            "me ticket",
            "me ticket bad",
            "me ticket PROJ-1 x",
            "me nope",
        ] {
            assert_eq!(Invalidation::decode(message), None, "{message}");
        }
    }
}
