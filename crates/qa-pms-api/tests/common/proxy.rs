//! A TCP proxy in front of PostgreSQL that a test can cut: every open connection is dropped and
//! new ones are closed at once, as a network partition or a database restart looks to the service.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

pub struct Proxy {
    address: SocketAddr,
    target: String,
    cut: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    /// A proxy to the server of the database URL `url`.
    pub async fn to_server_of(url: &str) -> Self {
        let target = host_port(url).to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let cut = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let (to, is_cut, open) = (target.clone(), Arc::clone(&cut), Arc::clone(&connections));
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if is_cut.load(SeqCst) {
                    drop(inbound);
                    continue;
                }
                let to = to.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                open.lock().unwrap().push(task.abort_handle());
            }
        });
        Self {
            address,
            target,
            cut,
            connections,
        }
    }

    /// `url` with its server replaced by this proxy.
    pub fn url(&self, url: &str) -> String {
        url.replacen(&self.target, &self.address.to_string(), 1)
    }

    /// Drops every connection and refuses new ones until [`Self::restore`].
    pub fn cut(&self) {
        self.cut.store(true, SeqCst);
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, SeqCst);
    }
}

/// `127.0.0.1:5432` of `postgres://user@127.0.0.1:5432/db`.
fn host_port(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let after_user = after_scheme
        .rsplit_once('@')
        .map_or(after_scheme, |(_, rest)| rest);
    after_user.split('/').next().unwrap_or(after_user)
}
