//! `qa-pms cache stats|purge|warm`: the admin API (`/admin/cache`, `routes/admin.rs`) from a
//! terminal, against a running service. Prints a table, or the service's JSON with `--json`.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Per cache: settings, entries, bytes, hits, misses, hit rate, loads, evictions.
    Stats(ClientArgs),
    /// Drop a whole cache (`tickets`) or one key of it (`tickets PROJ-1`), on every replica.
    Purge {
        #[command(flatten)]
        client: ClientArgs,
        /// tickets, search, metrics or templates.
        cache: String,
        /// A key as `stats --json` and `/admin/cache` name them; without it, every entry.
        key: Option<String>,
    },
    /// Load keys into a cache on every replica: the keys given, or the `--top N` most read.
    Warm {
        #[command(flatten)]
        client: ClientArgs,
        cache: String,
        keys: Vec<String>,
        #[arg(long, conflicts_with = "keys")]
        top: Option<usize>,
    },
}

/// Where the service is and how to be let in.
#[derive(Clone, Args)]
pub struct ClientArgs {
    /// The service's base URL.
    #[arg(long, env = "QA_PMS_URL", default_value = "http://127.0.0.1:3000")]
    pub url: String,
    /// The service's `QA_PMS_ADMIN_TOKEN`.
    #[arg(long, env = "QA_PMS_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Print the service's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Secrets stay out of logs and error messages.
impl std::fmt::Debug for ClientArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientArgs")
            .field("url", &self.url)
            .field("json", &self.json)
            .finish_non_exhaustive()
    }
}

pub async fn run(command: CacheCommand) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .build()?;
    match command {
        CacheCommand::Stats(client) => {
            let body = call(&http, &client, reqwest::Method::GET, &[], None).await?;
            print(&client, &body, stats_table);
        }
        CacheCommand::Purge { client, cache, key } => {
            let mut path = vec![cache.as_str()];
            path.extend(key.as_deref());
            let body = call(&http, &client, reqwest::Method::DELETE, &path, None).await?;
            print(&client, &body, |body| {
                let key = body["key"].as_str().unwrap_or("every key");
                format!(
                    "purged {key} of the {} cache on every replica\n",
                    body["cache"].as_str().unwrap_or("?")
                )
            });
        }
        CacheCommand::Warm {
            client,
            cache,
            keys,
            top,
        } => {
            let request = match top {
                Some(top) => json!({ "top": top }),
                None => json!({ "keys": keys }),
            };
            let path = [cache.as_str(), "warm"];
            let body = call(&http, &client, reqwest::Method::POST, &path, Some(request)).await?;
            print(&client, &body, |body| {
                format!(
                    "{} cache: {} keys requested, {} loaded here, {} failed; every replica loads them too\n",
                    body["cache"].as_str().unwrap_or("?"),
                    body["requested"],
                    body["loaded"],
                    body["failed"]
                )
            });
        }
    }
    Ok(())
}

/// Calls `/admin/cache/<path...>` (each part percent-encoded); the service's error message when
/// it refuses.
async fn call(
    http: &reqwest::Client,
    client: &ClientArgs,
    method: reqwest::Method,
    path: &[&str],
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let mut url = reqwest::Url::parse(&client.url)
        .with_context(|| format!("`{}` is not a URL", client.url))?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("`{}` cannot be a base URL", client.url))?
        .pop_if_empty()
        .extend(["admin", "cache"])
        .extend(path);
    let mut request = http.request(method, url.clone()).bearer_auth(&client.token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .with_context(|| format!("{url} answered {status} without JSON"))?;
    if !status.is_success() {
        let message = body["error"]["message"].as_str().unwrap_or("no message");
        bail!("{url} answered {status}: {message}");
    }
    Ok(body)
}

fn print(client: &ClientArgs, body: &Value, table: impl Fn(&Value) -> String) {
    if client.json {
        println!("{}", serde_json::to_string_pretty(body).unwrap_or_default());
    } else {
        print!("{}", table(body));
    }
}

/// One line per cache, aligned.
fn stats_table(body: &Value) -> String {
    let header = [
        "cache",
        "entries",
        "capacity",
        "bytes",
        "max bytes",
        "hits",
        "misses",
        "hit rate",
        "loads",
        "evictions",
    ];
    let mut rows = vec![header.map(str::to_owned).to_vec()];
    for cache in body["caches"].as_array().into_iter().flatten() {
        let number = |v: &Value| v.as_u64().map_or_else(|| "-".to_owned(), |n| n.to_string());
        rows.push(vec![
            cache["cache"].as_str().unwrap_or("?").to_owned(),
            number(&cache["entries"]),
            number(&cache["settings"]["capacity"]),
            number(&cache["bytes"]),
            number(&cache["settings"]["max_bytes"]),
            number(&cache["hits"]),
            number(&cache["misses"]),
            format!("{:.1}%", cache["hit_rate"].as_f64().unwrap_or(0.0) * 100.0),
            number(&cache["loads"]),
            number(&cache["evictions"]),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|row| row[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, width))| {
                if i == 0 {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stats_table_has_a_row_per_cache_in_aligned_columns() {
        let body = json!({"caches": [
            {"cache": "tickets", "entries": 3, "bytes": 1536, "hits": 9, "misses": 3,
             "hit_rate": 0.75, "loads": 3, "evictions": 0,
             "settings": {"capacity": 1000, "max_bytes": 33554432}},
            {"cache": "search", "entries": 0, "bytes": 0, "hits": 0, "misses": 0,
             "hit_rate": 0.0, "loads": 0, "evictions": 0,
             "settings": {"capacity": 500, "max_bytes": null}},
        ]});
        let table = stats_table(&body);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[1].starts_with("tickets"), "{table}");
        assert!(lines[1].contains("75.0%"), "{table}");
        assert!(lines[2].contains(" - "), "no budget reads as -: {table}");
        assert_eq!(lines[0].len(), lines[1].len(), "{table}");
    }
}
