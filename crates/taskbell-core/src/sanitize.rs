//! Text that other people wrote, made safe to print, and secrets kept out of
//! every line TaskBell prints or logs.
//!
//! Titles, contents, real names and server error messages come from other
//! platform users and from servers TaskBell does not control. Printed raw, a
//! chat message could rewrite a reviewer's terminal, its title or clipboard
//! (OSC 52) or hide text behind a bidi override. Everything printed or logged
//! goes through [`terminal_line`] / [`terminal_text`] (human output) or
//! [`json_line`] (JSON lines), which turn every C0 and C1 control character,
//! DEL and every bidi or invisible formatting character into a visible escape
//! such as `\x1b` or `\u{202e}`.
//!
//! [`redact`] removes secrets: every text registered with [`register_secret`]
//! (the token and the password, as soon as they are known), anything shaped
//! like a JWT, `token=` query values, `Authorization`/`Bearer` values and
//! `"password"`/`"access_token"` JSON members. [`SafeMakeWriter`] applies both
//! to every log event, so no `RUST_LOG` setting, whatever a dependency logs at
//! `trace`, can put a token or an escape sequence on the terminal.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::{LazyLock, PoisonError, RwLock};

use regex::Regex;

/// What replaces a secret.
pub const REDACTED: &str = "***";

/// Secrets shorter than this are not registered (they would match ordinary words).
const MIN_SECRET_LEN: usize = 6;
/// At most this many secrets are remembered (oldest forgotten first).
const MAX_SECRETS: usize = 64;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remembers `secret` (a token, a password) so that [`redact`] removes it from
/// every later output. Also registers its JWT signature part on its own.
pub fn register_secret(secret: &str) {
    let secret = secret.trim();
    if secret.len() < MIN_SECRET_LEN {
        return;
    }
    let mut parts = vec![secret.to_string()];
    // A JWT's signature alone is enough to forge nothing, but it is the secret part.
    if let Some(sig) = secret.rsplit('.').next().filter(|s| s.len() >= 16) {
        if sig != secret {
            parts.push(sig.to_string());
        }
    }
    let mut list = SECRETS.write().unwrap_or_else(PoisonError::into_inner);
    for p in parts {
        if !list.contains(&p) {
            if list.len() >= MAX_SECRETS {
                list.remove(0);
            }
            list.push(p);
        }
    }
    // Longest first, so that a secret containing another is replaced whole.
    list.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

static PATTERNS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // A JWT: header.payload.signature, base64url (headers start with `{"` = eyJ).
        (
            r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
            REDACTED,
        ),
        // A token in a query string.
        (r"(?i)([?&](?:access_)?token=)[^&\s#'\x22]+", "${1}***"),
        // An Authorization header value, however it is printed.
        (
            r"(?i)(authorization\x22?\s*[:=]\s*\x22?(?:bearer|basic)?\s*)[^\s\x22,}]+",
            "${1}***",
        ),
        (r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+", "${1}***"),
        // JSON members that hold secrets.
        (
            r#"(?i)(\x22(?:password|access_token|token|refresh_token)\x22\s*:\s*\x22)[^\x22]*"#,
            "${1}***",
        ),
    ]
    .into_iter()
    .filter_map(|(re, with)| Regex::new(re).ok().map(|r| (r, with)))
    .collect()
});

/// `text` with every registered secret and every secret-shaped part replaced by `***`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    {
        let list = SECRETS.read().unwrap_or_else(PoisonError::into_inner);
        for s in list.iter() {
            if out.contains(s.as_str()) {
                out = Cow::Owned(out.replace(s.as_str(), REDACTED));
            }
        }
    }
    for (re, with) in PATTERNS.iter() {
        if let Cow::Owned(s) = re.replace_all(&out, *with) {
            out = Cow::Owned(s);
        }
    }
    out
}

/// Whether `c` must not reach a terminal as it is: C0 and C1 controls, DEL,
/// bidi embeddings/overrides/isolates and marks, and invisible formatting
/// characters that can hide or reorder text.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'              // Arabic letter mark
            | '\u{200b}'..='\u{200f}' // zero-width space/joiners, LRM, RLM
            | '\u{2028}' | '\u{2029}' // line / paragraph separator
            | '\u{202a}'..='\u{202e}' // LRE RLE PDF LRO RLO
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // LRI RLI FSI PDI
            | '\u{feff}'              // BOM / zero-width no-break space
            | '\u{fff9}'..='\u{fffb}' // interlinear annotations
        )
}

fn escape_into(out: &mut String, c: char) {
    let n = u32::from(c);
    if n < 0x80 {
        let _ = write!(out, "\\x{n:02x}");
    } else {
        let _ = write!(out, "\\u{{{n:x}}}");
    }
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe_char(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_unsafe_char(c) && !keep(c) {
            escape_into(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One line for a terminal: every unsafe character escaped, newlines and tabs included.
pub fn terminal_line(text: &str) -> Cow<'_, str> {
    escape(text, |_| false)
}

/// Text for a terminal that may span lines: as [`terminal_line`], but `\n` and
/// `\t` stay (a `\r` does not: it could overwrite the line before it).
pub fn terminal_text(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\n' || c == '\t')
}

/// A serialised JSON text (compact or pretty) made safe for a terminal:
/// serde_json escapes C0 controls inside strings but writes C1 controls, bidi
/// and line separators as they are; these become `\uXXXX` escapes (still valid
/// JSON, the same string decoded). Raw `\n`, `\r` and `\t` can only be
/// whitespace between tokens in serde_json's output and stay.
pub fn json_line(json: &str) -> Cow<'_, str> {
    let unsafe_here = |c: char| is_unsafe_char(c) && !matches!(c, '\n' | '\r' | '\t');
    if !json.chars().any(unsafe_here) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if unsafe_here(c) {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A log line ready for a terminal or a file: secrets redacted, every unsafe
/// character escaped except the final newline.
pub fn log_line(line: &str) -> String {
    let (body, newline) = match line.strip_suffix('\n') {
        Some(b) => (b, "\n"),
        None => (line, ""),
    };
    let redacted = redact(body);
    let mut out = terminal_line(&redacted).into_owned();
    out.push_str(newline);
    out
}

/// An [`io::Write`] that buffers one log event and writes it through
/// [`log_line`] when flushed or dropped (tracing's fmt layer writes each event
/// through a fresh writer, so one writer is one event).
#[derive(Debug)]
pub struct SafeWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write> SafeWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> SafeWriter<W> {
        SafeWriter {
            inner,
            buf: Vec::with_capacity(256),
        }
    }

    fn emit(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.buf);
        let safe = log_line(&text);
        self.buf.clear();
        self.inner.write_all(safe.as_bytes())?;
        self.inner.flush()
    }
}

impl<W: Write> Write for SafeWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.emit()
    }
}

impl<W: Write> Drop for SafeWriter<W> {
    fn drop(&mut self) {
        let _ = self.emit();
    }
}

/// A `tracing_subscriber` writer factory whose every event goes through
/// [`log_line`]: `fmt().with_writer(SafeMakeWriter::stderr())`. Use it with
/// ANSI colours off (they are escapes too, and would be shown as such).
#[derive(Debug, Clone, Copy)]
pub struct SafeMakeWriter {
    to_stdout: bool,
}

impl SafeMakeWriter {
    /// Log events to standard error.
    pub fn stderr() -> SafeMakeWriter {
        SafeMakeWriter { to_stdout: false }
    }

    /// Log events to standard output.
    pub fn stdout() -> SafeMakeWriter {
        SafeMakeWriter { to_stdout: true }
    }
}

/// Standard output or standard error, whichever the [`SafeMakeWriter`] was made for.
#[derive(Debug)]
pub enum StdStream {
    /// Standard output.
    Out(io::Stdout),
    /// Standard error.
    Err(io::Stderr),
}

impl Write for StdStream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            StdStream::Out(s) => s.write(data),
            StdStream::Err(s) => s.write(data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            StdStream::Out(s) => s.flush(),
            StdStream::Err(s) => s.flush(),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SafeMakeWriter {
    type Writer = SafeWriter<StdStream>;

    fn make_writer(&'a self) -> Self::Writer {
        SafeWriter::new(if self.to_stdout {
            StdStream::Out(io::stdout())
        } else {
            StdStream::Err(io::stderr())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_reach_the_terminal_as_visible_text() {
        let osc52 = "hi\u{1b}]52;c;cm0gLXJmIH4=\u{7}there";
        assert_eq!(terminal_line(osc52), "hi\\x1b]52;c;cm0gLXJmIH4=\\x07there");
        let csi = "a\u{9b}2Jb"; // C1 CSI
        assert_eq!(terminal_line(csi), "a\\u{9b}2Jb");
        let bidi = "invoice\u{202e}fdp.exe";
        assert_eq!(terminal_line(bidi), "invoice\\u{202e}fdp.exe");
        assert_eq!(
            terminal_line("a\rb\nc\td\u{7f}"),
            "a\\x0db\\x0ac\\x09d\\x7f"
        );
        assert_eq!(terminal_text("a\rb\nc\td"), "a\\x0db\nc\td");
        assert_eq!(
            terminal_line("zero\u{200b}width\u{2066}"),
            "zero\\u{200b}width\\u{2066}"
        );
    }

    #[test]
    fn plain_text_is_borrowed_untouched() {
        for s in [
            "任务 #42 被驳回",
            "Review: image 1 (图像)",
            "emoji 🔔 ok",
            "",
        ] {
            assert!(matches!(terminal_line(s), Cow::Borrowed(_)), "{s}");
            assert!(matches!(json_line(s), Cow::Borrowed(_)), "{s}");
        }
    }

    #[test]
    fn json_lines_stay_valid_json_and_decode_to_the_same_text() {
        let title = "a\u{1b}[2Jb\u{9b}c\u{202e}d\u{2028}e😀";
        let json =
            serde_json::to_string(&serde_json::json!({ "title": title })).unwrap_or_default();
        let safe = json_line(&json);
        assert!(!safe.chars().any(is_unsafe_char), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap_or_default();
        assert_eq!(back["title"], title);
        // Pretty JSON keeps its layout.
        let pretty = serde_json::to_string_pretty(&serde_json::json!({ "title": title }))
            .unwrap_or_default();
        let safe = json_line(&pretty);
        assert!(safe.contains('\n'));
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap_or_default();
        assert_eq!(back["title"], title);
    }

    #[test]
    fn registered_secrets_and_secret_shapes_are_redacted() {
        register_secret("s3cret-password-xyz");
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.Zm9vYmFyYmF6cXV4cXV1eHh4";
        let cases = [
            (
                "GET /ws/notifications?token=abc.def.ghi HTTP/1.1".to_string(),
                "abc.def.ghi",
            ),
            (format!("Authorization: Bearer {jwt}"), jwt),
            (
                "authorization: \"Bearer opaque-token-1\"".to_string(),
                "opaque-token-1",
            ),
            (
                "{\"username\":\"u\",\"password\":\"hunter2\"}".to_string(),
                "hunter2",
            ),
            (
                format!("token in text {jwt} end"),
                "Zm9vYmFyYmF6cXV4cXV1eHh4",
            ),
            (
                "typed s3cret-password-xyz here".to_string(),
                "s3cret-password-xyz",
            ),
            (
                "{\"access_token\":\"opaque-123456\"}".to_string(),
                "opaque-123456",
            ),
        ];
        for (text, secret) in cases {
            let out = redact(&text);
            assert!(!out.contains(secret), "{text} → {out}");
            assert!(out.contains(REDACTED), "{text} → {out}");
        }
        assert_eq!(redact("nothing secret here"), "nothing secret here");
    }

    #[test]
    fn a_registered_jwt_signature_is_redacted_alone() {
        let jwt = "aaaaaaa.bbbbbbbb.signaturepart0123456789";
        register_secret(jwt);
        let out = redact("sig=signaturepart0123456789 seen");
        assert!(!out.contains("signaturepart0123456789"), "{out}");
    }

    #[test]
    fn the_writer_redacts_and_escapes_each_event() {
        register_secret("writer-secret-token");
        let mut sink = Vec::new();
        {
            let mut w = SafeWriter::new(&mut sink);
            let _ = w.write_all(b"title=\x1b]52;c;ZXZpbA==\x07 token writer-secret-token\n");
        }
        let text = String::from_utf8(sink).unwrap_or_default();
        assert_eq!(text, "title=\\x1b]52;c;ZXZpbA==\\x07 token ***\n");
    }
}
