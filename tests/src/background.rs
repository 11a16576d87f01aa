//! A loopback server on a thread of its own (its own current-thread tokio
//! runtime), stopped and joined on `Drop`: the shape every in-process test
//! server of the harness shares (the hostile server, the TLS front, the proxies).

use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::process::{HarnessError, Result};

/// Runs `serve(listener)` on a thread of its own until dropped.
pub(crate) struct Background {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Binds `127.0.0.1:0` and runs `serve` on it until dropped.
    pub(crate) fn start<F, Fut>(name: &str, serve: F) -> Result<Background>
    where
        F: FnOnce(TcpListener) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let io = |source| HarnessError::Io {
            context: "binding a loopback port".into(),
            source,
        };
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io)?;
        std_listener.set_nonblocking(true).map_err(io)?;
        let addr = std_listener.local_addr().map_err(io)?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(std_listener) else {
                        return;
                    };
                    let local = tokio::task::LocalSet::new();
                    local
                        .run_until(async move {
                            tokio::select! {
                                () = serve(listener) => {}
                                _ = rx => {}
                            }
                        })
                        .await;
                });
            })
            .map_err(|source| HarnessError::Io {
                context: "starting a thread".into(),
                source,
            })?;
        Ok(Background {
            addr,
            stop: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
