//! The command line (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// TaskBell: desktop notifications from an annotation platform, without a tray.
#[derive(Debug, Parser)]
#[command(name = "taskbell", version, about, propagate_version = true)]
pub struct Cli {
    /// Where config.toml lives [default: $TASKBELL_CONFIG_DIR, else ~/.config/taskbell].
    // The environment variables are read by `Paths::resolve` (which ignores
    // empty values), not by clap (which would reject them).
    #[arg(long, global = true, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// Where the notification history lives [default: $TASKBELL_DATA_DIR, else
    /// ~/.local/share/taskbell].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign in; the token goes to the OS keyring, server and user name to the config.
    /// Signing in as another user or on another server adds an account.
    Login(LoginArgs),
    /// Sign out of one account: revoke the token where possible and remove it from
    /// the keyring.
    Logout(LogoutArgs),
    /// List the accounts, whether each is signed in, and their unread counts.
    Accounts(AccountsArgs),
    /// Run in the foreground, every signed-in account at once: login summary, live
    /// notifications, reconnects.
    Run(RunArgs),
    /// Show the account, keyring, notification daemon, unread count and last state.
    Status(StatusArgs),
    /// List past notifications, newest first.
    History(HistoryArgs),
    /// Start the reference server in-process with demo activity and run against it
    /// as the demo annotator (nothing is written to your config or keyring).
    Demo(DemoArgs),
}

/// `taskbell login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Platform base URL, e.g. https://annotate.example.com.
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// User name.
    #[arg(long, value_name = "NAME")]
    pub username: String,
    /// Read the password from the first line of standard input instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
    /// Also keep the password in the keyring, to sign in again silently when the
    /// token expires.
    #[arg(long)]
    pub remember: bool,
}

/// `taskbell logout`.
#[derive(Debug, Args, Default)]
pub struct LogoutArgs {
    /// The account (`user@host` as `taskbell accounts` lists it, or a user name
    /// only one account has); may be left out when there is one account.
    pub account: Option<String>,
}

/// `taskbell accounts`.
#[derive(Debug, Args, Default)]
pub struct AccountsArgs {
    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
}

/// Output formats of `run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventFormat {
    /// One JSON object per event on stdout (logs stay on stderr).
    Json,
}

/// `taskbell run`.
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// Print events for scripts instead of human-readable lines.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub events: Option<EventFormat>,
}

/// `taskbell status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Which account [default: the first].
    #[arg(long, value_name = "ACCOUNT")]
    pub account: Option<String>,
}

/// `taskbell history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only unread notifications.
    #[arg(long)]
    pub unread: bool,
    /// At most this many.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub limit: u32,
    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
    /// Which account [default: the first].
    #[arg(long, value_name = "ACCOUNT")]
    pub account: Option<String>,
}

/// `taskbell demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seconds between scripted platform events (submissions, reviews, notices).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub activity_secs: u64,
    /// Print events for scripts instead of human-readable lines.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub events: Option<EventFormat>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_the_documented_forms() {
        let cli = Cli::try_parse_from([
            "taskbell",
            "login",
            "--server",
            "https://a.example",
            "--username",
            "zhangsan",
            "--password-stdin",
            "--remember",
            "--config-dir",
            "/c",
        ])
        .unwrap();
        assert_eq!(cli.config_dir.as_deref(), Some(std::path::Path::new("/c")));
        match cli.command {
            Command::Login(a) => {
                assert_eq!(a.server, "https://a.example");
                assert!(a.password_stdin && a.remember);
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["taskbell", "run", "--events", "json"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Run(RunArgs {
                events: Some(EventFormat::Json)
            })
        ));
        let cli = Cli::try_parse_from(["taskbell", "history", "--unread", "--limit", "5"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::History(HistoryArgs {
                unread: true,
                limit: 5,
                json: false,
                account: None,
            })
        ));
        let cli = Cli::try_parse_from(["taskbell", "logout", "lisi@b.example"]).unwrap();
        match cli.command {
            Command::Logout(a) => assert_eq!(a.account.as_deref(), Some("lisi@b.example")),
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["taskbell", "accounts", "--json"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Accounts(AccountsArgs { json: true })
        ));
    }

    #[test]
    fn refuses_bad_usage() {
        for args in [
            &["taskbell", "history", "--limit", "0"][..],
            &["taskbell", "run", "--events", "xml"],
            &["taskbell", "login", "--username", "x"],
            &["taskbell", "demo", "--activity-secs", "0"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }
}
