//! Helpers shared by the upstream tests: a config, a request builder, and a responder that
//! records when each request arrived.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qa_pms_upstream::{Upstream, UpstreamConfig};
use wiremock::{Request, Respond, ResponseTemplate};

/// A config with a generous budget and a single-digit number of attempts.
pub fn config(timeout: Duration) -> UpstreamConfig {
    let mut config = UpstreamConfig::new("test", 1000, timeout);
    config.max_attempts = 3;
    config
}

/// Sends `GET {uri}/thing` through `upstream`.
pub async fn get(
    upstream: &Upstream,
    uri: &str,
) -> Result<reqwest::Response, qa_pms_upstream::UpstreamError> {
    let client = reqwest::Client::new();
    let url = format!("{uri}/thing");
    upstream.send(|| client.get(&url)).await
}

/// Answers with `script[i]` to the i-th request (the last one repeats) and records when each
/// request was received.
#[derive(Clone)]
pub struct Scripted {
    pub received: Arc<Mutex<Vec<Instant>>>,
    script: Arc<Vec<ResponseTemplate>>,
}

impl Scripted {
    pub fn new(script: Vec<ResponseTemplate>) -> Self {
        assert!(!script.is_empty());
        Self {
            received: Arc::default(),
            script: Arc::new(script),
        }
    }

    pub fn times(&self) -> Vec<Instant> {
        self.received.lock().unwrap().clone()
    }
}

impl Respond for Scripted {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut received = self.received.lock().unwrap();
        received.push(Instant::now());
        let index = (received.len() - 1).min(self.script.len() - 1);
        self.script[index].clone()
    }
}
