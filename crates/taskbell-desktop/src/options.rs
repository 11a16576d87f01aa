//! The command line of `taskbell-app`: `--demo`, `--open <window>`, `--lang`, and what
//! autostart passes.

use crate::model::{Lang, WindowKind};

/// How the app was started (from the command line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `--demo`: run against the embedded reference server as the demo annotator.
    pub demo: bool,
    /// Create the tray icon (off in tests with the mock runtime, which has no tray).
    pub tray: bool,
    /// `--open <window>`: open this window at start (used by tests and the desktop entry).
    pub open: Option<WindowKind>,
    /// `--lang zh-CN|en`: override the language.
    pub lang: Option<Lang>,
    /// `--windows-for SOCKET`: be the window process of the tray process listening on
    /// `SOCKET` (it starts us so; `crate::ipc`): windows only, no tray, no engine.
    pub windows_for: Option<std::path::PathBuf>,
}

/// Why the command line was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    /// An argument that means nothing.
    #[error("unknown argument {0:?} (try --help)")]
    Unknown(String),
    /// A flag without its value.
    #[error("{0} needs a value")]
    Missing(&'static str),
    /// A value that is not allowed.
    #[error("{flag}: {value:?} is not one of {allowed}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// What was given.
        value: String,
        /// What is allowed.
        allowed: &'static str,
    },
    /// `--help` was asked for.
    #[error("{USAGE}")]
    Help,
}

/// The command-line help.
pub const USAGE: &str =
    "usage: taskbell-app [--demo] [--open login|center|settings|diagnostics] [--lang zh-CN|en]

  --demo     start the embedded demo server and sign in as the demo annotator
             (also what happens when no server is configured)
  --open W   open window W at start
  --lang L   language of the tray and windows (default: the system's)
  --windows-for SOCKET
             (internal) serve the windows of the tray process on SOCKET";

impl Options {
    /// Parses the command line (without the program name).
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Self, ArgsError> {
        let mut o = Options {
            tray: true,
            ..Options::default()
        };
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--demo" => o.demo = true,
                "--open" => {
                    let v = it.next().ok_or(ArgsError::Missing("--open"))?;
                    let kind = WindowKind::ALL.into_iter().find(|k| k.label() == v);
                    o.open = Some(kind.ok_or(ArgsError::Invalid {
                        flag: "--open",
                        value: v,
                        allowed: "login, center, settings, diagnostics",
                    })?);
                }
                "--lang" => {
                    let v = it.next().ok_or(ArgsError::Missing("--lang"))?;
                    o.lang = Some(match v.as_str() {
                        "zh-CN" | "zh" => Lang::ZhCn,
                        "en" => Lang::En,
                        _ => {
                            return Err(ArgsError::Invalid {
                                flag: "--lang",
                                value: v,
                                allowed: "zh-CN, en",
                            });
                        }
                    });
                }
                "--windows-for" => {
                    let v = it.next().ok_or(ArgsError::Missing("--windows-for"))?;
                    o.windows_for = Some(v.into());
                }
                "-h" | "--help" => return Err(ArgsError::Help),
                // Autostart launches with this; it only means "start in the tray", the default.
                "--minimized" => {}
                _ => return Err(ArgsError::Unknown(a)),
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn parses_demo_open_and_lang() {
        let o = Options::parse(args(&["--demo", "--open", "center", "--lang", "zh-CN"])).unwrap();
        assert!(o.demo && o.tray);
        assert_eq!(o.open, Some(WindowKind::Center));
        assert_eq!(o.lang, Some(Lang::ZhCn));
        assert_eq!(
            Options::parse(args(&[])).unwrap(),
            Options {
                tray: true,
                ..Options::default()
            }
        );
    }

    #[test]
    fn refuses_bad_arguments_with_a_reason() {
        assert_eq!(
            Options::parse(args(&["--bogus"])),
            Err(ArgsError::Unknown("--bogus".into()))
        );
        assert_eq!(
            Options::parse(args(&["--open"])),
            Err(ArgsError::Missing("--open"))
        );
        let e = Options::parse(args(&["--open", "kitchen"])).unwrap_err();
        assert!(e.to_string().contains("login, center"), "{e}");
        assert!(matches!(
            Options::parse(args(&["--lang", "fr"])),
            Err(ArgsError::Invalid { .. })
        ));
        assert_eq!(Options::parse(args(&["--help"])), Err(ArgsError::Help));
        assert_eq!(
            Options::parse(args(&["--windows-for"])),
            Err(ArgsError::Missing("--windows-for"))
        );
        assert_eq!(
            Options::parse(args(&["--windows-for", "/run/t.sock"]))
                .unwrap()
                .windows_for,
            Some("/run/t.sock".into())
        );
    }
}
