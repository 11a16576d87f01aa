//! The command line (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// TaskBell: desktop notifications from an annotation platform, without a tray.
#[derive(Debug, Parser)]
#[command(name = "taskbell", version, about, propagate_version = true)]
pub struct Cli {
    /// Where config.toml lives (default: ~/.config/taskbell).
    #[arg(long, global = true, env = "TASKBELL_CONFIG_DIR", value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// Where the notification history lives (default: ~/.local/share/taskbell).
    #[arg(long, global = true, env = "TASKBELL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign in; the token goes to the OS keyring, server and user name to the config.
    Login(LoginArgs),
    /// Sign out: revoke the token where possible and remove it from the keyring.
    Logout,
    /// Run in the foreground: login summary, live notifications, reconnects.
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
