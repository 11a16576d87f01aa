//! Wire types of the platform contract (`shared/protocol.md` §2 and §3) and their
//! lenient decoding. Pure: no I/O, no clock except in [`decode`] (which reads the
//! wall clock only to stamp notifications that carry no timestamp; use
//! [`decode_at`] to inject it).
//!
//! Leniency rules, all from protocol.md:
//! - ids may be JSON numbers or strings; they become opaque `String`s;
//! - timestamps may be integer seconds (< 10^11), integer milliseconds,
//!   ISO-8601 / RFC 3339 strings or `"YYYY-MM-DD HH:MM:SS"` strings
//!   (see [`parse_timestamp_ms`]);
//! - `task_id` may sit at the top level or inside `data`;
//! - a missing `priority`, or one we do not know, means [`Priority::Normal`];
//! - a notification without `id` gets a stable content key
//!   ([`Notification::key`]) so it can still be deduplicated;
//! - chat frames (`group`, `private`) become notifications too;
//! - a `read` frame *(ours, optional)* lists ids marked read elsewhere; ids that
//!   are neither strings nor numbers are skipped, at most [`MAX_READ_IDS`] kept.
//!
//! Everything else (not JSON, not an object, unknown `type`, a missing or
//! mistyped field, a frame over [`MAX_FRAME_BYTES`]) is a [`DecodeError`] with a
//! message that says what was wrong. Decoding never panics.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// The largest frame we accept, in bytes (protocol.md §3: a server must not send
/// frames over 1 MiB).
pub const MAX_FRAME_BYTES: usize = 1 << 20;

/// A notification title is cut to this many characters (with `…`) when decoded,
/// so that neither the history nor a toast holds more.
pub const MAX_TITLE_CHARS: usize = 300;
/// A notification content is cut to this many characters (with `…`) when decoded.
pub const MAX_CONTENT_CHARS: usize = 4_000;
/// A notification's `data` object larger than this (serialised) keeps only its
/// short scalar members.
pub const MAX_DATA_BYTES: usize = 8 << 10;
/// The longest scalar member kept from an oversized `data` object, in bytes.
const MAX_DATA_VALUE_BYTES: usize = 1 << 10;

/// `s` cut to at most `max` characters, the last of them `…` when it was cut.
pub fn truncate_chars(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => std::borrow::Cow::Borrowed(s),
        Some(_) => {
            let keep = max.saturating_sub(1);
            let end = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
            std::borrow::Cow::Owned(format!("{}…", &s[..end]))
        }
    }
}

/// Keeps an oversized `data` object within [`MAX_DATA_BYTES`]: only members
/// that are short scalars stay (ids, names, numbers).
fn bound_data(data: &mut Map<String, Value>) {
    let size = serde_json::to_vec(&*data).map_or(usize::MAX, |v| v.len());
    if size <= MAX_DATA_BYTES {
        return;
    }
    data.retain(|k, v| {
        k.len() <= 64
            && match v {
                Value::String(s) => s.len() <= MAX_DATA_VALUE_BYTES,
                Value::Number(_) | Value::Bool(_) | Value::Null => true,
                Value::Array(_) | Value::Object(_) => false,
            }
    });
    // Still too large (many short members): keep the first ones that fit.
    let mut total = 2usize;
    data.retain(|k, v| {
        total += k.len() + v.to_string().len() + 4;
        total <= MAX_DATA_BYTES
    });
}

/// A `read` frame's ids beyond this many are ignored.
pub const MAX_READ_IDS: usize = 10_000;

/// Integers below this are seconds since the epoch, at or above it milliseconds
/// (protocol.md §1: "integer < 10^11 is seconds").
pub const SECONDS_LIMIT: i64 = 100_000_000_000;

/// How much of an offending value an error message quotes, in characters.
const QUOTE_CHARS: usize = 60;

/// Why a frame could not be decoded. The message names the problem and, where
/// there is one, the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame is larger than [`MAX_FRAME_BYTES`].
    #[error("frame too large: {len} bytes (the limit is {max} bytes)")]
    TooLarge {
        /// Size of the frame in bytes.
        len: usize,
        /// The limit, [`MAX_FRAME_BYTES`].
        max: usize,
    },
    /// A binary frame that is not UTF-8 text.
    #[error("frame is not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The text is not JSON (or nests deeper than the JSON parser allows).
    #[error("frame is not valid JSON: {0}")]
    NotJson(String),
    /// Valid JSON, but not an object.
    #[error("frame is JSON {found}, expected an object")]
    NotObject {
        /// What it was instead ("an array", "a string", ...).
        found: &'static str,
    },
    /// A field that this frame type needs is absent or null.
    #[error("missing field `{field}` in a `{frame_type}` frame")]
    MissingField {
        /// The frame's `type` (or "unknown" when `type` itself is missing).
        frame_type: String,
        /// The missing field.
        field: &'static str,
    },
    /// A field has a JSON type we cannot use.
    #[error("field `{field}` should be {expected}, found {found}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it should have been.
        expected: &'static str,
        /// What it was.
        found: &'static str,
    },
    /// A timestamp string or number we cannot read.
    #[error("field `{field}` is not a timestamp we understand: {value}")]
    BadTimestamp {
        /// The field.
        field: &'static str,
        /// The offending value (shortened).
        value: String,
    },
    /// The `type` is not one protocol.md lists.
    #[error("unknown frame type \"{0}\"")]
    UnknownType(String),
}

/// A user's role on the platform (protocol.md §2). Serialised lowercase.
///
/// Decoding is case-insensitive; a role we do not know decodes as
/// [`Role::Annotator`], the least privileged one (so the summary then only asks
/// for the caller's own tasks), rather than failing the sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Labels tasks and submits them.
    Annotator,
    /// Approves or rejects submitted tasks.
    Reviewer,
    /// A reviewer with more rights.
    Admin,
}

impl Role {
    /// Parses a role name case-insensitively; unknown names give `Annotator`.
    pub fn parse(s: &str) -> Role {
        match s.trim().to_ascii_lowercase().as_str() {
            "reviewer" => Role::Reviewer,
            "admin" | "administrator" => Role::Admin,
            _ => Role::Annotator,
        }
    }

    /// The wire name ("annotator", "reviewer", "admin").
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Annotator => "annotator",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }

    /// Whether this role reviews tasks (reviewer or admin).
    pub fn reviews(self) -> bool {
        matches!(self, Role::Reviewer | Role::Admin)
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Ok(match v {
            Value::String(s) => Role::parse(&s),
            _ => Role::Annotator,
        })
    }
}

/// A platform user (protocol.md §2 `User`), decoded leniently: ids may be
/// numbers or strings, a missing `real_name` falls back to `username`, missing
/// `project_ids` is empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Opaque id.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Display name (falls back to `username`).
    pub real_name: String,
    /// Role.
    pub role: Role,
    /// Projects the user belongs to (opaque ids).
    pub project_ids: Vec<String>,
}

impl<'de> Deserialize<'de> for User {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        User::from_value(&v).map_err(serde::de::Error::custom)
    }
}

impl User {
    /// Decodes a `User` object leniently (see the type docs).
    pub fn from_value(v: &Value) -> Result<User, DecodeError> {
        let obj = as_object(v)?;
        let id = req_id(obj, "user", "id")?;
        let username = opt_text(obj, "username")?.unwrap_or_default();
        let real_name = opt_text(obj, "real_name")?
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| username.clone());
        let role = match obj.get("role") {
            Some(Value::String(s)) => Role::parse(s),
            _ => Role::Annotator,
        };
        let project_ids = match obj.get("project_ids") {
            Some(Value::Array(items)) => items.iter().filter_map(id_string).collect(),
            Some(other) => id_string(other).into_iter().collect(),
            None => Vec::new(),
        };
        Ok(User {
            id,
            username,
            real_name,
            role,
            project_ids,
        })
    }
}

/// A task (protocol.md §2 `Task`), decoded leniently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Task {
    /// Opaque id.
    pub id: String,
    /// Title (empty when the server sent none).
    pub title: String,
    /// Status as sent, lowercased (`in_progress`, `rejected`, `submitted`, `approved`, ...).
    pub status: String,
    /// Project id.
    pub project_id: Option<String>,
    /// Assignee's user id.
    pub assignee_id: Option<String>,
    /// Last update, ms since the epoch (None when absent or unreadable).
    pub updated_at: Option<i64>,
    /// The reviewer's comment, if any.
    pub review_comment: Option<String>,
    /// Deadline as sent (a date or timestamp, shown as text).
    pub deadline: Option<String>,
}

impl<'de> Deserialize<'de> for Task {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Task::from_value(&v).map_err(serde::de::Error::custom)
    }
}

impl Task {
    /// Decodes a `Task` object leniently.
    pub fn from_value(v: &Value) -> Result<Task, DecodeError> {
        let obj = as_object(v)?;
        Ok(Task {
            id: req_id(obj, "task", "id")?,
            title: opt_text(obj, "title")?.unwrap_or_default(),
            status: opt_text(obj, "status")?
                .map(|s| s.trim().to_ascii_lowercase())
                .unwrap_or_default(),
            project_id: obj.get("project_id").and_then(id_string),
            assignee_id: obj.get("assignee_id").and_then(id_string),
            updated_at: obj.get("updated_at").and_then(parse_timestamp_ms),
            review_comment: opt_text(obj, "review_comment")?,
            deadline: obj.get("deadline").and_then(id_string),
        })
    }
}

/// An annotator's request to skip a task (protocol.md §2 `SkipRequest`),
/// decoded leniently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkipRequest {
    /// Opaque id.
    pub id: String,
    /// The task's id.
    pub task_id: Option<String>,
    /// The task's title (empty when absent).
    pub task_title: String,
    /// Who asked: a user id, or a name when the server sent a user object.
    pub requested_by: Option<String>,
    /// The annotator's reason (empty when absent).
    pub reason: String,
    /// Status, lowercased (`pending`, ...).
    pub status: String,
    /// When it was made, ms since the epoch.
    pub created_at: Option<i64>,
}

impl<'de> Deserialize<'de> for SkipRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        SkipRequest::from_value(&v).map_err(serde::de::Error::custom)
    }
}

impl SkipRequest {
    /// Decodes a `SkipRequest` object leniently.
    pub fn from_value(v: &Value) -> Result<SkipRequest, DecodeError> {
        let obj = as_object(v)?;
        let requested_by = match obj.get("requested_by") {
            Some(Value::Object(u)) => ["real_name", "username", "id"]
                .iter()
                .find_map(|k| u.get(*k).and_then(id_string)),
            Some(other) => id_string(other),
            None => None,
        };
        Ok(SkipRequest {
            id: req_id(obj, "skip_request", "id")?,
            task_id: obj.get("task_id").and_then(id_string),
            task_title: opt_text(obj, "task_title")?.unwrap_or_default(),
            requested_by,
            reason: opt_text(obj, "reason")?.unwrap_or_default(),
            status: opt_text(obj, "status")?
                .map(|s| s.trim().to_ascii_lowercase())
                .unwrap_or_default(),
            created_at: obj.get("created_at").and_then(parse_timestamp_ms),
        })
    }
}

/// A notification's priority. Missing or unknown values mean `Normal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Low.
    Low,
    /// Normal (the default).
    #[default]
    Normal,
    /// High.
    High,
    /// Urgent.
    Urgent,
}

impl Priority {
    /// Parses case-insensitively; unknown → `Normal`.
    pub fn parse(s: &str) -> Priority {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" => Priority::Low,
            "high" => Priority::High,
            "urgent" | "critical" => Priority::Urgent,
            _ => Priority::Normal,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    /// Reads a JSON value leniently: strings are parsed, anything else is `Normal`.
    fn from_json(v: Option<&Value>) -> Priority {
        match v {
            Some(Value::String(s)) => Priority::parse(s),
            _ => Priority::Normal,
        }
    }
}

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Ok(Priority::from_json(Some(&v)))
    }
}

/// What a notification is about: the frame's `type`.
///
/// Serialised as its wire name (`"task_reviewed"`, `"group"`, ...; `Other`
/// as its own string).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NotificationKind {
    /// `task_reviewed`: a reviewer approved or rejected your task.
    TaskReviewed,
    /// `task_submitted`: a task waits for review.
    TaskSubmitted,
    /// `task_assigned`: a task was assigned to you.
    TaskAssigned,
    /// `skip_requested`: an annotator asks to skip a task.
    SkipRequested,
    /// `mention`: you were @-mentioned.
    Mention,
    /// `system`: maintenance, announcements.
    System,
    /// `test`: a test notification.
    Test,
    /// `group`: a group chat message.
    GroupMessage,
    /// `private`: a private chat message.
    PrivateMessage,
    /// A type protocol.md does not list. [`decode`] rejects these on the
    /// socket; [`Notification::from_value`] keeps them (catch-up items are
    /// notifications by construction).
    Other(String),
}

impl NotificationKind {
    /// Maps a wire name (case-insensitive) to a kind; unknown → `Other`.
    /// Returns `None` for the heartbeat types `ping`/`pong`, which are not
    /// notifications.
    pub fn parse(s: &str) -> Option<NotificationKind> {
        let lower = s.trim().to_ascii_lowercase();
        Some(match lower.as_str() {
            "task_reviewed" => NotificationKind::TaskReviewed,
            "task_submitted" => NotificationKind::TaskSubmitted,
            "task_assigned" => NotificationKind::TaskAssigned,
            "skip_requested" => NotificationKind::SkipRequested,
            "mention" => NotificationKind::Mention,
            "system" => NotificationKind::System,
            "test" => NotificationKind::Test,
            "group" => NotificationKind::GroupMessage,
            "private" => NotificationKind::PrivateMessage,
            "ping" | "pong" => return None,
            _ => NotificationKind::Other(s.trim().to_owned()),
        })
    }

    /// The group the notification center filters by: "reviews" (a verdict or an
    /// assignment), "submissions" (work waiting for a reviewer), "mentions", "chat" or
    /// "system" (everything else).
    pub fn group(&self) -> &'static str {
        match self {
            NotificationKind::TaskReviewed | NotificationKind::TaskAssigned => "reviews",
            NotificationKind::TaskSubmitted | NotificationKind::SkipRequested => "submissions",
            NotificationKind::Mention => "mentions",
            NotificationKind::GroupMessage | NotificationKind::PrivateMessage => "chat",
            NotificationKind::System | NotificationKind::Test | NotificationKind::Other(_) => {
                "system"
            }
        }
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            NotificationKind::TaskReviewed => "task_reviewed",
            NotificationKind::TaskSubmitted => "task_submitted",
            NotificationKind::TaskAssigned => "task_assigned",
            NotificationKind::SkipRequested => "skip_requested",
            NotificationKind::Mention => "mention",
            NotificationKind::System => "system",
            NotificationKind::Test => "test",
            NotificationKind::GroupMessage => "group",
            NotificationKind::PrivateMessage => "private",
            NotificationKind::Other(s) => s,
        }
    }

    /// Whether this is a chat message (`group` or `private`).
    pub fn is_chat(&self) -> bool {
        matches!(
            self,
            NotificationKind::GroupMessage | NotificationKind::PrivateMessage
        )
    }
}

impl fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for NotificationKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for NotificationKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(NotificationKind::parse(&s).unwrap_or(NotificationKind::Other(s)))
    }
}

/// One platform event to show the user: a notification frame or a chat
/// message, normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The server's id, when it sent one.
    pub id: Option<String>,
    /// The dedupe key: the id when there is one, else `"content:"` followed
    /// by a stable hash of kind, title, content, task id and the timestamp as
    /// sent (see [`content_key`]).
    pub key: String,
    /// What it is about.
    pub kind: NotificationKind,
    /// Title. For chat frames a generated English title ("New message in
    /// group 7"); delivery localises it.
    pub title: String,
    /// Body text.
    pub content: String,
    /// Task it concerns (top-level `task_id` or `data.task_id`).
    pub task_id: Option<String>,
    /// Project it concerns (top-level or in `data`).
    pub project_id: Option<String>,
    /// Priority (default normal).
    pub priority: Priority,
    /// When it happened, ms since the epoch (the receive time when the
    /// frame had no timestamp).
    pub timestamp_ms: i64,
    /// The frame's `data` object (always an object; chat frames put
    /// `group_id` / `from_user_id` here).
    pub data: Value,
}

impl Notification {
    /// Decodes one notification object as found in a catch-up list
    /// (`GET /api/notifications`): like a socket frame, but a `type` we do
    /// not know is kept as [`NotificationKind::Other`], and a missing `type`
    /// is `Other("notification")`. `now_ms` stamps items without a
    /// timestamp.
    pub fn from_value(v: &Value, now_ms: i64) -> Result<Notification, DecodeError> {
        let obj = as_object(v)?;
        let kind = match obj.get("type") {
            None | Some(Value::Null) => NotificationKind::Other("notification".to_owned()),
            Some(Value::String(s)) => match NotificationKind::parse(s) {
                Some(k) => k,
                None => return Err(DecodeError::UnknownType(quote(s))),
            },
            Some(other) => {
                return Err(DecodeError::WrongType {
                    field: "type",
                    expected: "a string",
                    found: json_kind(other),
                });
            }
        };
        notification_from_object(obj, kind, now_ms)
    }
}

/// A decoded server → client frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Inbound {
    /// Answer to our heartbeat ping.
    Pong {
        /// The client timestamp we sent, echoed (ms).
        timestamp: i64,
        /// The server's clock (ms), if sent.
        server_time: Option<i64>,
    },
    /// A server heartbeat; answer with [`Outbound::Pong`].
    Ping {
        /// The server's timestamp, if sent (echo it back).
        timestamp: Option<i64>,
    },
    /// A notification or chat message.
    Notification(Notification),
    /// *(ours, optional)* These notifications were marked read elsewhere (another
    /// client of the same account): mark them read and withdraw their toasts.
    Read {
        /// Notification ids (opaque strings).
        ids: Vec<String>,
    },
}

/// A client → server frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// Our heartbeat (protocol.md §3).
    Ping {
        /// Our wall clock, ms since the epoch.
        timestamp: i64,
        /// The user's id. Sent as a JSON number when it is a plain decimal
        /// integer (as servers that use numeric ids send it), else as a string.
        user_id: String,
        /// The user's name.
        username: String,
    },
    /// Answer to a server ping, echoing its timestamp.
    Pong {
        /// The echoed timestamp.
        timestamp: i64,
    },
    /// Confirms that notifications were displayed *(ours, optional)*.
    Ack {
        /// Notification ids.
        ids: Vec<String>,
    },
}

impl Outbound {
    /// Encodes the frame as JSON text.
    pub fn to_json(&self) -> String {
        let v = match self {
            Outbound::Ping {
                timestamp,
                user_id,
                username,
            } => serde_json::json!({
                "type": "ping",
                "timestamp": timestamp,
                "user_id": id_to_wire(user_id),
                "username": username,
            }),
            Outbound::Pong { timestamp } => serde_json::json!({
                "type": "pong",
                "timestamp": timestamp,
            }),
            Outbound::Ack { ids } => serde_json::json!({
                "type": "ack",
                "ids": ids,
            }),
        };
        v.to_string()
    }
}

/// A numeric-looking id goes out as a number, anything else as a string.
fn id_to_wire(id: &str) -> Value {
    let canonical = !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && (id == "0" || !id.starts_with('0'));
    match id.parse::<i64>() {
        Ok(n) if canonical => Value::from(n),
        _ => Value::from(id),
    }
}

/// Decodes one text frame, stamping timestamp-less notifications with the
/// current wall clock. See [`decode_at`].
pub fn decode(text: &str) -> Result<Inbound, DecodeError> {
    decode_at(text, now_ms())
}

/// Decodes one binary frame: it must be UTF-8 text, then as [`decode`].
pub fn decode_bytes(bytes: &[u8]) -> Result<Inbound, DecodeError> {
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: MAX_FRAME_BYTES,
        });
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => decode(text),
        Err(e) => Err(DecodeError::NotUtf8 {
            offset: e.valid_up_to(),
        }),
    }
}

/// Decodes one text frame; `now_ms` is used as the timestamp of
/// notifications that carry none. Pure.
pub fn decode_at(text: &str, now_ms: i64) -> Result<Inbound, DecodeError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(DecodeError::TooLarge {
            len: text.len(),
            max: MAX_FRAME_BYTES,
        });
    }
    // serde_json limits nesting to 128 levels, so hostile nesting is an
    // error here, not a stack overflow.
    let value: Value =
        serde_json::from_str(text).map_err(|e| DecodeError::NotJson(e.to_string()))?;
    decode_value(&value, now_ms)
}

/// Decodes an already parsed frame (see [`decode_at`]).
pub fn decode_value(value: &Value, now_ms: i64) -> Result<Inbound, DecodeError> {
    let obj = as_object(value)?;
    let frame_type = match obj.get("type") {
        Some(Value::String(s)) => s.trim().to_ascii_lowercase(),
        None | Some(Value::Null) => {
            return Err(DecodeError::MissingField {
                frame_type: "unknown".to_owned(),
                field: "type",
            });
        }
        Some(other) => {
            return Err(DecodeError::WrongType {
                field: "type",
                expected: "a string",
                found: json_kind(other),
            });
        }
    };
    match frame_type.as_str() {
        "pong" => {
            let timestamp = match obj.get("timestamp") {
                None | Some(Value::Null) => {
                    return Err(DecodeError::MissingField {
                        frame_type: "pong".to_owned(),
                        field: "timestamp",
                    });
                }
                Some(v) => int_value(v).ok_or_else(|| DecodeError::BadTimestamp {
                    field: "timestamp",
                    value: quote(&v.to_string()),
                })?,
            };
            let server_time = obj.get("server_time").and_then(parse_timestamp_ms);
            Ok(Inbound::Pong {
                timestamp,
                server_time,
            })
        }
        "ping" => Ok(Inbound::Ping {
            timestamp: obj.get("timestamp").and_then(int_value),
        }),
        "read" => match obj.get("ids") {
            None | Some(Value::Null) => Err(DecodeError::MissingField {
                frame_type: "read".to_owned(),
                field: "ids",
            }),
            Some(Value::Array(items)) => Ok(Inbound::Read {
                ids: items
                    .iter()
                    .filter_map(id_string)
                    .take(MAX_READ_IDS)
                    .collect(),
            }),
            Some(other) => Err(DecodeError::WrongType {
                field: "ids",
                expected: "an array of ids",
                found: json_kind(other),
            }),
        },
        _ => match NotificationKind::parse(&frame_type) {
            Some(NotificationKind::Other(_)) | None => {
                let raw = obj.get("type").and_then(Value::as_str).unwrap_or_default();
                Err(DecodeError::UnknownType(quote(raw)))
            }
            Some(kind) => notification_from_object(obj, kind, now_ms).map(Inbound::Notification),
        },
    }
}

/// Builds a notification from a frame object whose kind is known.
fn notification_from_object(
    obj: &Map<String, Value>,
    kind: NotificationKind,
    now_ms: i64,
) -> Result<Notification, DecodeError> {
    let id = match obj.get("id") {
        None | Some(Value::Null) => None,
        Some(v) => match id_string(v) {
            Some(s) if !s.trim().is_empty() => Some(s),
            Some(_) => None,
            None => {
                return Err(DecodeError::WrongType {
                    field: "id",
                    expected: "a number or a string",
                    found: json_kind(v),
                });
            }
        },
    };

    let mut data = match obj.get("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err(DecodeError::WrongType {
                field: "data",
                expected: "an object",
                found: json_kind(other),
            });
        }
    };

    let content = opt_text(obj, "content")?.unwrap_or_default();
    let title = if kind.is_chat() {
        let field = if kind == NotificationKind::GroupMessage {
            "group_id"
        } else {
            "from_user_id"
        };
        let who = obj
            .get(field)
            .or_else(|| data.get(field))
            .and_then(id_string);
        let who = match who {
            Some(w) => w,
            None => {
                return Err(DecodeError::MissingField {
                    frame_type: kind.as_str().to_owned(),
                    field,
                });
            }
        };
        for key in ["group_id", "from_user_id", "to_user_id", "from_username"] {
            if let Some(v) = obj.get(key).filter(|v| !v.is_null()) {
                data.insert(key.to_owned(), v.clone());
            }
        }
        match opt_text(obj, "title")? {
            Some(t) if !t.trim().is_empty() => t,
            _ if kind == NotificationKind::GroupMessage => format!("New message in group {who}"),
            _ => format!("New message from {who}"),
        }
    } else {
        let title = opt_text(obj, "title")?.unwrap_or_default();
        if title.trim().is_empty() && content.trim().is_empty() {
            return Err(DecodeError::MissingField {
                frame_type: kind.as_str().to_owned(),
                field: "title",
            });
        }
        title
    };

    let task_id = obj
        .get("task_id")
        .filter(|v| !v.is_null())
        .or_else(|| data.get("task_id"))
        .and_then(id_string);
    let project_id = obj
        .get("project_id")
        .filter(|v| !v.is_null())
        .or_else(|| data.get("project_id"))
        .and_then(id_string);

    let (ts_field, raw_ts) = match obj.get("timestamp").filter(|v| !v.is_null()) {
        Some(v) => ("timestamp", Some(v)),
        None => ("created_at", obj.get("created_at").filter(|v| !v.is_null())),
    };
    let parsed_ts = match raw_ts {
        None => None,
        Some(v) => Some(
            parse_timestamp_ms(v).ok_or_else(|| DecodeError::BadTimestamp {
                field: ts_field,
                value: quote(&v.to_string()),
            })?,
        ),
    };

    let priority = Priority::from_json(obj.get("priority"));
    let key = match &id {
        Some(id) => id.clone(),
        None => content_key(&kind, &title, &content, task_id.as_deref(), parsed_ts),
    };
    // Cut after the key is made: the same frame always gets the same key.
    let title = truncate_chars(&title, MAX_TITLE_CHARS).into_owned();
    let content = truncate_chars(&content, MAX_CONTENT_CHARS).into_owned();
    bound_data(&mut data);
    Ok(Notification {
        id,
        key,
        kind,
        title,
        content,
        task_id,
        project_id,
        priority,
        timestamp_ms: parsed_ts.unwrap_or(now_ms),
        data: Value::Object(data),
    })
}

/// The stable dedupe key of a notification without id: `"content:"` and a
/// 128-bit FNV-1a hash (hex) of its kind, title, content, task id and
/// timestamp (ms; "none" when absent, so the receive time never enters it).
/// Stable across runs, platforms and versions of Rust.
pub fn content_key(
    kind: &NotificationKind,
    title: &str,
    content: &str,
    task_id: Option<&str>,
    timestamp_ms: Option<i64>,
) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut h = OFFSET;
    let ts = timestamp_ms.map_or_else(|| "none".to_owned(), |t| t.to_string());
    for part in [
        kind.as_str(),
        title,
        content,
        task_id.unwrap_or("\u{0}none"),
        &ts,
    ] {
        // Length prefix keeps ("ab","c") and ("a","bc") apart.
        for b in (part.len() as u64)
            .to_le_bytes()
            .iter()
            .chain(part.as_bytes())
        {
            h ^= u128::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    }
    format!("content:{h:032x}")
}

/// Reads a timestamp in any form protocol.md §1 allows and returns ms since
/// the epoch:
/// - an integer (or integral float, or a string of digits) below 10^11 is
///   seconds, otherwise milliseconds;
/// - a float below 10^11 is fractional seconds;
/// - RFC 3339 / ISO-8601 strings (`"2024-01-01T12:00:00Z"`, with offset);
/// - `"YYYY-MM-DD HH:MM:SS"` or `"YYYY-MM-DDTHH:MM:SS"` (optionally with
///   fractional seconds) without an offset, read as UTC *(ours: the
///   documents give no zone)*.
///
/// Returns `None` for anything else, or on overflow.
pub fn parse_timestamp_ms(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                int_to_ms(i)
            } else {
                let f = n.as_f64()?;
                float_to_ms(f)
            }
        }
        Value::String(s) => parse_timestamp_str(s.trim()),
        _ => None,
    }
}

/// Integer timestamp → ms (seconds below 10^11).
fn int_to_ms(i: i64) -> Option<i64> {
    if i.abs() < SECONDS_LIMIT {
        i.checked_mul(1000)
    } else {
        Some(i)
    }
}

/// Float timestamp → ms.
fn float_to_ms(f: f64) -> Option<i64> {
    if !f.is_finite() {
        return None;
    }
    let ms = if f.abs() < SECONDS_LIMIT as f64 {
        f * 1000.0
    } else {
        f
    };
    if ms.abs() >= 9.0e18 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)]
    Some(ms.round() as i64)
}

/// Timestamp string → ms.
fn parse_timestamp_str(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    if let Ok(i) = s.parse::<i64>() {
        return int_to_ms(i);
    }
    if s.bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        && let Ok(f) = s.parse::<f64>()
    {
        return float_to_ms(f);
    }
    let with_t: String = if s.len() > 10 && s.as_bytes().get(10) == Some(&b' ') {
        let mut t = s.to_owned();
        t.replace_range(10..11, "T");
        t
    } else {
        s.to_owned()
    };
    let odt = OffsetDateTime::parse(&with_t, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(&with_t, &Iso8601::DEFAULT))
        .or_else(|_| {
            PrimitiveDateTime::parse(
                &with_t,
                format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
                ),
            )
            .map(PrimitiveDateTime::assume_utc)
        })
        .or_else(|_| {
            PrimitiveDateTime::parse(
                &with_t,
                format_description!("[year]-[month]-[day]T[hour]:[minute]"),
            )
            .map(PrimitiveDateTime::assume_utc)
        })
        .ok()?;
    i64::try_from(odt.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The current wall clock in ms since the epoch (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

// ---- small lenient readers -------------------------------------------------

/// An id-like value as a string: strings as they are, numbers in their JSON
/// spelling, booleans/arrays/objects/null → None.
fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A required id field.
fn req_id(
    obj: &Map<String, Value>,
    frame_type: &str,
    field: &'static str,
) -> Result<String, DecodeError> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(DecodeError::MissingField {
            frame_type: frame_type.to_owned(),
            field,
        }),
        Some(v) => id_string(v).ok_or(DecodeError::WrongType {
            field,
            expected: "a number or a string",
            found: json_kind(v),
        }),
    }
}

/// An optional text field: absent/null → None, string → Some, other → error.
fn opt_text(obj: &Map<String, Value>, field: &'static str) -> Result<Option<String>, DecodeError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(DecodeError::WrongType {
            field,
            expected: "a string",
            found: json_kind(other),
        }),
    }
}

/// An integer from a number (integral) or a string of digits.
fn int_value(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            let f = n.as_f64()?;
            if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e18 {
                #[allow(clippy::cast_possible_truncation)]
                Some(f as i64)
            } else {
                None
            }
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The value must be an object.
fn as_object(v: &Value) -> Result<&Map<String, Value>, DecodeError> {
    v.as_object().ok_or(DecodeError::NotObject {
        found: json_kind(v),
    })
}

/// "an array", "a string", ... for error messages.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Shortens a value for an error message.
fn quote(s: &str) -> String {
    if s.chars().count() <= QUOTE_CHARS {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(QUOTE_CHARS).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_fall_into_the_five_filter_groups() {
        assert_eq!(NotificationKind::TaskReviewed.group(), "reviews");
        assert_eq!(NotificationKind::TaskSubmitted.group(), "submissions");
        assert_eq!(NotificationKind::SkipRequested.group(), "submissions");
        assert_eq!(NotificationKind::Mention.group(), "mentions");
        assert_eq!(NotificationKind::GroupMessage.group(), "chat");
        assert_eq!(NotificationKind::Other("x".into()).group(), "system");
    }
    use serde_json::json;

    const NOW: i64 = 1_700_000_000_000;

    fn notif(text: &str) -> Notification {
        match decode_at(text, NOW) {
            Ok(Inbound::Notification(n)) => n,
            other => panic!("expected a notification from {text}, got {other:?}"),
        }
    }

    #[test]
    fn truncation_counts_characters_and_marks_the_cut() {
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abcd", 3), "ab…");
        assert_eq!(truncate_chars("任务任务", 3), "任务…");
        assert_eq!(truncate_chars("", 0), "");
        assert!(matches!(
            truncate_chars("short", 10),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn huge_fields_are_cut_and_the_key_is_the_same_as_uncut() {
        let title = "t".repeat(MAX_TITLE_CHARS * 3);
        let content = "c".repeat(MAX_CONTENT_CHARS * 3);
        let big = "x".repeat(MAX_DATA_BYTES);
        let frame = serde_json::json!({
            "type": "system", "title": title, "content": content,
            "data": {"task_id": "7", "blob": big, "nested": {"a": 1}},
        })
        .to_string();
        let n = notif(&frame);
        assert_eq!(n.title.chars().count(), MAX_TITLE_CHARS);
        assert_eq!(n.content.chars().count(), MAX_CONTENT_CHARS);
        assert_eq!(n.data["task_id"], "7", "short scalars stay");
        assert!(n.data.get("blob").is_none() && n.data.get("nested").is_none());
        // The key hashes the frame as sent: a resend dedupes.
        assert_eq!(notif(&frame).key, n.key);
        assert!(n.key.starts_with("content:"));
    }

    #[test]
    fn decodes_the_protocol_example_notification() {
        let n = notif(
            r#"{"type":"task_reviewed","id":"1699012345678-0","title":"任务审核结果",
               "content":"你的任务《图像标注-0042》已驳回",
               "data":{"task_id":"task123","status":"rejected","project_id":"p1"},
               "timestamp":1698739200,"priority":"high"}"#,
        );
        assert_eq!(n.kind, NotificationKind::TaskReviewed);
        assert_eq!(n.id.as_deref(), Some("1699012345678-0"));
        assert_eq!(n.key, "1699012345678-0");
        assert_eq!(n.title, "任务审核结果");
        assert_eq!(n.content, "你的任务《图像标注-0042》已驳回");
        assert_eq!(n.task_id.as_deref(), Some("task123"));
        assert_eq!(n.project_id.as_deref(), Some("p1"));
        assert_eq!(n.priority, Priority::High);
        assert_eq!(n.timestamp_ms, 1_698_739_200_000);
        assert_eq!(n.data["status"], "rejected");
    }

    #[test]
    fn numeric_ids_and_top_level_task_id() {
        let n = notif(
            r#"{"type":"task_assigned","id":42,"title":"t","task_id":7,"timestamp":1699012345678}"#,
        );
        assert_eq!(n.id.as_deref(), Some("42"));
        assert_eq!(n.task_id.as_deref(), Some("7"));
        assert_eq!(n.timestamp_ms, 1_699_012_345_678);
        assert_eq!(n.priority, Priority::Normal);
    }

    #[test]
    fn top_level_task_id_wins_over_data() {
        let n = notif(r#"{"type":"mention","title":"t","task_id":"a","data":{"task_id":"b"}}"#);
        assert_eq!(n.task_id.as_deref(), Some("a"));
    }

    #[test]
    fn missing_timestamp_uses_now_and_unknown_priority_is_normal() {
        let n = notif(r#"{"type":"system","title":"维护通知","priority":"apocalyptic"}"#);
        assert_eq!(n.timestamp_ms, NOW);
        assert_eq!(n.priority, Priority::Normal);
        let n = notif(r#"{"type":"system","title":"x","priority":5}"#);
        assert_eq!(n.priority, Priority::Normal);
        let n = notif(r#"{"type":"system","title":"x","priority":"URGENT"}"#);
        assert_eq!(n.priority, Priority::Urgent);
    }

    #[test]
    fn missing_id_gives_a_stable_content_key_independent_of_receive_time() {
        let text = r#"{"type":"task_submitted","title":"新任务待审核","content":"c","timestamp":1698739200}"#;
        let a = decode_at(text, 1).map(|i| match i {
            Inbound::Notification(n) => n.key,
            _ => String::new(),
        });
        let b = decode_at(text, 2).map(|i| match i {
            Inbound::Notification(n) => n.key,
            _ => String::new(),
        });
        assert_eq!(a, b);
        let key = a.unwrap_or_default();
        assert!(key.starts_with("content:"), "{key}");
        // Pinned so that a change of the hash (which would re-show every
        // stored id-less notification) is noticed.
        assert_eq!(
            key,
            content_key(
                &NotificationKind::TaskSubmitted,
                "新任务待审核",
                "c",
                None,
                Some(1_698_739_200_000)
            )
        );
        // Same title/content at a different time is a different notification.
        let other = notif(
            r#"{"type":"task_submitted","title":"新任务待审核","content":"c","timestamp":1698739201}"#,
        );
        assert_ne!(other.key, key);
        // Field boundaries matter.
        assert_ne!(
            content_key(&NotificationKind::Test, "ab", "c", None, None),
            content_key(&NotificationKind::Test, "a", "bc", None, None)
        );
        // Without timestamp, the key does not depend on now.
        let t = r#"{"type":"test","title":"x"}"#;
        let k1 = notif(t).key;
        let k2 = match decode_at(t, 99) {
            Ok(Inbound::Notification(n)) => n.key,
            other => panic!("{other:?}"),
        };
        assert_eq!(k1, k2);
    }

    #[test]
    fn chat_frames_become_notifications() {
        let n = notif(
            r#"{"id":"msg_1","group_id":"group_123","from_user_id":"user_456",
                "content":"Hello everyone!","created_at":"2025-12-13 10:30:45","type":"group"}"#,
        );
        assert_eq!(n.kind, NotificationKind::GroupMessage);
        assert_eq!(n.title, "New message in group group_123");
        assert_eq!(n.content, "Hello everyone!");
        assert_eq!(n.data["group_id"], "group_123");
        assert_eq!(n.data["from_user_id"], "user_456");
        // 2025-12-13T10:30:45Z
        assert_eq!(n.timestamp_ms, 1_765_621_845_000);

        let p = notif(r#"{"type":"private","id":9,"from_user_id":3,"content":"你好 👋"}"#);
        assert_eq!(p.kind, NotificationKind::PrivateMessage);
        assert_eq!(p.title, "New message from 3");
        assert_eq!(p.data["from_user_id"], 3);

        assert!(matches!(
            decode_at(r#"{"type":"group","content":"x"}"#, NOW),
            Err(DecodeError::MissingField {
                field: "group_id",
                ..
            })
        ));
    }

    #[test]
    fn read_frames_list_ids_as_opaque_strings() {
        assert_eq!(
            decode_at(r#"{"type":"read","ids":["1699012345678-0",42]}"#, NOW),
            Ok(Inbound::Read {
                ids: vec!["1699012345678-0".to_owned(), "42".to_owned()]
            })
        );
        // Ids of another shape are skipped, not fatal.
        assert_eq!(
            decode_at(r#"{"type":"READ","ids":[{"x":1},null,"a"]}"#, NOW),
            Ok(Inbound::Read {
                ids: vec!["a".to_owned()]
            })
        );
        assert!(matches!(
            decode_at(r#"{"type":"read"}"#, NOW),
            Err(DecodeError::MissingField { field: "ids", .. })
        ));
        assert!(matches!(
            decode_at(r#"{"type":"read","ids":"a"}"#, NOW),
            Err(DecodeError::WrongType { field: "ids", .. })
        ));
        let many: Vec<u32> = (0..20_000).collect();
        let text = serde_json::json!({"type": "read", "ids": many}).to_string();
        match decode_at(&text, NOW) {
            Ok(Inbound::Read { ids }) => assert_eq!(ids.len(), MAX_READ_IDS),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn heartbeat_frames() {
        assert_eq!(
            decode_at(
                r#"{"type":"pong","timestamp":1699012345678,"server_time":1699012345680}"#,
                NOW
            ),
            Ok(Inbound::Pong {
                timestamp: 1_699_012_345_678,
                server_time: Some(1_699_012_345_680)
            })
        );
        assert_eq!(
            decode_at(r#"{"type":"pong","timestamp":"1699012345678"}"#, NOW),
            Ok(Inbound::Pong {
                timestamp: 1_699_012_345_678,
                server_time: None
            })
        );
        assert_eq!(
            decode_at(r#"{"type":"ping","timestamp":5}"#, NOW),
            Ok(Inbound::Ping { timestamp: Some(5) })
        );
        assert_eq!(
            decode_at(r#"{"type":"PING"}"#, NOW),
            Ok(Inbound::Ping { timestamp: None })
        );
        assert!(matches!(
            decode_at(r#"{"type":"pong"}"#, NOW),
            Err(DecodeError::MissingField {
                field: "timestamp",
                ..
            })
        ));
        assert!(matches!(
            decode_at(r#"{"type":"pong","timestamp":"soon"}"#, NOW),
            Err(DecodeError::BadTimestamp { .. })
        ));
    }

    #[test]
    fn bad_frames_give_clear_errors() {
        let cases: &[(&str, &str)] = &[
            ("not json", "not valid JSON"),
            ("[1,2]", "JSON an array, expected an object"),
            ("\"pong\"", "a string"),
            ("{}", "missing field `type`"),
            (
                r#"{"type":"weather","title":"rain"}"#,
                "unknown frame type \"weather\"",
            ),
            (
                r#"{"type":5}"#,
                "field `type` should be a string, found a number",
            ),
            (
                r#"{"type":"system","title":5}"#,
                "field `title` should be a string",
            ),
            (r#"{"type":"system"}"#, "missing field `title`"),
            (
                r#"{"type":"system","title":"x","data":"oops"}"#,
                "field `data` should be an object",
            ),
            (r#"{"type":"system","title":"x","id":[1]}"#, "field `id`"),
            (
                r#"{"type":"system","title":"x","timestamp":"yesterday"}"#,
                "not a timestamp",
            ),
        ];
        for (text, expected) in cases {
            match decode_at(text, NOW) {
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains(expected), "{text}: {msg:?} lacks {expected:?}");
                }
                Ok(v) => panic!("{text} decoded to {v:?}"),
            }
        }
    }

    #[test]
    fn oversized_and_deep_frames_are_errors_not_panics() {
        let big = format!(
            r#"{{"type":"system","title":"{}"}}"#,
            "x".repeat(MAX_FRAME_BYTES)
        );
        assert!(matches!(
            decode_at(&big, NOW),
            Err(DecodeError::TooLarge { .. })
        ));
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            decode_at(&deep, NOW),
            Err(DecodeError::NotJson(_))
        ));
        let deep_obj = format!(
            r#"{{"type":"system","title":"x","data":{}1{}}}"#,
            r#"{"a":"#.repeat(5000),
            "}".repeat(5000)
        );
        assert!(matches!(
            decode_at(&deep_obj, NOW),
            Err(DecodeError::NotJson(_))
        ));
        assert!(matches!(
            decode_bytes(&[b'{', 0xff, 0xfe, b'}']),
            Err(DecodeError::NotUtf8 { offset: 1 })
        ));
    }

    #[test]
    fn long_unknown_types_are_shortened_in_errors() {
        let text = format!(r#"{{"type":"{}"}}"#, "z".repeat(10_000));
        let msg = decode_at(&text, NOW).map(|_| ()).unwrap_err().to_string();
        assert!(msg.len() < 200, "{}", msg.len());
    }

    #[test]
    fn timestamps_in_all_four_forms() {
        let ms = 1_704_110_400_000; // 2024-01-01T12:00:00Z
        for v in [
            json!(1_704_110_400),
            json!(1_704_110_400_000_i64),
            json!("2024-01-01T12:00:00Z"),
            json!("2024-01-01T20:00:00+08:00"),
            json!("2024-01-01 12:00:00"),
            json!("2024-01-01T12:00:00"),
            json!("1704110400"),
            json!(1_704_110_400.0),
        ] {
            assert_eq!(parse_timestamp_ms(&v), Some(ms), "{v}");
        }
        assert_eq!(
            parse_timestamp_ms(&json!("2024-01-01 12:00:00.250")),
            Some(ms + 250)
        );
        assert_eq!(parse_timestamp_ms(&json!(1_704_110_400.5)), Some(ms + 500));
        for v in [
            json!(null),
            json!(true),
            json!("tomorrow"),
            json!(""),
            json!([]),
            json!(u64::MAX),
            json!(1e300),
            json!("2024-13-45 99:99:99"),
        ] {
            assert_eq!(parse_timestamp_ms(&v), None, "{v}");
        }
    }

    #[test]
    fn outbound_frames_encode_per_protocol() {
        let ping = Outbound::Ping {
            timestamp: 1_699_012_345_678,
            user_id: "1".into(),
            username: "张三".into(),
        };
        let v: Value = serde_json::from_str(&ping.to_json()).unwrap_or_default();
        assert_eq!(
            v,
            json!({"type":"ping","timestamp":1_699_012_345_678_i64,"user_id":1,"username":"张三"})
        );
        for (id, wire) in [
            ("user_456", json!("user_456")),
            ("007", json!("007")),
            ("0", json!(0)),
            ("99999999999999999999", json!("99999999999999999999")),
        ] {
            let p = Outbound::Ping {
                timestamp: 1,
                user_id: id.into(),
                username: "u".into(),
            };
            let v: Value = serde_json::from_str(&p.to_json()).unwrap_or_default();
            assert_eq!(v["user_id"], wire, "{id}");
        }
        let pong: Value =
            serde_json::from_str(&Outbound::Pong { timestamp: 5 }.to_json()).unwrap_or_default();
        assert_eq!(pong, json!({"type":"pong","timestamp":5}));
        let ack: Value = serde_json::from_str(
            &Outbound::Ack {
                ids: vec!["a".into(), "1".into()],
            }
            .to_json(),
        )
        .unwrap_or_default();
        assert_eq!(ack, json!({"type":"ack","ids":["a","1"]}));
    }

    #[test]
    fn rest_types_are_lenient() {
        let u: User = serde_json::from_value(
            json!({"id": 1, "username": "zhangsan", "role": "Reviewer", "project_ids": [1, "p2"]}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.id, "1");
        assert_eq!(u.real_name, "zhangsan");
        assert_eq!(u.role, Role::Reviewer);
        assert_eq!(u.project_ids, vec!["1", "p2"]);
        let u: User = serde_json::from_value(
            json!({"id": "user_456", "username": "z", "real_name": "张三", "role": "superuser"}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.role, Role::Annotator);
        assert_eq!(u.real_name, "张三");
        assert!(u.project_ids.is_empty());
        assert!(serde_json::from_value::<User>(json!({"username": "no id"})).is_err());
        assert!(serde_json::from_value::<User>(json!({"id": 1, "username": 5})).is_err());

        let t: Task = serde_json::from_value(json!({"id": 3, "title": "图像标注-0042", "status": "REJECTED",
            "project_id": 1, "assignee_id": "u1", "updated_at": "2024-01-01T12:00:00Z", "deadline": "2024-02-01"}))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.id, "3");
        assert_eq!(t.status, "rejected");
        assert_eq!(t.project_id.as_deref(), Some("1"));
        assert_eq!(t.updated_at, Some(1_704_110_400_000));
        assert_eq!(t.deadline.as_deref(), Some("2024-02-01"));
        assert_eq!(t.review_comment, None);
        let t: Task = serde_json::from_value(json!({"id": "t", "updated_at": "garbage"}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.updated_at, None);
        assert_eq!(t.title, "");

        let s: SkipRequest = serde_json::from_value(json!({"id": 1, "task_id": 2, "task_title": "x",
            "requested_by": {"id": 5, "username": "li"}, "reason": "太难", "status": "pending", "created_at": 1698739200}))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.task_id.as_deref(), Some("2"));
        assert_eq!(s.requested_by.as_deref(), Some("li"));
        assert_eq!(s.created_at, Some(1_698_739_200_000));
    }

    #[test]
    fn catch_up_items_keep_unknown_kinds() {
        let n = Notification::from_value(
            &json!({"type":"project_archived","id":"1-0","title":"归档"}),
            NOW,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.kind, NotificationKind::Other("project_archived".into()));
        assert!(Notification::from_value(&json!({"type":"pong","timestamp":1}), NOW).is_err());
        // round trip through serde (the history store and the CLI use this)
        let text = serde_json::to_string(&n).unwrap_or_default();
        let back: Notification = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, n);
    }
}
