//! The login-time summary (protocol.md §5): counting and rendering. Pure; the
//! REST calls that fetch the counts live in [`crate::api`].
//!
//! - annotator: rejected and in-progress tasks; rejected > 0 is urgent;
//! - reviewer / admin: tasks waiting for review and pending skip requests;
//!   urgent when any is waiting;
//! - the welcome toast ("登录成功" — "欢迎回来，{real_name}") carries the
//!   lines; when something is urgent a second, critical toast follows
//!   [`URGENT_DELAY`] later and stays [`URGENT_TIMEOUT_MS`];
//! - when the counts could not be fetched the summary says so
//!   ("summary unavailable") instead of failing.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::delivery::{Toast, Urgency};
use crate::i18n::{Lang, Msg, tr};
use crate::protocol::{Role, Task};

/// How long after the welcome toast the urgent toast follows (protocol.md §5: 3 s).
pub const URGENT_DELAY: Duration = Duration::from_secs(3);

/// How long the urgent toast stays (protocol.md §5: 6–8 s).
pub const URGENT_TIMEOUT_MS: u32 = 7000;

/// Key used for the summary toasts (they are not notifications).
pub const SUMMARY_KEY: &str = "summary";

/// The counts behind the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryCounts {
    /// The user's role (decides which counts matter).
    pub role: Role,
    /// Annotator: rejected tasks.
    pub rejected: u32,
    /// Annotator: tasks in progress.
    pub in_progress: u32,
    /// Reviewer/admin: tasks waiting for review.
    pub pending_reviews: u32,
    /// Reviewer/admin: pending skip requests.
    pub pending_skips: u32,
}

/// The urgent follow-up toast's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrgentToast {
    /// Title, e.g. "⚠️ 任务被驳回提醒".
    pub title: String,
    /// Body, e.g. "您有 1 个任务被驳回，请尽快修订并重新提交！".
    pub body: String,
}

/// A rendered summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The welcome toast's title ("登录成功" / "Signed in").
    pub title: String,
    /// The welcome toast's lines: "欢迎回来，{real_name}" then one line per count.
    pub body_lines: Vec<String>,
    /// The urgent toast, when something needs action.
    pub urgent: Option<UrgentToast>,
    /// True when the counts could not be fetched.
    pub unavailable: bool,
}

impl Summary {
    /// The welcome toast's body: the lines joined by newlines.
    pub fn body(&self) -> String {
        self.body_lines.join("\n")
    }

    /// The welcome toast (normal urgency, or critical when something is urgent).
    pub fn welcome_toast(&self) -> Toast {
        Toast {
            title: self.title.clone(),
            body: self.body(),
            urgency: Urgency::Normal,
            open_url: None,
            keys: vec![SUMMARY_KEY.to_owned()],
            folded: 1,
            timeout_ms: None,
        }
    }

    /// The urgent toast (critical, shown [`URGENT_TIMEOUT_MS`]), if any; the
    /// caller shows it [`URGENT_DELAY`] after the welcome toast.
    pub fn urgent_toast(&self) -> Option<Toast> {
        self.urgent.as_ref().map(|u| Toast {
            title: u.title.clone(),
            body: u.body.clone(),
            urgency: Urgency::Critical,
            open_url: None,
            keys: vec![format!("{SUMMARY_KEY}:urgent")],
            folded: 1,
            timeout_ms: Some(URGENT_TIMEOUT_MS),
        })
    }
}

/// Counts `(rejected, in_progress)` among an annotator's tasks (status
/// compared case-insensitively).
pub fn count_annotator(tasks: &[Task]) -> (u32, u32) {
    let mut rejected = 0u32;
    let mut in_progress = 0u32;
    for t in tasks {
        match t.status.trim().to_ascii_lowercase().as_str() {
            "rejected" => rejected = rejected.saturating_add(1),
            "in_progress" => in_progress = in_progress.saturating_add(1),
            _ => {}
        }
    }
    (rejected, in_progress)
}

/// Renders the summary; `counts = None` means the counts were unavailable.
pub fn render(counts: Option<&SummaryCounts>, real_name: &str, lang: Lang) -> Summary {
    let mut body_lines = vec![tr(lang, Msg::WelcomeBack { real_name })];
    let Some(c) = counts else {
        body_lines.push(tr(lang, Msg::SummaryUnavailable));
        return Summary {
            title: tr(lang, Msg::WelcomeTitle),
            body_lines,
            urgent: None,
            unavailable: true,
        };
    };
    let urgent = if c.role.reviews() {
        if c.pending_reviews > 0 {
            body_lines.push(tr(
                lang,
                Msg::SummaryPendingReviews {
                    n: c.pending_reviews,
                },
            ));
        }
        if c.pending_skips > 0 {
            body_lines.push(tr(lang, Msg::SummaryPendingSkips { n: c.pending_skips }));
        }
        (c.pending_reviews > 0 || c.pending_skips > 0).then(|| UrgentToast {
            title: tr(lang, Msg::UrgentReviewTitle),
            body: tr(
                lang,
                Msg::UrgentReviewBody {
                    reviews: c.pending_reviews,
                    skips: c.pending_skips,
                },
            ),
        })
    } else {
        if c.rejected > 0 {
            body_lines.push(tr(lang, Msg::SummaryRejected { n: c.rejected }));
        }
        if c.in_progress > 0 {
            body_lines.push(tr(lang, Msg::SummaryInProgress { n: c.in_progress }));
        }
        (c.rejected > 0).then(|| UrgentToast {
            title: tr(lang, Msg::UrgentRejectedTitle),
            body: tr(lang, Msg::UrgentRejectedBody { n: c.rejected }),
        })
    };
    if body_lines.len() == 1 {
        body_lines.push(tr(lang, Msg::SummaryNothing));
    }
    Summary {
        title: tr(lang, Msg::WelcomeTitle),
        body_lines,
        urgent,
        unavailable: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(
        role: Role,
        rejected: u32,
        in_progress: u32,
        reviews: u32,
        skips: u32,
    ) -> SummaryCounts {
        SummaryCounts {
            role,
            rejected,
            in_progress,
            pending_reviews: reviews,
            pending_skips: skips,
        }
    }

    fn task(status: &str) -> Task {
        Task {
            id: "1".into(),
            title: "t".into(),
            status: status.into(),
            project_id: None,
            assignee_id: None,
            updated_at: None,
            review_comment: None,
            deadline: None,
        }
    }

    #[test]
    fn counts_annotator_tasks() {
        let tasks = [
            task("rejected"),
            task("in_progress"),
            task("REJECTED"),
            task("submitted"),
            task("approved"),
            task("in_progress"),
            task("in_progress"),
        ];
        assert_eq!(count_annotator(&tasks), (2, 3));
        assert_eq!(count_annotator(&[]), (0, 0));
    }

    #[test]
    fn annotator_with_rejected_tasks_zh() {
        let s = render(
            Some(&counts(Role::Annotator, 1, 2, 0, 0)),
            "张三",
            Lang::ZhCn,
        );
        assert_eq!(s.title, "登录成功");
        assert_eq!(
            s.body_lines,
            vec![
                "欢迎回来，张三",
                "⚠️ 您有 1 个被驳回任务，建议请您先修订",
                "您有 2 个进行中的任务"
            ]
        );
        let u = s.urgent.clone().unwrap();
        assert_eq!(u.title, "⚠️ 任务被驳回提醒");
        assert_eq!(u.body, "您有 1 个任务被驳回，请尽快修订并重新提交！");
        assert!(!s.unavailable);
        let t = s.urgent_toast().unwrap();
        assert_eq!(t.urgency, Urgency::Critical);
        assert_eq!(t.timeout_ms, Some(7000));
        assert_eq!(
            s.welcome_toast().body,
            "欢迎回来，张三\n⚠️ 您有 1 个被驳回任务，建议请您先修订\n您有 2 个进行中的任务"
        );
    }

    #[test]
    fn annotator_in_progress_only_is_not_urgent() {
        let s = render(Some(&counts(Role::Annotator, 0, 4, 9, 9)), "Li", Lang::ZhCn);
        assert_eq!(s.body_lines, vec!["欢迎回来，Li", "您有 4 个进行中的任务"]);
        assert!(s.urgent.is_none());
        assert!(s.urgent_toast().is_none());
    }

    #[test]
    fn reviewer_lines_and_urgency() {
        let s = render(
            Some(&counts(Role::Reviewer, 5, 5, 3, 1)),
            "王五",
            Lang::ZhCn,
        );
        assert_eq!(
            s.body_lines,
            vec![
                "欢迎回来，王五",
                "有 3 个任务待审核",
                "有 1 个跳过申请待处理"
            ]
        );
        assert!(s.urgent.is_some());
        let s = render(Some(&counts(Role::Admin, 0, 0, 0, 2)), "A", Lang::En);
        assert_eq!(
            s.body_lines,
            vec!["Welcome back, A", "2 skip requests are waiting"]
        );
        assert_eq!(s.urgent.unwrap().title, "⚠️ Waiting for you");
        let s = render(Some(&counts(Role::Reviewer, 0, 0, 0, 0)), "R", Lang::En);
        assert!(s.urgent.is_none());
        assert_eq!(
            s.body_lines,
            vec!["Welcome back, R", "Nothing is waiting for you"]
        );
    }

    #[test]
    fn english_annotator() {
        let s = render(Some(&counts(Role::Annotator, 2, 1, 0, 0)), "Ann", Lang::En);
        assert_eq!(s.title, "Signed in");
        assert_eq!(
            s.body_lines,
            vec![
                "Welcome back, Ann",
                "⚠️ You have 2 rejected tasks — please revise them first",
                "You have 1 task in progress"
            ]
        );
        assert_eq!(
            s.urgent.unwrap().body,
            "You have 2 rejected tasks. Please revise and resubmit as soon as possible!"
        );
    }

    #[test]
    fn unavailable_summary() {
        let s = render(None, "张三", Lang::ZhCn);
        assert!(s.unavailable);
        assert!(s.urgent.is_none());
        assert_eq!(s.body_lines, vec!["欢迎回来，张三", "暂时无法获取任务汇总"]);
        let s = render(None, "Ann", Lang::En);
        assert_eq!(
            s.body_lines,
            vec!["Welcome back, Ann", "Summary unavailable"]
        );
    }
}
