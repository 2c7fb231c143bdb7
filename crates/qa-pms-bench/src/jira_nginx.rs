//! The reference of `qa-pms-bench jira`: nginx's proxy cache (stale on error, background update)
//! in front of an uncached qa-pms, run as a child process with its config in a temp dir.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};

/// Whether an `nginx` executable is on PATH.
pub fn installed() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("nginx").is_file()))
}

/// A running nginx; [`Nginx::stop`] kills it and removes its directory.
pub struct Nginx {
    child: tokio::process::Child,
    dir: PathBuf,
    pub url: String,
}

impl Nginx {
    /// Starts nginx on a free loopback port, caching 200s of `upstream` (`http://host:port`)
    /// for `ttl`.
    pub async fn start(upstream: &str, ttl: Duration) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("qa-pms-bench-nginx-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let conf = dir.join("nginx.conf");
        let upstream = upstream.trim_start_matches("http://");
        std::fs::write(&conf, config(&dir, upstream, port, ttl))?;
        let child = tokio::process::Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting nginx")?;
        let nginx = Self {
            child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(nginx);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = nginx.dir.join("error.log");
        nginx.stop().await;
        bail!(
            "nginx did not listen on port {port} (see {})",
            log.display()
        )
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The config: one worker, the cache in `dir`, its verdict in `X-Proxy-Cache`.
fn config(dir: &Path, upstream: &str, port: u16, ttl: Duration) -> String {
    let dir = dir.display();
    let ttl = ttl.as_secs().max(1);
    // As root, nginx's workers would run as `nobody`, who cannot write the temp dir.
    let user = if running_as_root() { "user root;" } else { "" };
    format!(
        r#"{user}
worker_processes 1;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    proxy_cache_path {dir}/cache levels=1:2 keys_zone=tickets:16m max_size=1g inactive=1h use_temp_path=off;
    upstream qa_pms {{ server {upstream}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://qa_pms;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache tickets;
            proxy_ignore_headers Cache-Control Expires;
            proxy_cache_valid 200 {ttl}s;
            proxy_cache_use_stale error timeout updating http_500 http_502 http_503 http_504;
            proxy_cache_background_update on;
            proxy_cache_lock on;
            add_header X-Proxy-Cache $upstream_cache_status always;
        }}
    }}
}}
"#
    )
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"))
    })
}
