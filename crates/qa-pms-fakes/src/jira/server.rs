//! The listening socket: bind (with SO_REUSEADDR so the same port can be taken again), serve, close.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::serve::Listener;
use axum::Router;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A serving task and the means to stop it.
pub(crate) struct Running {
    shutdown: oneshot::Sender<()>,
    closed: oneshot::Receiver<()>,
    task: JoinHandle<()>,
}

pub(crate) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Binds `addr`, retrying briefly in case the previous socket is still being torn down.
pub(crate) async fn rebind(addr: SocketAddr) -> io::Result<TcpListener> {
    let mut attempt = 0;
    loop {
        match bind(addr) {
            Ok(listener) => return Ok(listener),
            Err(error) if attempt >= 50 => return Err(error),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

pub(crate) fn spawn(listener: TcpListener, router: Router) -> Running {
    let (shutdown, shutdown_rx) = oneshot::channel::<()>();
    let (closed_tx, closed) = oneshot::channel();
    let listener = ClosingListener {
        inner: listener,
        _closed: closed_tx,
    };
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = shutdown_rx.await;
            })
            .await;
    });
    Running {
        shutdown,
        closed,
        task,
    }
}

impl Running {
    /// Stops accepting and waits until the listening socket is closed. Idle keep-alive connections
    /// are closed; requests in flight finish in the background (a hanging one keeps hanging).
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), self.closed).await;
        self.task.abort();
    }

    /// Drops the listener without waiting (for `Drop`).
    pub fn abort(self) {
        let _ = self.shutdown.send(());
        self.task.abort();
    }
}

/// A `TcpListener` that tells `closed` when axum drops it, i.e. when the port stops listening.
struct ClosingListener {
    inner: TcpListener,
    _closed: oneshot::Sender<()>,
}

impl Listener for ClosingListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        Listener::accept(&mut self.inner).await
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}
