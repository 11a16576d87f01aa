//! Users, tasks, skip requests and chat groups: the data file format, the built-in demo data and
//! the in-memory store the handlers work on.

use std::collections::HashSet;
use std::path::Path;

use argon2::Argon2;
use argon2::password_hash::PasswordHasher;
use argon2::password_hash::phc::{Output, PasswordHash};
use serde::{Deserialize, Deserializer, Serialize};

use crate::ServerError;

/// A user's role on the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Labels tasks and submits them.
    Annotator,
    /// Approves or rejects submitted tasks.
    Reviewer,
    /// A reviewer with more rights (broadcasts, token revocation, debug endpoints).
    Admin,
}

impl Role {
    /// The lowercase name used in JSON and channel names.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Annotator => "annotator",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }
    /// Reviewers and admins may review.
    pub fn can_review(self) -> bool {
        matches!(self, Role::Reviewer | Role::Admin)
    }
}

/// Accepts an id given as a JSON number or string and keeps it as a string.
fn de_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) if !s.is_empty() => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "an id must be a non-empty string or a number, got {other}"
        ))),
    }
}

fn de_opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "an id must be a string or a number, got {other}"
        ))),
    }
}

fn de_ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let values = Vec::<serde_json::Value>::deserialize(d)?;
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            serde_json::Value::Number(n) => Ok(n.to_string()),
            other => Err(serde::de::Error::custom(format!(
                "an id must be a string or a number, got {other}"
            ))),
        })
        .collect()
}

/// A user as written in the data file (`--data`). Give either `password` (hashed with argon2 at
/// start-up) or `password_hash` (a PHC string such as `$argon2id$v=19$...`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSeed {
    /// The user's id (a number or a string).
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    /// Login name.
    pub username: String,
    /// Display name; the username when missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_name: Option<String>,
    /// annotator, reviewer or admin.
    pub role: Role,
    /// Projects the user belongs to (`notify:project:{id}` channels).
    #[serde(default, deserialize_with = "de_ids")]
    pub project_ids: Vec<String>,
    /// Plain-text password, hashed at start-up (demo and test data only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// An argon2 PHC hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
}

/// A task, as stored and as served (`Task` of protocol.md §2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// Task id.
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    /// Title, usually Chinese.
    pub title: String,
    /// in_progress, submitted, rejected or approved.
    pub status: TaskStatus,
    /// The project it belongs to.
    #[serde(default, deserialize_with = "de_opt_id")]
    pub project_id: Option<String>,
    /// The annotator working on it.
    #[serde(default, deserialize_with = "de_opt_id")]
    pub assignee_id: Option<String>,
    /// Last change, milliseconds since the epoch.
    #[serde(default)]
    pub updated_at: i64,
    /// The reviewer's comment (set on review).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_comment: Option<String>,
    /// Deadline as given in the data (any of protocol.md §1's timestamp forms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<serde_json::Value>,
}

/// The states of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Being labelled.
    InProgress,
    /// Waiting for review.
    Submitted,
    /// Sent back by a reviewer.
    Rejected,
    /// Accepted.
    Approved,
}

impl TaskStatus {
    /// The snake_case name used in JSON and query strings.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::InProgress => "in_progress",
            TaskStatus::Submitted => "submitted",
            TaskStatus::Rejected => "rejected",
            TaskStatus::Approved => "approved",
        }
    }
    /// Parses a `status=` query value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "in_progress" => Some(TaskStatus::InProgress),
            "submitted" => Some(TaskStatus::Submitted),
            "rejected" => Some(TaskStatus::Rejected),
            "approved" => Some(TaskStatus::Approved),
            _ => None,
        }
    }
}

/// An annotator's request to skip a task (`SkipRequest` of protocol.md §2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipRequest {
    /// Request id.
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    /// The task to skip.
    #[serde(deserialize_with = "de_id")]
    pub task_id: String,
    /// Its title.
    pub task_title: String,
    /// The annotator's user id.
    #[serde(deserialize_with = "de_id")]
    pub requested_by: String,
    /// Why.
    pub reason: String,
    /// pending, approved or rejected.
    pub status: String,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub created_at: i64,
}

/// A chat group (seed 004).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Group id.
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    /// Display name.
    pub name: String,
    /// Member user ids.
    #[serde(deserialize_with = "de_ids")]
    pub member_ids: Vec<String>,
}

/// The `--data FILE` format: `{"users": [...], "tasks": [...], "skip_requests": [...], "groups": [...]}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataFile {
    /// Accounts.
    pub users: Vec<UserSeed>,
    /// Tasks.
    #[serde(default)]
    pub tasks: Vec<Task>,
    /// Skip requests.
    #[serde(default)]
    pub skip_requests: Vec<SkipRequest>,
    /// Chat groups.
    #[serde(default)]
    pub groups: Vec<Group>,
}

/// A user at run time, with the password hash.
#[derive(Debug, Clone)]
pub(crate) struct UserRecord {
    pub id: String,
    pub username: String,
    pub real_name: String,
    pub role: Role,
    pub project_ids: Vec<String>,
    pub password_hash: String,
}

impl UserRecord {
    /// The `User` object of protocol.md §2.
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "username": self.username,
            "real_name": self.real_name,
            "role": self.role.as_str(),
            "project_ids": self.project_ids,
        })
    }
    /// The channels of protocol.md §4 a socket of this user is subscribed to.
    pub fn channels(&self) -> Vec<String> {
        let mut ch = vec![
            format!("notify:user:{}", self.id),
            format!("notify:role:{}", self.role.as_str()),
        ];
        ch.extend(
            self.project_ids
                .iter()
                .map(|p| format!("notify:project:{p}")),
        );
        ch.push("notify:global".to_owned());
        ch
    }
}

/// The mutable platform data of one server instance.
#[derive(Debug)]
pub(crate) struct Data {
    pub users: Vec<UserRecord>,
    pub tasks: Vec<Task>,
    pub skips: Vec<SkipRequest>,
    pub groups: Vec<Group>,
    pub next_seq: u64,
    /// Checked against for unknown usernames (same cost as the users' hashes).
    pub dummy_hash: String,
}

impl Data {
    pub fn user(&self, id: &str) -> Option<&UserRecord> {
        self.users.iter().find(|u| u.id == id)
    }
    pub fn user_by_name(&self, username: &str) -> Option<&UserRecord> {
        self.users.iter().find(|u| u.username == username)
    }
    pub fn task_mut(&mut self, id: &str) -> Option<&mut Task> {
        self.tasks.iter_mut().find(|t| t.id == id)
    }
    pub fn users_with_role(&self, role: Role) -> Vec<String> {
        self.users
            .iter()
            .filter(|u| u.role == role)
            .map(|u| u.id.clone())
            .collect()
    }
    pub fn project_members(&self, project: &str) -> Vec<String> {
        self.users
            .iter()
            .filter(|u| u.project_ids.iter().any(|p| p == project))
            .map(|u| u.id.clone())
            .collect()
    }
    pub fn all_user_ids(&self) -> Vec<String> {
        self.users.iter().map(|u| u.id.clone()).collect()
    }
    pub fn next_id(&mut self, prefix: &str) -> String {
        self.next_seq += 1;
        format!("{prefix}{}", self.next_seq)
    }
}

/// Checks a data file and hashes its plain-text passwords (argon2id, random salt).
pub(crate) fn build(seed: DataFile, path: &Path) -> Result<Data, ServerError> {
    let err = |message: String| ServerError::Data {
        path: path.to_path_buf(),
        message,
    };
    let mut ids = HashSet::new();
    let mut names = HashSet::new();
    let mut users = Vec::with_capacity(seed.users.len());
    if seed.users.is_empty() {
        return Err(err(
            "no users: the file needs at least one entry in \"users\"".into(),
        ));
    }
    for u in seed.users {
        if !ids.insert(u.id.clone()) {
            return Err(err(format!("duplicate user id {:?}", u.id)));
        }
        if u.username.trim().is_empty() {
            return Err(err(format!("user {:?} has an empty username", u.id)));
        }
        if !names.insert(u.username.clone()) {
            return Err(err(format!("duplicate username {:?}", u.username)));
        }
        let password_hash = match (&u.password, &u.password_hash) {
            (Some(pw), None) => hash_password(pw).map_err(|e| err(e.to_string()))?,
            (None, Some(h)) => {
                PasswordHash::new(h).map_err(|e| {
                    err(format!(
                        "user {:?}: password_hash is not a PHC string: {e}",
                        u.username
                    ))
                })?;
                h.clone()
            }
            _ => {
                return Err(err(format!(
                    "user {:?}: give exactly one of \"password\" and \"password_hash\"",
                    u.username
                )));
            }
        };
        users.push(UserRecord {
            real_name: u.real_name.unwrap_or_else(|| u.username.clone()),
            id: u.id,
            username: u.username,
            role: u.role,
            project_ids: u.project_ids,
            password_hash,
        });
    }
    let mut task_ids = HashSet::new();
    for t in &seed.tasks {
        if !task_ids.insert(t.id.clone()) {
            return Err(err(format!("duplicate task id {:?}", t.id)));
        }
        if let Some(a) = &t.assignee_id {
            if !ids.contains(a) {
                return Err(err(format!("task {:?}: unknown assignee_id {a:?}", t.id)));
            }
        }
    }
    for g in &seed.groups {
        if let Some(m) = g.member_ids.iter().find(|m| !ids.contains(*m)) {
            return Err(err(format!("group {:?}: unknown member {m:?}", g.id)));
        }
    }
    let like = users.first().map_or("", |u| u.password_hash.as_str());
    let dummy_hash = dummy_hash(like).map_err(|e| err(e.to_string()))?;
    Ok(Data {
        users,
        dummy_hash,
        tasks: seed.tasks,
        skips: seed.skip_requests,
        groups: seed.groups,
        next_seq: 5000,
    })
}

/// Loads and parses a data file.
pub(crate) fn load(path: &Path) -> Result<DataFile, ServerError> {
    let text = std::fs::read_to_string(path).map_err(|e| ServerError::Data {
        path: path.to_path_buf(),
        message: format!("cannot read: {e}"),
    })?;
    serde_json::from_str(&text).map_err(|e| ServerError::Data {
        path: path.to_path_buf(),
        message: format!("not valid: {e}"),
    })
}

/// Hashes a password with argon2id and a random salt.
pub(crate) fn hash_password(pw: &str) -> Result<String, ServerError> {
    Argon2::default()
        .hash_password(pw.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ServerError::Internal(format!("hashing a password failed: {e}")))
}

/// Checks a password against an argon2 PHC hash, with `memory` as argon2's working memory: grown
/// to the hash's cost when needed and kept by the caller for the next check. (Allocating ~19 MiB
/// afresh for each check left the allocator holding hundreds of MiB after a burst of logins.)
pub(crate) fn verify_password(pw: &str, hash: &str, memory: &mut Vec<argon2::Block>) -> bool {
    check_password(pw, hash, memory).unwrap_or(false)
}

fn check_password(pw: &str, hash: &str, memory: &mut Vec<argon2::Block>) -> Option<bool> {
    let parsed = PasswordHash::new(hash).ok()?;
    let algorithm = argon2::Algorithm::try_from(parsed.algorithm.as_str()).ok()?;
    let version = match parsed.version {
        Some(v) => argon2::Version::try_from(v).ok()?,
        None => argon2::Version::default(),
    };
    // Includes the output length of the stored hash.
    let params = argon2::Params::try_from(&parsed).ok()?;
    let (salt, expected) = (parsed.salt.as_ref()?, parsed.hash.as_ref()?);
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::new());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(pw.as_bytes(), salt, &mut out, memory.as_mut_slice())
        .ok()?;
    // Constant-time comparison.
    Some(Output::new(&out).ok()? == *expected)
}

/// A demo account of the built-in data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoAccount {
    /// User id.
    pub id: &'static str,
    /// Login name.
    pub username: &'static str,
    /// Password.
    pub password: &'static str,
    /// Display name.
    pub real_name: &'static str,
    /// Role name: annotator, reviewer or admin.
    pub role: &'static str,
}

/// 张三, annotator: tasks in progress and one rejected (`zhangsan` / `annotate-123`).
pub const DEMO_ANNOTATOR: DemoAccount = DemoAccount {
    id: "1",
    username: "zhangsan",
    password: "annotate-123",
    real_name: "张三",
    role: "annotator",
};
/// 李四, reviewer: submissions and a skip request waiting (`lisi` / `review-123`).
pub const DEMO_REVIEWER: DemoAccount = DemoAccount {
    id: "2",
    username: "lisi",
    password: "review-123",
    real_name: "李四",
    role: "reviewer",
};
/// 管理员, admin (`admin` / `admin-123`).
pub const DEMO_ADMIN: DemoAccount = DemoAccount {
    id: "3",
    username: "admin",
    password: "admin-123",
    real_name: "管理员",
    role: "admin",
};
/// 王五, a second annotator whose submissions the demo activity makes (`wangwu` / `annotate-456`).
pub const DEMO_ANNOTATOR2: DemoAccount = DemoAccount {
    id: "4",
    username: "wangwu",
    password: "annotate-456",
    real_name: "王五",
    role: "annotator",
};
/// All accounts of the built-in demo data.
pub const DEMO_ACCOUNTS: [DemoAccount; 4] =
    [DEMO_ANNOTATOR, DEMO_REVIEWER, DEMO_ADMIN, DEMO_ANNOTATOR2];
/// The chat group of the demo data (all four accounts are members).
pub const DEMO_GROUP_ID: &str = "g1";

/// The built-in demo data (see [`DEMO_ACCOUNTS`]).
pub fn demo_data() -> DataFile {
    let now = crate::util::now_ms();
    let hour = 3_600_000;
    let user = |a: DemoAccount| UserSeed {
        id: a.id.into(),
        username: a.username.into(),
        real_name: Some(a.real_name.into()),
        role: match a.role {
            "reviewer" => Role::Reviewer,
            "admin" => Role::Admin,
            _ => Role::Annotator,
        },
        project_ids: vec!["p1".into(), "p2".into()],
        password: Some(a.password.into()),
        password_hash: None,
    };
    let task = |id: &str, title: &str, status, project: &str, assignee: &str, age_h: i64| Task {
        id: id.into(),
        title: title.into(),
        status,
        project_id: Some(project.into()),
        assignee_id: Some(assignee.into()),
        updated_at: now - age_h * hour,
        review_comment: None,
        deadline: None,
    };
    let mut rejected = task(
        "task-1002",
        "图像标注-0042",
        TaskStatus::Rejected,
        "p1",
        "1",
        5,
    );
    rejected.review_comment = Some("边界框不准确，请重新标注车辆的轮廓".into());
    let mut with_deadline = task(
        "task-1001",
        "图像标注-0041",
        TaskStatus::InProgress,
        "p1",
        "1",
        2,
    );
    with_deadline.deadline = Some(serde_json::Value::from(now + 48 * hour));
    let mut wangwu = user(DEMO_ANNOTATOR2);
    wangwu.project_ids = vec!["p1".into()];
    DataFile {
        users: vec![
            user(DEMO_ANNOTATOR),
            user(DEMO_REVIEWER),
            user(DEMO_ADMIN),
            wangwu,
        ],
        tasks: vec![
            with_deadline,
            rejected,
            task(
                "task-1003",
                "文本分类-0007",
                TaskStatus::InProgress,
                "p2",
                "1",
                1,
            ),
            task(
                "task-1004",
                "图像标注-0038",
                TaskStatus::Approved,
                "p1",
                "1",
                30,
            ),
            task(
                "task-1005",
                "图像标注-0043",
                TaskStatus::Submitted,
                "p1",
                "4",
                3,
            ),
            task(
                "task-1006",
                "文本分类-0010",
                TaskStatus::Submitted,
                "p2",
                "1",
                4,
            ),
            task(
                "task-1007",
                "图像标注-0044",
                TaskStatus::InProgress,
                "p1",
                "4",
                1,
            ),
            task(
                "task-1008",
                "图像标注-0045",
                TaskStatus::InProgress,
                "p1",
                "4",
                6,
            ),
        ],
        skip_requests: vec![SkipRequest {
            id: "skip-1".into(),
            task_id: "task-1008".into(),
            task_title: "图像标注-0045".into(),
            requested_by: "4".into(),
            reason: "图片过于模糊，无法辨认目标".into(),
            status: "pending".into(),
            created_at: now - 2 * hour,
        }],
        groups: vec![Group {
            id: DEMO_GROUP_ID.into(),
            name: "图像标注项目组".into(),
            member_ids: vec!["1".into(), "2".into(), "3".into(), "4".into()],
        }],
    }
}

/// A hash of a random password with the same algorithm and cost as `like` (the argon2id default
/// when `like` is not an argon2 hash), checked against for unknown usernames so that they take as
/// long as known ones.
pub(crate) fn dummy_hash(like: &str) -> Result<String, ServerError> {
    let pw: [u8; 16] = rand::random();
    let pw = format!("{pw:?}");
    let same_cost = PasswordHash::new(like).ok().and_then(|h| {
        let algorithm = argon2::Algorithm::try_from(h.algorithm.as_str()).ok()?;
        let version = match h.version {
            Some(v) => argon2::Version::try_from(v).ok()?,
            None => argon2::Version::default(),
        };
        let params = argon2::Params::try_from(&h).ok()?;
        Argon2::new(algorithm, version, params)
            .hash_password(pw.as_bytes())
            .ok()
    });
    match same_cost {
        Some(h) => Ok(h.to_string()),
        None => hash_password(&pw),
    }
}

/// The usernames in `seed` whose plain-text password is one of the published demo passwords
/// ([`DEMO_ACCOUNTS`]): the built-in data, or a file made from `--print-demo-data`.
pub(crate) fn published_accounts(seed: &DataFile) -> Vec<String> {
    seed.users
        .iter()
        .filter(|u| {
            u.password
                .as_deref()
                .is_some_and(|pw| DEMO_ACCOUNTS.iter().any(|a| a.password == pw))
        })
        .map(|u| u.username.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_with_reused_memory_and_dummies_cost_the_same() {
        let mut memory = Vec::new();
        let strong = hash_password("right").unwrap();
        let cheap = Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(8, 1, 1, Some(16)).unwrap(),
        )
        .hash_password(b"cheap")
        .unwrap()
        .to_string();
        for _ in 0..2 {
            assert!(verify_password("right", &strong, &mut memory));
            assert!(!verify_password("wrong", &strong, &mut memory));
            assert!(verify_password("cheap", &cheap, &mut memory));
            assert!(!verify_password("right", &cheap, &mut memory));
        }
        assert_eq!(memory.len(), argon2::Params::DEFAULT_M_COST as usize);
        assert!(!verify_password("right", "not a hash", &mut memory));
        assert!(!verify_password(
            "right",
            "$argon2id$v=19$m=8,t=1,p=1",
            &mut memory
        ));

        let dummy = dummy_hash(&cheap).unwrap();
        let (d, c) = (
            PasswordHash::new(&dummy).unwrap(),
            PasswordHash::new(&cheap).unwrap(),
        );
        assert_eq!((d.algorithm, d.version), (c.algorithm, c.version));
        assert_eq!(d.params, c.params);
        assert_ne!(d.salt, c.salt);
        let fallback = PasswordHash::new(&dummy_hash("").unwrap())
            .unwrap()
            .params
            .to_string();
        assert_eq!(
            fallback,
            format!("m={},t=2,p=1", argon2::Params::DEFAULT_M_COST)
        );
    }

    #[test]
    fn published_demo_passwords_are_recognised() {
        let demo = demo_data();
        assert_eq!(published_accounts(&demo).len(), 4);
        let own: DataFile = serde_json::from_value(serde_json::json!({"users": [
            {"id": "1", "username": "zhangsan", "role": "annotator", "password": "s3cret"}
        ]}))
        .unwrap();
        assert!(published_accounts(&own).is_empty());
    }
}
