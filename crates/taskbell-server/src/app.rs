//! The shared state of one server instance and the platform operations (submit, review, skip
//! requests, broadcasts, group messages) that make notifications happen. REST handlers and the
//! demo activity both go through these.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::ServerConfig;
use crate::auth::{Auth, HashGate, LoginLimiter};
use crate::bus::Bus;
use crate::data::{Data, Role, SkipRequest, Task, TaskStatus, UserRecord};
use crate::error::ApiError;
use crate::hub::{BusMessage, Hub};
use crate::util::now_ms;

/// A rule of the `/api/test/fail` control: the next `count` requests to `path` are delayed and/or
/// answered with `status`.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub(crate) struct Fault {
    pub path: String,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub delay_ms: u64,
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default)]
    pub retry_after: Option<u64>,
}

fn one() -> u32 {
    1
}

/// Switches of `--test-controls`.
#[derive(Debug, Default)]
pub(crate) struct TestControls {
    pub stall_pongs: AtomicBool,
    pub faults: Mutex<Vec<Fault>>,
    /// Every password-check permit, while `hold-logins` holds them.
    pub held_logins: tokio::sync::Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
}

/// Who receives a notification.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    User(String),
    Role(Role),
    Project(String),
    Global,
    Group { id: String, sender: String },
}

/// One server instance.
pub(crate) struct App {
    pub cfg: ServerConfig,
    pub data: Mutex<Data>,
    pub auth: Arc<Auth>,
    pub hub: Arc<Hub>,
    pub bus: Bus,
    pub limiter: LoginLimiter,
    pub hashing: Arc<HashGate>,
    pub controls: TestControls,
    pub instance: String,
}

const MAX_TEXT: usize = 10_000;

pub(crate) fn check_text(field: &str, v: &str, max: usize) -> Result<(), ApiError> {
    if v.trim().is_empty() {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("\"{field}\" must not be empty"),
        ));
    }
    if v.chars().count() > max {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("\"{field}\" is longer than {max} characters"),
        ));
    }
    Ok(())
}

pub(crate) fn check_priority(p: &str) -> Result<(), ApiError> {
    match p {
        "low" | "normal" | "high" | "urgent" => Ok(()),
        other => Err(ApiError::bad_request(
            "invalid_field",
            format!("unknown priority {other:?}; expected low, normal, high or urgent"),
        )),
    }
}

/// A notification frame of protocol.md §3 (without `id`; that is the history entry id per user).
pub(crate) fn notification(
    kind: &str,
    title: &str,
    content: &str,
    data: Value,
    priority: &str,
) -> Value {
    json!({
        "type": kind,
        "title": title,
        "content": content,
        "data": data,
        "timestamp": now_ms() / 1000,
        "priority": priority,
    })
}

impl App {
    pub fn lock_data(&self) -> std::sync::MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn user(&self, id: &str) -> Result<UserRecord, ApiError> {
        self.lock_data().user(id).cloned().ok_or_else(|| {
            ApiError::unauthorized("invalid_token", "the token's user no longer exists")
        })
    }

    /// Stores `frame` in every recipient's history and publishes it on the target's channel.
    /// Returns the notification id per recipient.
    pub async fn notify(
        &self,
        target: Target,
        frame: Value,
    ) -> Result<HashMap<String, String>, ApiError> {
        let (channel, recipients) = {
            let data = self.lock_data();
            match &target {
                Target::User(u) => (format!("notify:user:{u}"), vec![u.clone()]),
                Target::Role(r) => (
                    format!("notify:role:{}", r.as_str()),
                    data.users_with_role(*r),
                ),
                Target::Project(p) => (format!("notify:project:{p}"), data.project_members(p)),
                Target::Global => ("notify:global".to_owned(), data.all_user_ids()),
                Target::Group { id, sender } => {
                    let members = data
                        .groups
                        .iter()
                        .find(|g| g.id == *id)
                        .map(|g| {
                            g.member_ids
                                .iter()
                                .filter(|m| *m != sender)
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default();
                    (format!("group_msg:{id}"), members)
                }
            }
        };
        let ids = self
            .bus
            .append(&recipients, &frame)
            .await
            .map_err(|e| ApiError::internal(format!("storing the notification failed: {e}")))?;
        self.bus
            .publish(
                &self.hub,
                &channel,
                BusMessage {
                    frame,
                    ids: ids.clone(),
                },
            )
            .await
            .map_err(|e| ApiError::internal(format!("publishing the notification failed: {e}")))?;
        tracing::debug!(channel, recipients = recipients.len(), "published");
        Ok(ids)
    }

    /// Tells every socket of `user` (on every instance) that `ids` were marked read, with the
    /// optional `{"type":"read","ids":[...]}` frame of protocol.md §3. Not stored in the history:
    /// a client that was offline learns read state from nowhere (read marks are the client's).
    pub async fn publish_read(&self, user: &str, ids: &[String]) -> Result<(), ApiError> {
        if ids.is_empty() {
            return Ok(());
        }
        let channel = format!("notify:user:{user}");
        let frame = json!({"type": "read", "ids": ids});
        self.bus
            .publish(
                &self.hub,
                &channel,
                BusMessage {
                    frame,
                    ids: HashMap::new(),
                },
            )
            .await
            .map_err(|e| ApiError::internal(format!("publishing the read marks failed: {e}")))
    }

    /// An annotator submits their task: reviewers and admins get `task_submitted`.
    pub async fn submit_task(&self, actor: &UserRecord, task_id: &str) -> Result<Task, ApiError> {
        let task = {
            let mut data = self.lock_data();
            let t = data
                .task_mut(task_id)
                .ok_or_else(|| ApiError::not_found(format!("no task {task_id:?}")))?;
            if actor.role == Role::Annotator && t.assignee_id.as_deref() != Some(actor.id.as_str())
            {
                return Err(ApiError::forbidden("you can only submit your own tasks"));
            }
            if !matches!(t.status, TaskStatus::InProgress | TaskStatus::Rejected) {
                return Err(ApiError::conflict(format!(
                    "task {task_id:?} is {}; only in_progress or rejected tasks can be submitted",
                    t.status.as_str()
                )));
            }
            let before = t.clone();
            t.status = TaskStatus::Submitted;
            t.updated_at = now_ms();
            (t.clone(), before)
        };
        let (task, before) = task;
        let content = format!("{} 提交了任务《{}》，等待审核", actor.real_name, task.title);
        let data = json!({
            "task_id": task.id, "project_id": task.project_id, "status": "submitted",
            "submitted_by": actor.id,
        });
        for role in [Role::Reviewer, Role::Admin] {
            let frame = notification(
                "task_submitted",
                "新任务待审核",
                &content,
                data.clone(),
                "normal",
            );
            if let Err(e) = self.notify(Target::Role(role), frame).await {
                self.restore(before);
                return Err(e);
            }
        }
        Ok(task)
    }

    /// A reviewer approves or rejects a submitted task: the assignee gets `task_reviewed`.
    pub async fn review_task(
        &self,
        actor: &UserRecord,
        task_id: &str,
        approve: bool,
        comment: Option<String>,
    ) -> Result<Task, ApiError> {
        if !actor.role.can_review() {
            return Err(ApiError::forbidden(
                "only reviewers and admins can review tasks",
            ));
        }
        if let Some(c) = &comment {
            if c.chars().count() > MAX_TEXT {
                return Err(ApiError::bad_request(
                    "invalid_field",
                    "\"comment\" is too long",
                ));
            }
        }
        let task = {
            let mut data = self.lock_data();
            let t = data
                .task_mut(task_id)
                .ok_or_else(|| ApiError::not_found(format!("no task {task_id:?}")))?;
            if t.status != TaskStatus::Submitted {
                return Err(ApiError::conflict(format!(
                    "task {task_id:?} is {}; only submitted tasks can be reviewed",
                    t.status.as_str()
                )));
            }
            let before = t.clone();
            t.status = if approve {
                TaskStatus::Approved
            } else {
                TaskStatus::Rejected
            };
            t.review_comment = comment.filter(|c| !c.trim().is_empty());
            t.updated_at = now_ms();
            (t.clone(), before)
        };
        let (task, before) = task;
        if let Some(assignee) = &task.assignee_id {
            let (content, priority) = if approve {
                (format!("你的任务《{}》已通过审核", task.title), "normal")
            } else {
                let why = task.review_comment.as_deref().unwrap_or("请查看审核意见");
                (format!("你的任务《{}》已驳回：{why}", task.title), "high")
            };
            let frame = notification(
                "task_reviewed",
                "任务审核结果",
                &content,
                json!({
                    "task_id": task.id, "status": task.status.as_str(), "project_id": task.project_id,
                    "review_comment": task.review_comment, "reviewer_id": actor.id,
                }),
                priority,
            );
            if let Err(e) = self.notify(Target::User(assignee.clone()), frame).await {
                // Nothing is lost: the task goes back as it was and the review can be redone.
                self.restore(before);
                return Err(e);
            }
        }
        Ok(task)
    }

    /// Puts a task back as it was (when the notification of a change could not be published).
    fn restore(&self, before: Task) {
        let mut data = self.lock_data();
        if let Some(t) = data.task_mut(&before.id) {
            *t = before;
        }
    }

    /// An annotator asks to skip a task: reviewers and admins get `skip_requested`.
    pub async fn request_skip(
        &self,
        actor: &UserRecord,
        task_id: &str,
        reason: &str,
    ) -> Result<SkipRequest, ApiError> {
        check_text("reason", reason, MAX_TEXT)?;
        let req = {
            let mut data = self.lock_data();
            let t = data
                .tasks
                .iter()
                .find(|t| t.id == task_id)
                .ok_or_else(|| ApiError::not_found(format!("no task {task_id:?}")))?;
            if actor.role == Role::Annotator && t.assignee_id.as_deref() != Some(actor.id.as_str())
            {
                return Err(ApiError::forbidden(
                    "you can only ask to skip your own tasks",
                ));
            }
            let title = t.title.clone();
            let id = data.next_id("skip-");
            let req = SkipRequest {
                id,
                task_id: task_id.to_owned(),
                task_title: title,
                requested_by: actor.id.clone(),
                reason: reason.to_owned(),
                status: "pending".into(),
                created_at: now_ms(),
            };
            data.skips.push(req.clone());
            req
        };
        let content = format!(
            "{} 申请跳过任务《{}》：{}",
            actor.real_name, req.task_title, req.reason
        );
        let data =
            json!({"task_id": req.task_id, "skip_request_id": req.id, "requested_by": actor.id});
        for role in [Role::Reviewer, Role::Admin] {
            let frame = notification(
                "skip_requested",
                "新的跳过申请",
                &content,
                data.clone(),
                "normal",
            );
            self.notify(Target::Role(role), frame).await?;
        }
        Ok(req)
    }

    /// An admin (or the demo) assigns a new task: the assignee gets `task_assigned`.
    pub async fn assign_task(
        &self,
        title: &str,
        project_id: Option<String>,
        assignee: &str,
    ) -> Result<Task, ApiError> {
        check_text("title", title, 200)?;
        let task = {
            let mut data = self.lock_data();
            if data.user(assignee).is_none() {
                return Err(ApiError::bad_request(
                    "invalid_field",
                    format!("no user {assignee:?}"),
                ));
            }
            let id = data.next_id("task-");
            let t = Task {
                id,
                title: title.to_owned(),
                status: TaskStatus::InProgress,
                project_id,
                assignee_id: Some(assignee.to_owned()),
                updated_at: now_ms(),
                review_comment: None,
                deadline: None,
            };
            data.tasks.push(t.clone());
            t
        };
        let frame = notification(
            "task_assigned",
            "新任务分配",
            &format!("你有一个新任务《{}》", task.title),
            json!({"task_id": task.id, "project_id": task.project_id, "status": "in_progress"}),
            "normal",
        );
        self.notify(Target::User(assignee.to_owned()), frame)
            .await?;
        Ok(task)
    }

    /// An admin's announcement to everyone (`system` on `notify:global`).
    pub async fn broadcast(
        &self,
        title: &str,
        content: &str,
        priority: &str,
    ) -> Result<HashMap<String, String>, ApiError> {
        check_text("title", title, 200)?;
        check_text("content", content, MAX_TEXT)?;
        check_priority(priority)?;
        let frame = notification("system", title, content, json!({}), priority);
        self.notify(Target::Global, frame).await
    }

    /// A group chat message (seed 004): every member but the sender gets a `group` frame.
    pub async fn group_message(
        &self,
        actor: &UserRecord,
        group_id: &str,
        content: &str,
    ) -> Result<Value, ApiError> {
        check_text("content", content, MAX_TEXT)?;
        let name = {
            let data = self.lock_data();
            let g = data
                .groups
                .iter()
                .find(|g| g.id == group_id)
                .ok_or_else(|| ApiError::not_found(format!("no group {group_id:?}")))?;
            if !g.member_ids.contains(&actor.id) {
                return Err(ApiError::forbidden("you are not a member of this group"));
            }
            g.name.clone()
        };
        let frame = json!({
            "type": "group",
            "msg_id": msg_id(),
            "group_id": group_id,
            "group_name": name,
            "from_user_id": actor.id,
            "from_name": actor.real_name,
            "content": content,
            "created_at": now_ms(),
        });
        let ids = self
            .notify(
                Target::Group {
                    id: group_id.to_owned(),
                    sender: actor.id.clone(),
                },
                frame.clone(),
            )
            .await?;
        Ok(json!({"message": frame, "recipients": ids.len()}))
    }

    /// A private chat message: the addressee gets a `private` frame on `notify:user:{id}`.
    pub async fn private_message(
        &self,
        actor: &UserRecord,
        to: &str,
        content: &str,
    ) -> Result<Value, ApiError> {
        check_text("content", content, MAX_TEXT)?;
        if to == actor.id {
            return Err(ApiError::bad_request(
                "invalid_field",
                "you cannot message yourself",
            ));
        }
        if self.lock_data().user(to).is_none() {
            return Err(ApiError::not_found(format!("no user {to:?}")));
        }
        let frame = json!({
            "type": "private",
            "msg_id": msg_id(),
            "from_user_id": actor.id,
            "from_name": actor.real_name,
            "to_user_id": to,
            "content": content,
            "created_at": now_ms(),
        });
        self.notify(Target::User(to.to_owned()), frame.clone())
            .await?;
        Ok(json!({"message": frame}))
    }
}

/// A random message id shared by every copy of one chat message (seed 004's `msg_id`).
fn msg_id() -> String {
    let b: [u8; 16] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}
