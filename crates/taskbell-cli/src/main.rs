//! The `taskbell` command: TaskBell without a tray.
//!
//! `taskbell login` signs in (token to the OS keyring), `taskbell run` keeps
//! the notification socket in the foreground (for a terminal, a tiling window
//! manager or a systemd user unit), `taskbell status` and `taskbell history`
//! look at the account and the stored notifications, `taskbell logout` signs
//! out, and `taskbell demo` runs everything against the reference server
//! in-process.
//!
//! # Layout
//!
//! - `cli`: the clap definitions.
//! - `account`: login and logout.
//! - `run`: the engine in the foreground, its output, signals, `state.json`.
//! - `info`: status and history.
//! - `demo`: the in-process reference server plus `run`.
//! - `error`: [`CliError`](error::CliError); every error is printed as one
//!   line (`taskbell: …`) with exit code 1, or 3 when only the user can fix
//!   it (not signed in, session ended, access denied). Usage errors come from
//!   clap (exit code 2).

/// `println!` for text that may hold other people's words (titles, names, server
/// messages): every control character but the newline is escaped, so nothing
/// printed can drive the terminal. All human output goes through it.
macro_rules! say {
    ($($arg:tt)*) => {
        println!("{}", taskbell_core::sanitize::terminal_text(&format!($($arg)*)))
    };
}

/// `println!` for serialised JSON: C1 controls and bidi characters, which
/// serde_json leaves raw, become `\u` escapes.
macro_rules! say_json {
    ($text:expr) => {
        println!("{}", taskbell_core::sanitize::json_line(&$text))
    };
}

mod account;
mod cli;
#[cfg(feature = "demo")]
mod demo;
mod error;
mod info;
mod run;

use std::process::ExitCode;
use std::sync::OnceLock;

use clap::Parser;
use taskbell_core::config::Paths;
use taskbell_core::sanitize::{self, SafeMakeWriter};
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, EventFormat};
use crate::error::CliError;

/// The local UTC offset, read before any thread starts (the `time` crate
/// refuses later).
pub(crate) static LOCAL_OFFSET: OnceLock<time::UtcOffset> = OnceLock::new();

fn init_tracing(command: &Command) {
    let json_events = matches!(
        command,
        Command::Run(cli::RunArgs {
            events: Some(EventFormat::Json)
        }) | Command::Demo(cli::DemoArgs {
            events: Some(EventFormat::Json),
            ..
        })
    );
    let runs = matches!(command, Command::Run(_) | Command::Demo(_));
    // Human output goes to stdout and errors are one line on stderr, so logs
    // stay quiet unless asked for (RUST_LOG); a running daemon logs warnings;
    // with `--events json`, stderr carries the human log lines.
    let default = if json_events {
        "info,taskbell_server=warn"
    } else if runs {
        "warn,taskbell_server=error"
    } else {
        "error"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Every log line goes through the sanitiser: secrets redacted whatever RUST_LOG
    // lets through (tungstenite logs the handshake at trace), and control characters
    // escaped (titles and server messages are other people's text). No colours: they
    // are escapes too.
    tracing_subscriber::fmt()
        .with_writer(SafeMakeWriter::stderr())
        .with_ansi(false)
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

async fn dispatch(cli: Cli) -> Result<(), CliError> {
    if let Command::Demo(args) = &cli.command {
        #[cfg(feature = "demo")]
        return demo::demo(args).await;
        #[cfg(not(feature = "demo"))]
        {
            let _ = args;
            return Err(CliError::NoDemo);
        }
    }
    let paths = Paths::resolve(cli.config_dir, cli.data_dir)?;
    match &cli.command {
        Command::Login(args) => account::login(&paths, args).await,
        Command::Logout(args) => account::logout(&paths, args).await,
        Command::Accounts(args) => account::accounts(&paths, args).await,
        Command::Run(args) => run::run(paths, args).await,
        Command::Status(args) => {
            info::status(&account::select(&paths, args.account.as_deref())?, args).await
        }
        Command::History(args) => {
            info::history(&account::select(&paths, args.account.as_deref())?, args)
        }
        Command::Demo(_) => Ok(()),
    }
}

fn main() -> ExitCode {
    let _ = LOCAL_OFFSET.set(taskbell_core::supervisor::local_offset());
    let cli = Cli::parse();
    init_tracing(&cli.command);
    // One thread: the engine is one event loop; keyring calls and toasts have
    // threads of their own. A multi-threaded runtime kept a second worker (and its
    // wake-ups) for nothing (issue 13).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("taskbell: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(cli));
    // Do not wait for blocking tasks (a keyring call stuck on D-Bus) at exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("taskbell: {}", sanitize::terminal_line(&e.one_line()));
            ExitCode::from(e.exit_code())
        }
    }
}
