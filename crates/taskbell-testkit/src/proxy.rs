//! A loopback TCP proxy that can black-hole its connections: bytes stop flowing in both
//! directions while both sockets stay open, as on a dead NAT mapping or a pulled cable.
//!
//! While black-holed, existing and new connections are frozen (read from nowhere, written to
//! nowhere); [`Proxy::heal`] drops every frozen connection and lets new ones through again. When
//! the upstream refuses a connection, the client's connection is closed at once.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The proxy; stops on drop.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
    /// `(black_holed, epoch)`: every heal starts a new epoch.
    state: watch::Sender<(bool, u64)>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let upstream = Arc::new(Mutex::new(upstream));
        let (state, _) = watch::channel((false, 0u64));
        let up = upstream.clone();
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let target = *up.lock().unwrap_or_else(PoisonError::into_inner);
                tokio::spawn(pipe(client, target, st.subscribe()));
            }
        });
        Ok(Proxy {
            addr,
            upstream,
            state,
            task,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes the upstream for new connections.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.upstream.lock().unwrap_or_else(PoisonError::into_inner) = upstream;
    }

    /// Freezes every connection, present and future.
    pub fn black_hole(&self) {
        self.state.send_modify(|s| s.0 = true);
    }

    /// Drops the frozen connections; new ones flow again.
    pub fn heal(&self) {
        self.state.send_modify(|s| {
            s.0 = false;
            s.1 += 1;
        });
    }

    /// Whether connections are frozen now.
    pub fn is_black_holed(&self) -> bool {
        self.state.borrow().0
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        // Wakes every pipe; they end on the closed channel.
        self.heal();
    }
}

/// Waits while black-holed; returns when healed in a later epoch (the connection must go) or
/// the proxy is gone.
async fn frozen(state: &mut watch::Receiver<(bool, u64)>, epoch: u64) {
    loop {
        let (bh, e) = *state.borrow_and_update();
        if !bh && e != epoch {
            return;
        }
        if state.changed().await.is_err() {
            return;
        }
    }
}

async fn pipe(client: TcpStream, target: SocketAddr, mut state: watch::Receiver<(bool, u64)>) {
    let (bh, epoch) = *state.borrow_and_update();
    if bh {
        // Accepted into a black hole: nothing ever flows.
        let _keep = client;
        frozen(&mut state, epoch).await;
        return;
    }
    let Ok(server) = TcpStream::connect(target).await else {
        return; // refused upstream: close the client at once
    };
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let mut a = [0u8; 16 * 1024];
    let mut b = [0u8; 16 * 1024];
    let mut wake = state.clone();
    loop {
        if state.borrow().0 {
            frozen(&mut state, epoch).await;
            return;
        }
        tokio::select! {
            r = cr.read(&mut a) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if state.borrow().0 { frozen(&mut state, epoch).await; return; }
                    if sw.write_all(&a[..n]).await.is_err() { return; }
                }
            },
            r = sr.read(&mut b) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if state.borrow().0 { frozen(&mut state, epoch).await; return; }
                    if cw.write_all(&b[..n]).await.is_err() { return; }
                }
            },
            changed = wake.changed() => {
                if changed.is_err() { return; }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn forwards_then_black_holes_then_heals() {
        let proxy = Proxy::start(echo_server().await).await.unwrap();
        let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
        c.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        tokio::time::timeout(Duration::from_secs(10), c.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"hello");

        proxy.black_hole();
        assert!(proxy.is_black_holed());
        c.write_all(b"lost!").await.unwrap();
        // Nothing comes back while black-holed, and the socket is not closed either.
        let r = tokio::time::timeout(Duration::from_millis(300), c.read(&mut buf)).await;
        assert!(
            r.is_err(),
            "a black-holed connection must neither answer nor close: {r:?}"
        );

        proxy.heal();
        // The frozen connection is dropped on heal ...
        let r = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
            .await
            .unwrap();
        assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
        // ... and a new one flows again.
        let mut c2 = TcpStream::connect(proxy.addr()).await.unwrap();
        c2.write_all(b"again").await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), c2.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"again");
    }

    #[tokio::test]
    async fn a_refused_upstream_closes_the_client() {
        // Bound but never listening: connects are refused, and no other test can take
        // the port while this one runs.
        let reserved = tokio::net::TcpSocket::new_v4().unwrap();
        reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let dead = reserved.local_addr().unwrap();
        let proxy = Proxy::start(dead).await.unwrap();
        let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut buf = [0u8; 1];
        let r = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
            .await
            .unwrap();
        assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    }
}
