//! `--demo-activity SECS`: a scripted sequence of platform events, one every SECS seconds, so a
//! demo shows real traffic: submissions, reviews with rejections, a maintenance notice, group
//! messages and task assignments. It drives the same operations as the REST API.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::data::{Role, Task, TaskStatus, UserRecord};
use crate::error::ApiError;
use crate::util::now_ms;

pub(crate) async fn run(app: Arc<App>, every: Duration, stop: CancellationToken) {
    let every = every.max(Duration::from_millis(100));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut step = 0u64;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match demo_step(&app, step).await {
            Ok(what) => tracing::info!(step, "demo activity: {what}"),
            Err(e) => tracing::warn!(step, "demo activity step failed: {}", e.message),
        }
        step += 1;
    }
}

struct Cast {
    annotator: UserRecord,
    other: UserRecord,
    reviewer: UserRecord,
}

fn cast(app: &App) -> Option<Cast> {
    let data = app.lock_data();
    let annotators: Vec<&UserRecord> = data
        .users
        .iter()
        .filter(|u| u.role == Role::Annotator)
        .collect();
    let reviewer = data
        .users
        .iter()
        .find(|u| u.role == Role::Reviewer)
        .or_else(|| data.users.iter().find(|u| u.role == Role::Admin))?;
    let annotator = *annotators.first()?;
    let other = *annotators.get(1).unwrap_or(&annotator);
    Some(Cast {
        annotator: annotator.clone(),
        other: other.clone(),
        reviewer: reviewer.clone(),
    })
}

/// An in-progress task of `user`, created quietly when there is none.
fn task_in_progress(app: &App, user: &UserRecord) -> String {
    let mut data = app.lock_data();
    if let Some(t) = data.tasks.iter().find(|t| {
        t.assignee_id.as_deref() == Some(user.id.as_str()) && t.status == TaskStatus::InProgress
    }) {
        return t.id.clone();
    }
    let id = data.next_id("task-");
    let n = data.next_seq;
    data.tasks.push(Task {
        id: id.clone(),
        title: format!("图像标注-{n:04}"),
        status: TaskStatus::InProgress,
        project_id: user.project_ids.first().cloned(),
        assignee_id: Some(user.id.clone()),
        updated_at: now_ms(),
        review_comment: None,
        deadline: None,
    });
    id
}

fn latest_submitted(app: &App, user: &UserRecord) -> Option<String> {
    let data = app.lock_data();
    data.tasks
        .iter()
        .filter(|t| {
            t.assignee_id.as_deref() == Some(user.id.as_str()) && t.status == TaskStatus::Submitted
        })
        .max_by_key(|t| t.updated_at)
        .map(|t| t.id.clone())
}

async fn demo_step(app: &App, step: u64) -> Result<String, ApiError> {
    let Some(c) = cast(app) else {
        return Err(ApiError::internal(
            "the data has no annotator or no reviewer",
        ));
    };
    match step % 7 {
        0 => {
            let id = task_in_progress(app, &c.other);
            let t = app.submit_task(&c.other, &id).await?;
            Ok(format!("{} submitted {}", c.other.username, t.title))
        }
        1 => {
            let id = task_in_progress(app, &c.annotator);
            let t = app.submit_task(&c.annotator, &id).await?;
            Ok(format!("{} submitted {}", c.annotator.username, t.title))
        }
        2 => {
            let id = match latest_submitted(app, &c.annotator) {
                Some(id) => id,
                None => {
                    let id = task_in_progress(app, &c.annotator);
                    app.submit_task(&c.annotator, &id).await?;
                    id
                }
            };
            let t = app
                .review_task(
                    &c.reviewer,
                    &id,
                    false,
                    Some("标注框与目标边缘偏差较大，请修订后重新提交".into()),
                )
                .await?;
            Ok(format!("{} rejected {}", c.reviewer.username, t.title))
        }
        3 => {
            app.broadcast(
                "系统维护通知",
                "平台将于今晚 23:00-23:30 进行维护，请提前保存标注进度",
                "high",
            )
            .await?;
            Ok("maintenance notice".into())
        }
        4 => {
            let group = app
                .lock_data()
                .groups
                .iter()
                .find(|g| g.member_ids.contains(&c.reviewer.id))
                .map(|g| g.id.clone());
            match group {
                Some(g) => {
                    let text = format!(
                        "@{} 今天的标注规范有更新，请查看项目说明",
                        c.annotator.real_name
                    );
                    app.group_message(&c.reviewer, &g, &text).await?;
                    Ok(format!("group message in {g}"))
                }
                None => Ok("no group to talk in".into()),
            }
        }
        5 => match latest_submitted(app, &c.other) {
            Some(id) => {
                let t = app
                    .review_task(&c.reviewer, &id, true, Some("标注质量很好".into()))
                    .await?;
                Ok(format!("{} approved {}", c.reviewer.username, t.title))
            }
            None => Ok("nothing to approve".into()),
        },
        _ => {
            let n = app.lock_data().next_seq + 1;
            let t = app
                .assign_task(
                    &format!("文本分类-{n:04}"),
                    c.annotator.project_ids.last().cloned(),
                    &c.annotator.id,
                )
                .await?;
            Ok(format!("assigned {} to {}", t.title, c.annotator.username))
        }
    }
}
