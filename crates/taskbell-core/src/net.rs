//! One trust decision and one proxy decision for REST and the socket.
//!
//! Self-hosted platforms often sit behind an internal CA and a company proxy.
//! [`Network`] holds both decisions, made once from the config, and every
//! connection TaskBell opens goes through it:
//!
//! - **Trust**: the operating system's certificate store (through
//!   `rustls-platform-verifier`: the Windows and macOS verifiers, the system
//!   store on Linux), plus the certificates of an optional `ca_file`. REST
//!   (reqwest, given the same rustls config) and the WebSocket (given it as its
//!   connector) trust exactly the same certificates.
//! - **Proxy**: `proxy` in the config (`http://…`, `socks5://…`,
//!   `socks5h://…`, or `"none"`), else the environment (`HTTPS_PROXY`,
//!   `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, lower case too) and, on Windows and
//!   macOS, the system settings — for REST and the WebSocket alike. The socket
//!   goes through an HTTP proxy with `CONNECT`, through SOCKS5 with
//!   `tokio-socks`.
//!
//! Every failure names its cause: the CA file that cannot be read, the proxy
//! that cannot be reached or refused the tunnel, the certificate that is not
//! trusted (with the hint to set `ca_file`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

use crate::config::Config;

/// Where the proxy setting comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ProxyMode {
    /// The environment (`HTTPS_PROXY`, `NO_PROXY` …) and, on Windows and
    /// macOS, the system settings.
    #[default]
    System,
    /// Always connect directly.
    Off,
    /// This proxy (`http://`, `socks5://`, `socks5h://`), except for the hosts
    /// of `no_proxy` (comma-separated, as in `NO_PROXY`).
    Url {
        /// The proxy.
        url: Url,
        /// Hosts reached directly.
        no_proxy: Option<String>,
    },
}

impl ProxyMode {
    /// The mode a config asks for: `proxy = "none"` (or `"off"`, `"direct"`),
    /// a proxy URL, or nothing (the system's).
    pub fn from_config(config: &Config) -> Result<ProxyMode, NetError> {
        match config.proxy.as_deref().map(str::trim) {
            None | Some("") => Ok(ProxyMode::System),
            Some(p) if ["none", "off", "direct"].contains(&p.to_ascii_lowercase().as_str()) => {
                Ok(ProxyMode::Off)
            }
            Some(p) => {
                let url = parse_proxy_url(p)?;
                Ok(ProxyMode::Url {
                    url,
                    no_proxy: config.no_proxy.clone().filter(|s| !s.trim().is_empty()),
                })
            }
        }
    }
}

/// Checks a proxy URL: `http://`, `socks5://` or `socks5h://` with a host.
pub fn parse_proxy_url(text: &str) -> Result<Url, NetError> {
    let url = Url::parse(text.trim())
        .map_err(|e| NetError::BadProxy(format!("{}: {e}", redact_userinfo(text))))?;
    match url.scheme() {
        "http" | "socks5" | "socks5h" => {}
        "https" => {
            return Err(NetError::BadProxy(format!(
                "{}: HTTPS proxies are not supported; use the proxy's http:// address \
                 (the tunnel to the platform is encrypted either way)",
                redact_userinfo(text)
            )));
        }
        other => {
            return Err(NetError::BadProxy(format!(
                "{}: the scheme must be http, socks5 or socks5h, not {other}",
                redact_userinfo(text)
            )));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(NetError::BadProxy(format!(
            "{}: no host",
            redact_userinfo(text)
        )));
    }
    Ok(url)
}

/// A proxy URL for messages: the password (if any) replaced.
fn redact_userinfo(text: &str) -> String {
    match Url::parse(text.trim()) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => text.trim().to_string(),
    }
}

/// Why a network decision or connection failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// `ca_file` cannot be read or holds no certificate.
    #[error("cannot use the CA file {}: {reason}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The proxy setting is not usable.
    #[error("bad proxy setting: {0}")]
    BadProxy(String),
    /// The TLS configuration could not be built.
    #[error("cannot set up secure connections: {0}")]
    Tls(String),
    /// The proxy could not be reached.
    #[error("cannot reach the proxy {proxy}: {reason}")]
    ProxyUnreachable {
        /// The proxy (without its password).
        proxy: String,
        /// Why.
        reason: String,
    },
    /// The proxy refused to open the tunnel.
    #[error("the proxy {proxy} refused the connection to {target}: {reason}")]
    ProxyRefused {
        /// The proxy (without its password).
        proxy: String,
        /// Where the tunnel was to go.
        target: String,
        /// What it answered.
        reason: String,
    },
    /// The server could not be reached directly.
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
}

/// The trust and proxy decisions for every connection to one platform.
#[derive(Clone)]
pub struct Network {
    tls: Arc<ClientConfig>,
    proxy: ProxyMode,
    matcher: Arc<Matcher>,
    ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("proxy", &self.proxy)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl Network {
    /// The decisions a config asks for (`ca_file`, `proxy`, `no_proxy`).
    pub fn from_config(config: &Config) -> Result<Network, NetError> {
        let ca = config
            .ca_file
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        Network::new(ca.as_deref(), ProxyMode::from_config(config)?)
    }

    /// The OS trust store plus the certificates in `ca_file`, and `proxy`.
    pub fn new(ca_file: Option<&Path>, proxy: ProxyMode) -> Result<Network, NetError> {
        let extra = match ca_file {
            Some(p) => read_certificates(p)?,
            None => Vec::new(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // Also the process's default: reqwest is built without a provider of its own, so a
        // client built elsewhere in the process finds this one.
        let _ = rustls::crypto::CryptoProvider::install_default((*provider).clone());
        let verifier =
            rustls_platform_verifier::Verifier::new_with_extra_roots(extra, Arc::clone(&provider))
                .map_err(|e| NetError::Tls(e.to_string()))?;
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| NetError::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        let matcher = match &proxy {
            ProxyMode::System => Matcher::from_system(),
            ProxyMode::Off => Matcher::builder().build(),
            ProxyMode::Url { url, no_proxy } => Matcher::builder()
                .all(url.as_str())
                .no(no_proxy.clone().unwrap_or_default())
                .build(),
        };
        Ok(Network {
            tls: Arc::new(tls),
            proxy,
            matcher: Arc::new(matcher),
            ca_file: ca_file.map(Path::to_path_buf),
        })
    }

    /// The OS trust store, the system's proxy settings.
    pub fn system() -> Result<Network, NetError> {
        Network::new(None, ProxyMode::System)
    }

    /// The rustls configuration every TLS connection uses.
    pub fn tls_config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.tls)
    }

    /// The proxy mode.
    pub fn proxy_mode(&self) -> &ProxyMode {
        &self.proxy
    }

    /// Whether a `ca_file` adds to the OS trust store (for error hints).
    pub fn has_ca_file(&self) -> bool {
        self.ca_file.is_some()
    }

    /// A reqwest client builder with this trust and this proxy decision.
    pub fn http_builder(&self) -> Result<reqwest::ClientBuilder, NetError> {
        let builder = reqwest::Client::builder().use_preconfigured_tls((*self.tls).clone());
        Ok(match &self.proxy {
            // reqwest reads the same environment variables (and, with its
            // `system-proxy` feature, the Windows and macOS settings).
            ProxyMode::System => builder,
            ProxyMode::Off => builder.no_proxy(),
            ProxyMode::Url { url, no_proxy } => {
                let mut p = reqwest::Proxy::all(url.as_str()).map_err(|e| {
                    NetError::BadProxy(format!("{}: {e}", redact_userinfo(url.as_str())))
                })?;
                if let Some(n) = no_proxy {
                    p = p.no_proxy(reqwest::NoProxy::from_string(n));
                }
                builder.proxy(p)
            }
        })
    }

    /// The proxy `target` (an http/https/ws/wss URL) goes through, if any.
    pub fn proxy_for(&self, target: &Url) -> Option<Url> {
        self.intercept(target)
            .and_then(|i| Url::parse(&i.uri().to_string()).ok())
    }

    fn intercept(&self, target: &Url) -> Option<Intercept> {
        let scheme = match target.scheme() {
            "https" | "wss" => "https",
            _ => "http",
        };
        let host = target.host_str()?;
        let port = target.port_or_known_default()?;
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let uri: http::Uri = format!("{scheme}://{host}:{port}/").parse().ok()?;
        self.matcher.intercept(&uri)
    }

    /// Opens a TCP stream to `target`'s host and port: directly, or through the
    /// proxy the decision names (an HTTP `CONNECT` tunnel or SOCKS5). TLS, if
    /// any, is the caller's (over the stream, with [`Network::tls_config`]).
    pub async fn open_stream(&self, target: &Url, limit: Duration) -> Result<TcpStream, NetError> {
        let host = target
            .host_str()
            .ok_or_else(|| NetError::Unreachable(format!("{target}: no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = target
            .port_or_known_default()
            .ok_or_else(|| NetError::Unreachable(format!("{target}: no port")))?;
        let via = self.intercept(target);
        let fut = async {
            match via {
                None => TcpStream::connect((host.as_str(), port))
                    .await
                    .map_err(|e| NetError::Unreachable(format!("{e} ({host}:{port})"))),
                Some(i) => tunnel(&i, &host, port).await,
            }
        };
        match tokio::time::timeout(limit, fut).await {
            Ok(r) => r,
            Err(_) => Err(NetError::Unreachable(format!(
                "no connection within {} s ({host}:{port})",
                limit.as_secs()
            ))),
        }
    }
}

/// Reads every PEM certificate in `path`.
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let fail = |reason: String| NetError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| fail(format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(fail("it holds no PEM certificate".to_string()));
    }
    Ok(certs)
}

/// The proxy of an intercept, for messages (no password).
fn proxy_text(i: &Intercept) -> String {
    let u = i.uri();
    format!(
        "{}://{}",
        u.scheme_str().unwrap_or("http"),
        u.authority()
            .map_or("?", |a| a.as_str().rsplit('@').next().unwrap_or("?"))
    )
}

async fn tunnel(i: &Intercept, host: &str, port: u16) -> Result<TcpStream, NetError> {
    let proxy = proxy_text(i);
    let uri = i.uri();
    let p_host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let scheme = uri.scheme_str().unwrap_or("http");
    let p_port = uri.port_u16().unwrap_or(if scheme.starts_with("socks") {
        1080
    } else {
        80
    });
    let unreachable = |e: std::io::Error| NetError::ProxyUnreachable {
        proxy: proxy.clone(),
        reason: e.to_string(),
    };
    match scheme {
        "http" => {
            let mut s = TcpStream::connect((p_host, p_port))
                .await
                .map_err(unreachable)?;
            http_connect(&mut s, i, &proxy, host, port).await?;
            Ok(s)
        }
        "socks5" | "socks5h" => {
            let proxy_addr = (p_host, p_port);
            // socks5: resolve here; socks5h: the proxy resolves the name.
            let target: tokio_socks::TargetAddr<'_> = if scheme == "socks5" {
                let addr = tokio::net::lookup_host((host, port))
                    .await
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or_else(|| NetError::Unreachable(format!("cannot resolve {host}")))?;
                tokio_socks::TargetAddr::Ip(addr)
            } else {
                tokio_socks::TargetAddr::Domain(host.into(), port)
            };
            let refused = |e: tokio_socks::Error| match e {
                tokio_socks::Error::Io(io) => NetError::ProxyUnreachable {
                    proxy: proxy.clone(),
                    reason: io.to_string(),
                },
                other => NetError::ProxyRefused {
                    proxy: proxy.clone(),
                    target: format!("{host}:{port}"),
                    reason: other.to_string(),
                },
            };
            let stream = match i.raw_auth() {
                Some((u, p)) => {
                    tokio_socks::tcp::Socks5Stream::connect_with_password(proxy_addr, target, u, p)
                        .await
                }
                None => tokio_socks::tcp::Socks5Stream::connect(proxy_addr, target).await,
            }
            .map_err(refused)?;
            Ok(stream.into_inner())
        }
        other => Err(NetError::BadProxy(format!(
            "{proxy}: the scheme {other} is not supported for the socket"
        ))),
    }
}

/// The most a proxy's answer to `CONNECT` may hold before the blank line.
const MAX_CONNECT_ANSWER: usize = 16 << 10;

async fn http_connect(
    s: &mut TcpStream,
    i: &Intercept,
    proxy: &str,
    host: &str,
    port: u16,
) -> Result<(), NetError> {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(auth) = i.basic_auth().and_then(|v| v.to_str().ok()) {
        req.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    req.push_str("\r\n");
    let io_err = |e: std::io::Error| NetError::ProxyUnreachable {
        proxy: proxy.to_string(),
        reason: e.to_string(),
    };
    s.write_all(req.as_bytes()).await.map_err(io_err)?;
    // Read the answer byte by byte up to the blank line: nothing of the tunnel
    // (the server's TLS) may be consumed here.
    let mut answer = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).await.map_err(io_err)?;
        if n == 0 {
            return Err(NetError::ProxyRefused {
                proxy: proxy.to_string(),
                target: authority,
                reason: "it closed the connection".to_string(),
            });
        }
        answer.push(byte[0]);
        if answer.len() > MAX_CONNECT_ANSWER {
            return Err(NetError::ProxyRefused {
                proxy: proxy.to_string(),
                target: authority,
                reason: "its answer is too long".to_string(),
            });
        }
    }
    let text = String::from_utf8_lossy(&answer);
    let status_line = text.lines().next().unwrap_or_default().trim().to_string();
    let code = status_line.split_whitespace().nth(1).unwrap_or_default();
    if code.starts_with('2') {
        Ok(())
    } else {
        Err(NetError::ProxyRefused {
            proxy: proxy.to_string(),
            target: authority,
            reason: crate::sanitize::terminal_line(&status_line).into_owned(),
        })
    }
}

/// A message for a failed TLS handshake: what failed, and the hint to set
/// `ca_file` when the certificate is not trusted.
pub fn tls_failure(detail: &str) -> String {
    let lower = detail.to_ascii_lowercase();
    if lower.contains("unknownissuer")
        || lower.contains("unknown issuer")
        || lower.contains("not trusted")
        || lower.contains("unknown ca")
    {
        format!(
            "the server's certificate is not trusted ({detail}); if your organisation \
             uses its own certificate authority, set ca_file in config.toml to its PEM file"
        )
    } else {
        detail.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_settings_are_read_and_checked() {
        let mut c = Config::default();
        assert_eq!(ProxyMode::from_config(&c).unwrap(), ProxyMode::System);
        c.proxy = Some("none".into());
        assert_eq!(ProxyMode::from_config(&c).unwrap(), ProxyMode::Off);
        c.proxy = Some("http://proxy.corp:3128".into());
        c.no_proxy = Some("localhost,.corp".into());
        assert!(matches!(
            ProxyMode::from_config(&c).unwrap(),
            ProxyMode::Url { no_proxy: Some(n), .. } if n == "localhost,.corp"
        ));
        for bad in ["https://p:443", "ftp://p", "not a url", "http://"] {
            c.proxy = Some(bad.into());
            assert!(ProxyMode::from_config(&c).is_err(), "{bad}");
        }
        c.proxy = Some("ftp://user:hunter2@p".into());
        let e = ProxyMode::from_config(&c).unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn the_decision_covers_http_and_sockets_with_no_proxy_exceptions() {
        let n = Network::new(
            None,
            ProxyMode::Url {
                url: Url::parse("http://127.0.0.1:3128").unwrap(),
                no_proxy: Some("direct.example".into()),
            },
        )
        .unwrap();
        for target in [
            "https://a.example/",
            "wss://a.example/ws/notifications",
            "ws://a.example:8000/",
        ] {
            let via = n.proxy_for(&Url::parse(target).unwrap());
            assert_eq!(
                via.map(|u| u.to_string()).as_deref(),
                Some("http://127.0.0.1:3128/"),
                "{target}"
            );
        }
        assert_eq!(
            n.proxy_for(&Url::parse("wss://direct.example/").unwrap()),
            None
        );
        let off = Network::new(None, ProxyMode::Off).unwrap();
        assert_eq!(
            off.proxy_for(&Url::parse("https://a.example/").unwrap()),
            None
        );
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let e = Network::new(Some(&missing), ProxyMode::Off).unwrap_err();
        assert!(e.to_string().contains("nope.pem"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let e = Network::new(Some(&empty), ProxyMode::Off).unwrap_err();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
    }

    #[test]
    fn untrusted_certificates_get_the_ca_file_hint() {
        let m = tls_failure("invalid peer certificate: UnknownIssuer");
        assert!(m.contains("ca_file"), "{m}");
        assert_eq!(tls_failure("handshake failure"), "handshake failure");
    }
}
