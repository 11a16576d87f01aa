//! The mute and sound rules as the settings window shows them: every kind with its policy
//! and sound, the project rules. The rules themselves are the core's (`[kinds.NAME]`,
//! `[projects."ID"]` in `config.toml`), checked by the core's `Config::validate`; this only
//! maps them to and from the window's shapes.

use taskbell_core::config::{Config, KindRule, ProjectRule, RULE_KINDS};

use crate::error::{CmdResult, config_error};
use crate::model::{UiKindRule, UiProjectRule, UiSettings};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{apply_settings, settings_of};
    use taskbell_core::config::ToastPolicy;

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
            serde_json::from_str(include_str!("../../../../ui/tests/fixtures/errors.json"))
                .unwrap();
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
}
