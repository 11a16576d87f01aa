//! Triage from the toast and the center (issue 12): the mute and sound rules of the
//! settings window, "Mute this project" from a center row, and a folded toast opening the
//! center on the notifications it stands for.
//!
//! The rules are the core's (`[kinds.NAME]`, `[projects."ID"]` in `config.toml`), checked
//! by the core's [`Config::validate`]; this module only maps them to and from the window
//! shapes and names the form field of a refused value.

use std::sync::{Mutex, PoisonError};

use taskbell_core::config::{Config, ConfigError, KindRule, ProjectRule, RULE_KINDS, ToastPolicy};
use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::commands::{CmdError, CmdResult, ErrorKind};
use crate::model::{UiKindRule, UiProjectRule, UiSettings};
use crate::windows::{self, WindowKind};
use crate::{Shared, bridge};

/// Event sent when a folded toast asks the center to show its notifications (no payload:
/// the center takes the keys with `take_shown_keys`, so a center still loading gets them
/// too).
pub const EVENT_SHOW_KEYS: &str = "taskbell://show-keys";

/// Every kind a rule may name, in the config's order, with its rule (the default one when
/// the config has none).
pub fn kind_rules(c: &Config) -> Vec<UiKindRule> {
    RULE_KINDS
        .iter()
        .map(|kind| {
            let rule = c.kinds.get(*kind).cloned().unwrap_or_default();
            UiKindRule {
                kind: (*kind).to_string(),
                policy: rule.policy,
                sound: rule.sound,
            }
        })
        .collect()
}

/// The project rules of the config, by project id.
pub fn project_rules(c: &Config) -> Vec<UiProjectRule> {
    c.projects
        .iter()
        .map(|(project, rule)| UiProjectRule {
            project: project.clone(),
            policy: rule.policy,
        })
        .collect()
}

/// A refused config value as a command error on the form field it names (the config key,
/// e.g. `kinds.mention.sound`, `projects`).
pub fn config_error(e: ConfigError) -> CmdError {
    match &e {
        ConfigError::Invalid { key, .. } => {
            let key = key.clone();
            CmdError::new(ErrorKind::Invalid, e.to_string()).on(&key)
        }
        _ => CmdError::from(e),
    }
}

/// Applies the form's kind and project rules to `c` and checks them with the core's rules
/// (the CLI's): a kind named in the form gets its rule (a rule that says nothing, "show"
/// without a sound, is dropped), a blank sound is the default sound, and the projects
/// are the form's list. Errors name the field.
pub fn apply_rules(mut c: Config, s: &UiSettings) -> CmdResult<Config> {
    for r in &s.kinds {
        let rule = KindRule {
            policy: r.policy,
            sound: r
                .sound
                .as_deref()
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string),
        };
        if rule == KindRule::default() {
            c.kinds.remove(&r.kind);
        } else {
            c.kinds.insert(r.kind.clone(), rule);
        }
    }
    c.projects = s
        .projects
        .iter()
        .map(|r| (r.project.clone(), ProjectRule { policy: r.policy }))
        .collect();
    c.validate().map_err(config_error)?;
    Ok(c)
}

/// The project rules of the account in use.
#[tauri::command]
pub fn get_project_policies<R: Runtime>(app: AppHandle<R>) -> CmdResult<Vec<UiProjectRule>> {
    Ok(project_rules(&bridge::active_config(&app)?))
}

/// Sets one project's toast policy (`None` removes its rule: its toasts show again) in
/// `config.toml`; the running engines apply it at once. Returns every project rule.
#[tauri::command]
pub fn set_project_policy<R: Runtime>(
    app: AppHandle<R>,
    project: String,
    policy: Option<ToastPolicy>,
) -> CmdResult<Vec<UiProjectRule>> {
    let path = bridge::active_paths(&app).config_file();
    let new = Config::update(&path, |c| {
        match policy {
            Some(policy) => {
                c.projects.insert(project.clone(), ProjectRule { policy });
            }
            None => {
                c.projects.remove(&project);
            }
        }
        c.validate().map_err(config_error)
    })?;
    bridge::apply_to_engines(&app, &new);
    Ok(project_rules(&new))
}

/// The keys a folded toast asked the center to show, until the center takes them.
#[derive(Debug, Default)]
pub struct ShownKeys(Mutex<Option<Vec<String>>>);

fn shown_keys<R: Runtime>(app: &AppHandle<R>) -> tauri::State<'_, ShownKeys> {
    if app.try_state::<ShownKeys>().is_none() {
        app.manage(ShownKeys::default());
    }
    app.state::<ShownKeys>()
}

/// A key as the windows see it: with several accounts, `"<account>/<key>"`
/// ([`crate::model::UiNotification::key`]).
fn ui_key(account: Option<&str>, key: &str) -> String {
    match account {
        Some(a) => format!("{a}/{key}"),
        None => key.to_string(),
    }
}

/// A click on a folded toast of `account` (`None`: the single account, or the first one in
/// demo mode): opens the center (or brings it up) showing just those notifications.
pub fn show_folded<R: Runtime>(app: &AppHandle<R>, keys: Vec<String>, account: Option<&str>) {
    let keys = keys.iter().map(|k| ui_key(account, k)).collect();
    *shown_keys(app)
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(keys);
    let lang = app.state::<Shared>().lang();
    if let Err(e) = windows::open(app, WindowKind::Center, lang) {
        tracing::warn!("could not open the center: {e}");
    }
    if let Err(e) = app.emit(EVENT_SHOW_KEYS, ()) {
        tracing::debug!("emit {EVENT_SHOW_KEYS}: {e}");
    }
}

/// The keys a folded toast asked the center to show, once (`None` when there are none
/// waiting).
#[tauri::command]
pub fn take_shown_keys<R: Runtime>(app: AppHandle<R>) -> Option<Vec<String>> {
    shown_keys(&app)
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::{apply_settings, settings_of};

    #[test]
    fn kind_and_project_rules_round_trip_through_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let c = Config::from_toml(
            "[kinds.system]\npolicy = \"store\"\n[projects.\"p-12\"]\npolicy = \"mute\"\n",
        )
        .unwrap();
        let mut s = settings_of(&c);
        let kinds: Vec<&str> = s.kinds.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds, RULE_KINDS, "every kind, in the config's order");
        let system = s.kinds.iter().find(|r| r.kind == "system").unwrap();
        assert_eq!(system.policy, ToastPolicy::Store);
        assert_eq!(
            s.projects,
            [UiProjectRule {
                project: "p-12".into(),
                policy: ToastPolicy::Mute
            }]
        );
        // Change a kind's policy and sound, add a project, remove the old one.
        for r in &mut s.kinds {
            match r.kind.as_str() {
                "mention" => {
                    r.policy = ToastPolicy::Show;
                    r.sound = Some(" bell ".into());
                }
                "system" => r.policy = ToastPolicy::Show,
                "group" => r.policy = ToastPolicy::Mute,
                _ => {}
            }
        }
        s.projects = vec![UiProjectRule {
            project: "项目 7".into(),
            policy: ToastPolicy::Store,
        }];
        let saved = apply_settings(c, &s).unwrap();
        saved.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let back = Config::load(&path).unwrap();
        assert_eq!(
            back.kinds.len(),
            2,
            "rules that say nothing are dropped: {text}"
        );
        assert_eq!(back.kinds["mention"].sound.as_deref(), Some("bell"));
        assert_eq!(back.kinds["group"].policy, ToastPolicy::Mute);
        assert!(!back.kinds.contains_key("system"), "{text}");
        assert_eq!(
            back.projects.keys().collect::<Vec<_>>(),
            ["项目 7"],
            "{text}"
        );
        let again = settings_of(&back);
        assert_eq!(
            again
                .kinds
                .iter()
                .find(|r| r.kind == "mention")
                .unwrap()
                .sound
                .as_deref(),
            Some("bell")
        );
        assert_eq!(again.projects, s.projects);
    }

    #[test]
    fn refused_rules_name_their_field_as_the_cli_config_does() {
        let s = settings_of(&Config::default());
        let bad = |f: &dyn Fn(&mut UiSettings)| {
            let mut b = s.clone();
            f(&mut b);
            apply_settings(Config::default(), &b).unwrap_err()
        };
        // The ui/ tests' stub answers with this very error (fixtures/errors.json).
        let e = bad(&|b| b.kinds[4].sound = Some("my bell".into()));
        let fixtures: serde_json::Value =
            serde_json::from_str(include_str!("../../ui/tests/fixtures/errors.json")).unwrap();
        assert_eq!(serde_json::to_value(&e).unwrap(), fixtures["invalid_sound"]);
        assert_eq!(e.field.as_deref(), Some("kinds.mention.sound"), "{e:?}");
        let e = bad(&|b| {
            b.kinds.push(UiKindRule {
                kind: "task_reviewd".into(),
                policy: ToastPolicy::Mute,
                sound: None,
            })
        });
        assert_eq!(e.field.as_deref(), Some("kinds.task_reviewd"));
        assert!(
            e.message.contains("task_reviewed"),
            "lists the kinds: {e:?}"
        );
        let e = bad(&|b| {
            b.projects.push(UiProjectRule {
                project: "  ".into(),
                policy: ToastPolicy::Mute,
            })
        });
        assert_eq!(e.field.as_deref(), Some("projects"));
    }

    #[test]
    fn keys_of_a_further_account_get_its_prefix() {
        assert_eq!(ui_key(None, "k1"), "k1");
        assert_eq!(ui_key(Some("li@b.example"), "k1"), "li@b.example/k1");
    }
}
