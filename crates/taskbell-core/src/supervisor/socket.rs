//! Opening and closing the WebSocket: the request (token in the query and as
//! `Authorization: Bearer`), the connect through `net` with the REST client's
//! trust, and the classification of a failed upgrade for the machine
//! ([`ConnectFailure`]).

use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

use crate::engine::connection::{Close, ConnectFailure};
use crate::net::{NetError, Network};
use crate::protocol;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An open socket, split so that reading and writing do not wait for each other.
pub(super) struct Socket {
    sink: SplitSink<Ws, Message>,
    stream: SplitStream<Ws>,
}

impl Socket {
    /// The next message; `None` when the stream ended.
    pub(super) async fn next(&mut self) -> Option<Result<Message, tungstenite::Error>> {
        self.stream.next().await
    }

    /// Sends one text frame.
    pub(super) async fn send(&mut self, text: String) -> Result<(), tungstenite::Error> {
        self.sink.send(Message::text(text)).await
    }

    /// Ends the socket the way the machine asked.
    pub(super) async fn close(mut self, how: Close) {
        match how {
            Close::Normal => {
                let frame = tungstenite::protocol::CloseFrame {
                    code: CloseCode::Normal,
                    reason: "".into(),
                };
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    self.sink.send(Message::Close(Some(frame))),
                )
                .await;
            }
            Close::Quick => {
                let _ = tokio::time::timeout(Duration::from_secs(1), self.sink.close()).await;
            }
            Close::Gone => {}
        }
    }
}

/// Opens the socket to `base` with `token`: directly or through the proxy, then
/// TLS with the same trust as REST.
pub(super) async fn connect(
    base: Url,
    token: String,
    network: Network,
    connect_timeout: Duration,
) -> Result<Socket, ConnectFailure> {
    let req = request(&base, &token)?;
    let mut cfg = WebSocketConfig::default();
    cfg.max_message_size = Some(4 * protocol::MAX_FRAME_BYTES);
    cfg.max_frame_size = Some(4 * protocol::MAX_FRAME_BYTES);
    let stream = match network.open_stream(&base, connect_timeout).await {
        Ok(s) => s,
        Err(e) => {
            return Err(ConnectFailure::Failed {
                reason: e.to_string(),
                retry_after: None,
                unreachable: !matches!(e, NetError::ProxyRefused { .. }),
            });
        }
    };
    let connector = tokio_tungstenite::Connector::Rustls(network.tls_config());
    let fut =
        tokio_tungstenite::client_async_tls_with_config(req, stream, Some(cfg), Some(connector));
    match tokio::time::timeout(connect_timeout, fut).await {
        Err(_) => Err(ConnectFailure::Failed {
            reason: "the server did not answer in time".to_string(),
            retry_after: None,
            unreachable: true,
        }),
        Ok(Ok((ws, _resp))) => {
            let (sink, stream) = ws.split();
            Ok(Socket { sink, stream })
        }
        Ok(Err(e)) => Err(classify_ws_error(e, &token)),
    }
}

fn request(
    base: &Url,
    token: &str,
) -> Result<tungstenite::handshake::client::Request, ConnectFailure> {
    let failed = |reason: String| ConnectFailure::Failed {
        reason,
        retry_after: None,
        unreachable: false,
    };
    let mut url = base
        .join("ws/notifications")
        .map_err(|e| failed(format!("cannot build the socket URL: {e}")))?;
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    url.set_scheme(scheme)
        .map_err(|()| failed("cannot build the socket URL".to_string()))?;
    url.query_pairs_mut().append_pair("token", token);
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| failed(format!("bad socket URL: {}", redact(&e.to_string(), token))))?;
    if let Ok(v) = format!("Bearer {token}").parse() {
        req.headers_mut().insert(http::header::AUTHORIZATION, v);
    }
    Ok(req)
}

fn redact(text: &str, token: &str) -> String {
    if token.is_empty() {
        text.to_string()
    } else {
        text.replace(token, "***")
    }
}

fn classify_ws_error(e: tungstenite::Error, token: &str) -> ConnectFailure {
    use tungstenite::Error as E;
    match e {
        E::Http(resp) => {
            let status = resp.status().as_u16();
            let retry_after = crate::api::parse_retry_after(resp.headers());
            let body = resp
                .body()
                .as_ref()
                .map(|b| {
                    String::from_utf8_lossy(b)
                        .chars()
                        .take(200)
                        .collect::<String>()
                })
                .unwrap_or_default();
            match status {
                401 => ConnectFailure::Unauthorized(format!(
                    "the server refused the token (HTTP 401) {body}"
                )),
                403 => ConnectFailure::Forbidden(if body.is_empty() {
                    "HTTP 403".to_string()
                } else {
                    body
                }),
                429 => ConnectFailure::Failed {
                    reason: "the server is rate limiting connections (HTTP 429)".to_string(),
                    retry_after,
                    unreachable: false,
                },
                _ => ConnectFailure::Failed {
                    reason: format!("the server refused the socket (HTTP {status})"),
                    retry_after,
                    unreachable: false,
                },
            }
        }
        E::Io(io) => ConnectFailure::Failed {
            reason: format!("cannot reach the server: {io}"),
            retry_after: None,
            unreachable: true,
        },
        E::Tls(t) => ConnectFailure::Failed {
            reason: format!(
                "secure connection failed: {}",
                crate::net::tls_failure(&t.to_string())
            ),
            retry_after: None,
            unreachable: false,
        },
        E::Url(u) => ConnectFailure::Failed {
            reason: format!("bad socket URL: {}", redact(&u.to_string(), token)),
            retry_after: None,
            unreachable: false,
        },
        other => ConnectFailure::Failed {
            reason: format!("socket failed: {}", redact(&other.to_string(), token)),
            retry_after: None,
            unreachable: false,
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn tokens_are_redacted_from_socket_errors() {
        assert_eq!(
            redact("ws://h/ws?token=abc.def", "abc.def"),
            "ws://h/ws?token=***"
        );
        assert_eq!(redact("nothing", ""), "nothing");
    }

    fn http_error(status: u16, retry_after: Option<&str>) -> tungstenite::Error {
        let mut b = http::Response::builder().status(status);
        if let Some(r) = retry_after {
            b = b.header("Retry-After", r);
        }
        tungstenite::Error::Http(Box::new(b.body(Some(b"nope".to_vec())).unwrap()))
    }

    #[test]
    fn upgrade_refusals_are_classified() {
        assert!(matches!(
            classify_ws_error(http_error(401, None), "t"),
            ConnectFailure::Unauthorized(_)
        ));
        assert!(matches!(
            classify_ws_error(http_error(403, None), "t"),
            ConnectFailure::Forbidden(r) if r == "nope"
        ));
        assert!(matches!(
            classify_ws_error(http_error(429, Some("7")), "t"),
            ConnectFailure::Failed { retry_after: Some(d), .. } if d == Duration::from_secs(7)
        ));
        assert!(matches!(
            classify_ws_error(http_error(502, None), "t"),
            ConnectFailure::Failed {
                retry_after: None,
                unreachable: false,
                ..
            }
        ));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(matches!(
            classify_ws_error(tungstenite::Error::Io(io), "t"),
            ConnectFailure::Failed {
                unreachable: true,
                ..
            }
        ));
    }

    #[test]
    fn the_request_carries_the_token_in_the_query_and_the_header() {
        let base = Url::parse("https://annotate.example.com/").unwrap();
        let req = request(&base, "tok").unwrap();
        assert_eq!(
            req.uri().to_string(),
            "wss://annotate.example.com/ws/notifications?token=tok"
        );
        assert_eq!(req.headers()[http::header::AUTHORIZATION], "Bearer tok");
    }
}
