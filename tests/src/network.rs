//! The networks annotators work in, on loopback: a private certificate
//! authority ([`TestCa`]), a TLS front that puts a server behind a
//! certificate of that CA ([`TlsFront`]), an HTTP `CONNECT` proxy
//! ([`ConnectProxy`]) and a SOCKS5 proxy ([`Socks5Proxy`]). The proxies write
//! down every tunnel they opened, so a test can tell that a connection went
//! through them and where to.
//!
//! Each runs on a thread of its own (its own tokio runtime) on `127.0.0.1:0`
//! and stops on `Drop`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::background::Background;
use crate::process::{HarnessError, Result};

fn fail(what: &str) -> impl FnOnce(String) -> HarnessError + '_ {
    move |detail| HarnessError::Parse {
        program: what.to_owned(),
        detail,
    }
}

/// A private certificate authority and a server certificate it signed for
/// `localhost` and `127.0.0.1`.
pub struct TestCa {
    ca_pem: String,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: Vec<u8>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestCa")
    }
}

impl TestCa {
    /// A fresh CA ("TaskBell Test CA") and a server certificate.
    pub fn new() -> Result<TestCa> {
        let err = |e: rcgen::Error| fail("rcgen")(e.to_string());
        let ca_key = rcgen::KeyPair::generate().map_err(err)?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "TaskBell Test CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(err)?;

        let key = rcgen::KeyPair::generate().map_err(err)?;
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .map_err(err)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &ca).map_err(err)?;
        Ok(TestCa {
            ca_pem: ca.pem(),
            server_chain: vec![cert.der().clone(), ca.der().clone()],
            server_key: key.serialize_der(),
        })
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes the CA certificate to `dir/ca.pem` and returns the path.
    pub fn write_ca(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.ca_pem).map_err(|source| HarnessError::Io {
            context: format!("writing {}", path.display()),
            source,
        })?;
        Ok(path)
    }

    fn server_config(&self) -> Result<rustls::ServerConfig> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_no_client_auth()
                .with_single_cert(self.server_chain.clone(), key)
        })
        .map_err(|e| fail("rustls")(e.to_string()))
    }
}

/// TLS in front of a plain server: `https://localhost:PORT` → `upstream`.
pub struct TlsFront {
    bg: Background,
}

impl std::fmt::Debug for TlsFront {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFront")
            .field("addr", &self.bg.addr)
            .finish()
    }
}

impl TlsFront {
    /// Serves `ca`'s server certificate and forwards each connection to `upstream`.
    pub fn start(ca: &TestCa, upstream: SocketAddr) -> Result<TlsFront> {
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(ca.server_config()?));
        let bg = Background::start("tls-front", move |listener| async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::task::spawn_local(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut up) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                });
            }
        })?;
        Ok(TlsFront { bg })
    }

    /// `https://localhost:PORT`.
    pub fn base_url(&self) -> String {
        format!("https://localhost:{}", self.bg.addr.port())
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.bg.addr.port()
    }
}

/// The tunnels a proxy opened (`host:port` each), in order.
#[derive(Debug, Clone, Default)]
pub struct Tunnels(Arc<Mutex<Vec<String>>>);

impl Tunnels {
    fn push(&self, target: String) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(target);
    }

    /// Every target so far.
    pub fn list(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// An HTTP proxy that answers `CONNECT host:port` with a tunnel (or, when told
/// to refuse, with `403 Forbidden`).
pub struct ConnectProxy {
    bg: Background,
    tunnels: Tunnels,
    cut: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for ConnectProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectProxy")
            .field("addr", &self.bg.addr)
            .finish()
    }
}

impl ConnectProxy {
    /// A proxy that opens every tunnel asked for.
    pub fn start() -> Result<ConnectProxy> {
        ConnectProxy::start_with(false)
    }

    /// A proxy that refuses every tunnel (403), as a proxy whose policy forbids it.
    pub fn refusing() -> Result<ConnectProxy> {
        ConnectProxy::start_with(true)
    }

    fn start_with(refuse: bool) -> Result<ConnectProxy> {
        let tunnels = Tunnels::default();
        let t = tunnels.clone();
        let (cut, cut_rx) = tokio::sync::watch::channel(0u64);
        let bg = Background::start("connect-proxy", move |listener| async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let t = t.clone();
                let mut cut_rx = cut_rx.clone();
                cut_rx.borrow_and_update();
                tokio::task::spawn_local(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 << 10 {
                        match client.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let text = String::from_utf8_lossy(&head).into_owned();
                    let mut words = text.split_whitespace();
                    let (Some("CONNECT"), Some(target)) = (words.next(), words.next()) else {
                        let _ = client
                            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                            .await;
                        return;
                    };
                    let target = target.to_owned();
                    if refuse {
                        let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
                        return;
                    }
                    let Ok(mut up) = TcpStream::connect(target.as_str()).await else {
                        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                        return;
                    };
                    t.push(target);
                    if client
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut up) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        })?;
        Ok(ConnectProxy { bg, tunnels, cut })
    }

    /// Cuts every open tunnel (as a proxy restart would): whatever goes through
    /// this proxy loses its connection.
    pub fn cut_all(&self) {
        self.cut.send_modify(|g| *g += 1);
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.bg.addr)
    }

    /// The tunnels opened so far.
    pub fn tunnels(&self) -> Vec<String> {
        self.tunnels.list()
    }
}

/// A SOCKS5 proxy (no authentication, `CONNECT` only) that writes down its tunnels.
pub struct Socks5Proxy {
    bg: Background,
    tunnels: Tunnels,
}

impl std::fmt::Debug for Socks5Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socks5Proxy")
            .field("addr", &self.bg.addr)
            .finish()
    }
}

impl Socks5Proxy {
    /// Starts the proxy.
    pub fn start() -> Result<Socks5Proxy> {
        let tunnels = Tunnels::default();
        let t = tunnels.clone();
        let bg = Background::start("socks5-proxy", move |listener| async move {
            while let Ok((client, _)) = listener.accept().await {
                let t = t.clone();
                tokio::task::spawn_local(async move {
                    let _ = socks5_session(client, t).await;
                });
            }
        })?;
        Ok(Socks5Proxy { bg, tunnels })
    }

    /// `socks5h://127.0.0.1:PORT` (the proxy resolves names).
    pub fn url(&self) -> String {
        format!("socks5h://{}", self.bg.addr)
    }

    /// The tunnels opened so far.
    pub fn tunnels(&self) -> Vec<String> {
        self.tunnels.list()
    }
}

async fn socks5_session(mut c: TcpStream, t: Tunnels) -> std::io::Result<()> {
    let mut hello = [0u8; 2];
    c.read_exact(&mut hello).await?;
    let mut methods = vec![0u8; usize::from(hello[1])];
    c.read_exact(&mut methods).await?;
    if hello[0] != 5 || !methods.contains(&0) {
        c.write_all(&[5, 0xff]).await?;
        return Ok(());
    }
    c.write_all(&[5, 0]).await?;
    let mut req = [0u8; 4];
    c.read_exact(&mut req).await?;
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            c.read_exact(&mut a).await?;
            std::net::Ipv4Addr::from(a).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            c.read_exact(&mut len).await?;
            let mut name = vec![0u8; usize::from(len[0])];
            c.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        4 => {
            let mut a = [0u8; 16];
            c.read_exact(&mut a).await?;
            format!("[{}]", std::net::Ipv6Addr::from(a))
        }
        _ => return Ok(()),
    };
    let mut port = [0u8; 2];
    c.read_exact(&mut port).await?;
    let target = format!("{host}:{}", u16::from_be_bytes(port));
    if req[1] != 1 {
        c.write_all(&[5, 7, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        return Ok(());
    }
    let Ok(mut up) = TcpStream::connect(target.as_str()).await else {
        c.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        return Ok(());
    };
    t.push(target);
    c.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).await?;
    let _ = tokio::io::copy_bidirectional(&mut c, &mut up).await;
    Ok(())
}
