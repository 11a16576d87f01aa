//! The reference server in-process, restartable on the same port, and the REST calls the
//! scenarios need (its `/api/test/...` controls and the admin revocation).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use taskbell_server::{RunningServer, ServerConfig};

use crate::Result;

/// A reference server (test controls on) that can be killed and restarted on the same address.
#[derive(Debug)]
pub struct Platform {
    config: ServerConfig,
    server: Option<RunningServer>,
    addr: SocketAddr,
    http: reqwest::Client,
}

impl Platform {
    /// Starts a server with test controls, the demo data unless `config.data` says otherwise,
    /// and `redis` when given.
    pub async fn start(mut config: ServerConfig) -> Result<Platform> {
        config.test_controls = true;
        let server = taskbell_server::start(config.clone())
            .await
            .context("starting the reference server")?;
        let addr = server.addr();
        config.listen = addr;
        let http = http_client()?;
        Ok(Platform {
            config,
            server: Some(server),
            addr,
            http,
        })
    }

    /// Starts with the defaults plus `redis_url`.
    pub async fn demo(redis_url: Option<String>) -> Result<Platform> {
        Platform::start(ServerConfig {
            redis_url,
            ..ServerConfig::default()
        })
        .await
    }

    /// The listen address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether it runs.
    pub fn is_up(&self) -> bool {
        self.server.is_some()
    }

    /// Open WebSockets (0 while down).
    pub fn socket_count(&self) -> usize {
        self.server.as_ref().map_or(0, RunningServer::socket_count)
    }

    /// Stops abruptly, as a crash would: sockets are cut without a close frame.
    pub fn kill(&mut self) {
        self.server = None;
    }

    /// Starts again on the same address (retrying while the old listener is released);
    /// returns when it accepts connections.
    pub async fn restart(&mut self) -> Result<Instant> {
        self.server = None;
        // A fresh connection pool: the old one's keep-alive connections died with the server.
        self.http = http_client()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match taskbell_server::start(self.config.clone()).await {
                Ok(s) => {
                    self.server = Some(s);
                    return Ok(Instant::now());
                }
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "restart: address not free yet");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(anyhow!("restarting on {}: {e}", self.addr)),
            }
        }
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Result<Value> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base_url()))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.with_context(|| format!("POST {path}"))?;
        let status = resp.status();
        let v: Value = resp.json().await.with_context(|| format!("POST {path}"))?;
        if !status.is_success() || v["success"] != json!(true) {
            bail!("POST {path}: {status} {v}");
        }
        Ok(v["data"].clone())
    }

    /// A fresh token for `username` (test control; no password) and the user's id.
    pub async fn token(&self, username: &str) -> Result<(String, String)> {
        let d = self
            .post(
                "/api/test/token",
                None,
                json!({"username": username, "ttl_secs": 86_400 * 30}),
            )
            .await?;
        let token = d["access_token"]
            .as_str()
            .ok_or_else(|| anyhow!("no access_token in {d}"))?
            .to_string();
        let id = match &d["user"]["id"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => bail!("no user id in {other}"),
        };
        Ok((token, id))
    }

    /// Publishes `count` notifications to one user (type `test`, normal priority); with
    /// `count > 1` the contents get ` #i`.
    pub async fn notify_user(&self, user_id: &str, title: &str, count: u32) -> Result<()> {
        self.post(
            "/api/test/notify",
            None,
            json!({"user_id": user_id, "title": title, "content": title, "count": count}),
        )
        .await
        .map(|_| ())
    }

    /// Publishes one notification to every user of a role.
    pub async fn notify_role(&self, role: &str, title: &str) -> Result<()> {
        self.post(
            "/api/test/notify",
            None,
            json!({"role": role, "title": title, "content": title}),
        )
        .await
        .map(|_| ())
    }

    /// Revokes every token of `user_id` (as the demo admin); live sockets close with 4001.
    pub async fn revoke(&self, user_id: &str) -> Result<()> {
        let (admin, _) = self.token(taskbell_server::DEMO_ADMIN.username).await?;
        self.post(
            &format!("/api/admin/users/{user_id}/revoke-tokens"),
            Some(&admin),
            json!({}),
        )
        .await
        .map(|_| ())
    }
}

fn http_client() -> Result<reqwest::Client> {
    taskbell_testkit::http::install_tls_provider();
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(8)
        .build()?)
}
