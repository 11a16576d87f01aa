//! The local link between the tray process and the window process (and a second
//! launch): its messages and their framing. Each frame is a 4-byte big-endian length and
//! that many bytes of JSON; a frame over [`MAX_FRAME`] is refused before it is read, so
//! a confused or hostile peer cannot make either side allocate without bound.
//!
//! The conversation (the window process is started by the tray, with a secret token in
//! its environment):
//!
//! ```text
//! windows → tray  Hello { token }                 first; anything else, or a wrong token, closes
//! tray → windows  Welcome
//! tray → windows  Open { kind, lang } / Close { kind } / Event { name, payload }
//! windows → tray  Opened { kind }                 the window of an Open exists
//! windows → tray  Call { id, cmd, args }          a window's command (already allowed by its
//! tray → windows  Reply { id, ok | err }          capability) and its answer
//! windows → tray  Idle                            the last window closed; may I go?
//! tray → windows  Quit                            yes (no Open is on its way), or "Quit" clicked
//! second launch → tray  Activate                  then it exits; the tray opens a window
//! ```

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::model::WindowKind;

/// The largest frame either side reads: the history (up to 50,000 rows) fits many times.
pub const MAX_FRAME: usize = 64 << 20;

/// The environment variable that carries the window process's token.
pub const TOKEN_ENV: &str = "TASKBELL_WINDOWS_TOKEN";

/// What the window process (or a second launch) says to the tray.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ToTray {
    /// The window process introduces itself with the token it was started with.
    Hello {
        /// The token from [`TOKEN_ENV`].
        token: String,
    },
    /// A second launch: bring up a window, then it leaves.
    Activate,
    /// The window of an [`ToWindows::Open`] exists now.
    Opened {
        /// Which window.
        kind: WindowKind,
    },
    /// A window's command, to be answered with [`ToWindows::Reply`] of the same `id`.
    Call {
        /// Pairs the reply with the call.
        id: u64,
        /// The command's name.
        cmd: String,
        /// Its arguments (a JSON object).
        args: Value,
    },
    /// The last window closed: the window process asks whether it may leave.
    Idle,
}

/// What the tray says to the window process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ToWindows {
    /// The token was right.
    Welcome,
    /// Show (create or bring up) the window of `kind` in the language tagged `lang`.
    Open {
        /// Which window.
        kind: WindowKind,
        /// The language tag (`Lang::as_tag`).
        lang: String,
    },
    /// Close the window of `kind` if it is open.
    Close {
        /// Which window.
        kind: WindowKind,
    },
    /// Tell every window `name` with `payload`.
    Event {
        /// A `taskbell://…` event name.
        name: String,
        /// Its JSON payload.
        payload: Value,
    },
    /// The answer to [`ToTray::Call`] `id`: `ok`, or the serialised `CmdError` in `err`.
    Reply {
        /// The call's id.
        id: u64,
        /// The command's JSON result.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ok: Option<Value>,
        /// The command's error (`{kind, message, field}`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        err: Option<Value>,
    },
    /// Leave now.
    Quit,
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    /// The link failed.
    #[error("local link: {0}")]
    Io(#[from] std::io::Error),
    /// A frame announced more than [`MAX_FRAME`] bytes.
    #[error("local link: a frame of {0} bytes is over the limit of {MAX_FRAME}")]
    TooLarge(usize),
    /// A frame was not a message this side knows.
    #[error("local link: a malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Writes `msg` as one frame.
pub async fn write<W: AsyncWrite + Unpin, M: Serialize>(
    w: &mut W,
    msg: &M,
) -> Result<(), IpcError> {
    let body = serde_json::to_vec(msg)?;
    if body.len() > MAX_FRAME {
        return Err(IpcError::TooLarge(body.len()));
    }
    let len = u32::try_from(body.len()).map_err(|_| IpcError::TooLarge(body.len()))?;
    w.write_all(&len.to_be_bytes()).await?;
    w.write_all(&body).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame; `None` when the peer closed the link between frames.
pub async fn read<R: AsyncRead + Unpin, M: DeserializeOwned>(
    r: &mut R,
) -> Result<Option<M>, IpcError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(IpcError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(Some(serde_json::from_slice(&body)?))
}

/// Whether `given` is `expected`, in time that does not depend on where they differ.
pub fn token_matches(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    }

    #[test]
    fn messages_round_trip_through_frames() {
        rt().block_on(async {
            let (mut a, mut b) = tokio::io::duplex(1024);
            let sent = vec![
                ToTray::Hello { token: "t".into() },
                ToTray::Call {
                    id: 7,
                    cmd: "mark_read".into(),
                    args: serde_json::json!({"keys": ["k"]}),
                },
                ToTray::Opened {
                    kind: WindowKind::Center,
                },
                ToTray::Idle,
            ];
            for m in &sent {
                write(&mut a, m).await.expect("write");
            }
            drop(a);
            let mut got = Vec::new();
            while let Some(m) = read::<_, ToTray>(&mut b).await.expect("read") {
                got.push(m);
            }
            assert_eq!(got, sent);
        });
    }

    #[test]
    fn a_reply_carries_either_its_answer_or_its_error() {
        let ok = serde_json::to_value(ToWindows::Reply {
            id: 1,
            ok: Some(Value::Null),
            err: None,
        })
        .expect("json");
        assert_eq!(ok, serde_json::json!({"t": "reply", "id": 1, "ok": null}));
        let open: ToWindows =
            serde_json::from_str(r#"{"t":"open","kind":"center","lang":"en"}"#).expect("open");
        assert_eq!(
            open,
            ToWindows::Open {
                kind: WindowKind::Center,
                lang: "en".into()
            }
        );
    }

    #[test]
    fn oversized_truncated_and_malformed_frames_are_errors_not_allocations() {
        rt().block_on(async {
            // A length over the limit is refused before any body is read.
            let mut huge: &[u8] = &(MAX_FRAME as u32 + 1).to_be_bytes();
            let e = read::<_, ToTray>(&mut huge).await.expect_err("too large");
            assert!(
                matches!(e, IpcError::TooLarge(n) if n == MAX_FRAME + 1),
                "{e}"
            );
            // A body shorter than its length is an I/O error, not a message.
            let mut short: &[u8] = &[0, 0, 0, 9, b'{'];
            assert!(matches!(
                read::<_, ToTray>(&mut short).await,
                Err(IpcError::Io(_))
            ));
            // Valid JSON that is no message, and JSON that is not JSON.
            for body in [&br#"{"t":"format_disk"}"#[..], b"not json"] {
                let mut frame = (body.len() as u32).to_be_bytes().to_vec();
                frame.extend_from_slice(body);
                let e = read::<_, ToTray>(&mut &frame[..])
                    .await
                    .expect_err("malformed");
                assert!(matches!(e, IpcError::Malformed(_)), "{e}");
            }
            // Nothing at all is a clean end.
            let mut empty: &[u8] = &[];
            assert!(read::<_, ToTray>(&mut empty).await.expect("eof").is_none());
        });
    }

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abd", "abc"));
        assert!(!token_matches("ab", "abc"));
        assert!(!token_matches("", "abc"));
    }
}
