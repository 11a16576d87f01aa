//! The test helpers TaskBell's test suites share: real processes and sockets
//! that clean up after themselves, and the REST calls the tests make.
//!
//! Integration tests of `taskbell-core` and `taskbell-server`, the benchmarks
//! (`taskbell-bench`) and the end-to-end harness (`taskbell-e2e`, which builds
//! the private desktop on top of this crate) all use these, so each helper
//! exists once. The crate depends on neither the reference server nor the
//! engine (the server's own tests use it), and on no GUI crate.
//!
//! Every guard starts on free resources (port 0, or a just-freed port with
//! retries when a program cannot report the port it bound), waits until the
//! piece is ready by asking it, and kills it on `Drop`.
//!
//! # Layout
//!
//! - [`error`]: [`HarnessError`], the one error type (a missing program says
//!   how to install it), and [`Result`].
//! - [`process`]: [`ChildGuard`] (SIGKILL and reap on drop, stderr to a log
//!   file, stdout collected line by line), [`LineCollector`], [`wait_until`].
//! - [`services`]: [`Redis`] (a throwaway `redis-server` on a free port),
//!   [`ServerProcess`] (the real `taskbell-server` binary on port 0,
//!   restartable on the same port), [`binary`] (the workspace binaries, built
//!   once) and [`free_port`].
//! - [`proxy`]: [`Proxy`], a loopback TCP proxy that can black-hole its
//!   connections (a half-open path); the fault harness of `taskbell-bench`
//!   runs it at run time too.
//! - [`http`]: REST calls to the reference server that panic with the status
//!   and body when it does not answer as expected ([`http::login`],
//!   [`http::notify_user`], …).
//!
//! # Example
//!
//! ```no_run
//! use taskbell_testkit::{Proxy, Redis, ServerOptions, ServerProcess};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let redis = Redis::start()?;
//! let server = ServerProcess::start(ServerOptions {
//!     redis_url: Some(redis.url()),
//!     extra_args: vec!["--test-controls".into()],
//!     ..ServerOptions::default()
//! })?;
//! let proxy = Proxy::start(server.addr()).await?;
//! let token = taskbell_testkit::http::login(&proxy.base_url(), "zhangsan", "annotate-123").await;
//! proxy.black_hole(); // every connection through the proxy now hangs
//! # drop(token); Ok(()) }
//! ```
//!
//! # Features
//!
//! - `zbus`: `From<zbus::Error>` for [`HarnessError`], for harnesses that talk
//!   D-Bus (`taskbell-e2e`).

pub mod error;
pub mod http;
pub mod process;
pub mod proxy;
pub mod services;

pub use error::{HarnessError, Result, io_err};
pub use process::{
    ChildGuard, LineCollector, START_TIMEOUT, Stdout, note_if_slow, tail, wait_until,
};
pub use proxy::Proxy;
pub use services::{Redis, ServerOptions, ServerProcess, WORKSPACE_BINARIES, binary, free_port};
