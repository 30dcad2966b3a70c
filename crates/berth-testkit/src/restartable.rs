//! A test server that can be taken down and brought back on the same port,
//! with the requests in flight cut: what the receivers standing in for
//! SaaS services (`hec`, `sentry`) need to play an outage.

use anyhow::{Context, Result};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Mutex;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tower::ServiceExt;

/// A running `Router` on a fixed address. Dropping it stops it.
pub struct Restartable {
    addr: SocketAddr,
    router: Router,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl Restartable {
    /// Serves `router` on `addr` (port 0: a free one).
    pub fn start_on(addr: SocketAddr, router: Router) -> Result<Self> {
        let listener = bind(addr).with_context(|| format!("binding {addr}"))?;
        let server = Self {
            addr: listener.local_addr()?,
            router,
            server: Mutex::new(None),
        };
        server.serve(listener);
        Ok(server)
    }

    /// The address it listens on, the same after a restart.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Takes the server down: the port refuses connections and requests
    /// in flight are cut.
    pub fn stop(&self) {
        if let Some(server) = self.server.lock().unwrap().take() {
            server.abort();
        }
    }

    /// Brings it back on the same port.
    pub fn restart(&self) -> Result<()> {
        self.stop();
        let listener = bind(self.addr).with_context(|| format!("binding {} again", self.addr))?;
        self.serve(listener);
        Ok(())
    }

    fn serve(&self, listener: TcpListener) {
        let app = self.router.clone();
        // Connections live in this task's set, so aborting the task cuts them.
        let server = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let app = app.clone();
                connections.spawn(async move {
                    let service =
                        hyper::service::service_fn(move |request| app.clone().oneshot(request));
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        *self.server.lock().unwrap() = Some(server);
    }
}

impl Drop for Restartable {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A listener on `addr` that may take the port of one just stopped.
fn bind(addr: SocketAddr) -> Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket.listen(1024)?)
}
