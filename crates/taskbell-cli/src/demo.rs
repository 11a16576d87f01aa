//! `taskbell demo`: the reference server in-process with scripted activity,
//! the demo annotator signed in with an in-memory keyring, and `run`.

use std::time::Duration;

use taskbell_core::config::{Config, Paths};
use taskbell_core::credentials::Credentials;
use taskbell_core::supervisor::sign_in;
use taskbell_server::ServerConfig;

use crate::cli::DemoArgs;
use crate::error::CliError;

/// The demo annotator (built into the reference server's demo data).
pub const DEMO_USER: &str = "zhangsan";
/// Its password.
pub const DEMO_PASSWORD: &str = "annotate-123";

/// Runs `taskbell demo`.
pub async fn demo(args: &DemoArgs) -> Result<(), CliError> {
    let server = taskbell_server::start(ServerConfig {
        demo_activity: Some(Duration::from_secs(args.activity_secs)),
        ..ServerConfig::default()
    })
    .await
    .map_err(|e| CliError::Demo(e.to_string()))?;
    // A throwaway config and history: the demo never touches the user's own
    // account, config or keyring.
    let dir = tempfile::Builder::new()
        .prefix("taskbell-demo-")
        .tempdir()
        .map_err(|e| CliError::Demo(format!("cannot create a temporary directory: {e}")))?;
    let paths = Paths {
        config_dir: dir.path().join("config"),
        data_dir: dir.path().join("data"),
    };
    let credentials = Credentials::in_memory();
    let signed_in = sign_in(
        &paths,
        &credentials,
        &server.base_url(),
        DEMO_USER,
        DEMO_PASSWORD,
        false,
    )
    .await
    .map_err(CliError::Login)?;
    let banner = format!(
        "TaskBell demo: reference server at {} with an event every {} s; signed in as {} ({} / {}). \
         Reviewer: lisi / review-123, admin: admin / admin-123. Ctrl-C stops.",
        server.base_url(),
        args.activity_secs,
        signed_in.user.real_name,
        DEMO_USER,
        DEMO_PASSWORD
    );
    if args.events.is_some() {
        tracing::info!("{banner}");
    } else {
        say!("{banner}");
    }
    let config = Config::load(&paths.config_file())?;
    let result = crate::run::run_engine(config, paths, credentials, args.events).await;
    server.shutdown().await;
    drop(dir);
    result
}
