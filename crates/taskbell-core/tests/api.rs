//! The REST client against the reference server (and two tiny raw-TCP stubs): each kind of
//! failure a user can meet becomes its own `ApiError` with a readable message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;
use taskbell_core::api::{Api, ApiError, parse_server_url};
use taskbell_core::protocol::Role;
use taskbell_server::{DEMO_ANNOTATOR, DEMO_REVIEWER, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

fn api(base: &str) -> Api {
    Api::new(Url::parse(base).unwrap()).unwrap()
}

#[tokio::test]
async fn login_me_and_wrong_password() {
    let s = server().await;
    let a = api(&s.base_url());
    let ok = a
        .login(DEMO_ANNOTATOR.username, DEMO_ANNOTATOR.password)
        .await
        .unwrap();
    assert_eq!(ok.user.username, DEMO_ANNOTATOR.username);
    assert_eq!(ok.user.role, Role::Annotator);
    assert!(
        !format!("{ok:?}").contains(ok.token.expose()),
        "token redacted"
    );
    let me = a.clone().with_token(ok.token.clone()).me().await.unwrap();
    assert_eq!(me.id, DEMO_ANNOTATOR.id);

    let e = a.login(DEMO_ANNOTATOR.username, "wrong").await.unwrap_err();
    assert_eq!(
        e,
        ApiError::Unauthorized("wrong user name or password".into())
    );
    let e = a
        .clone()
        .with_token(taskbell_core::api::SecretToken::new("garbage".into()))
        .me()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ApiError::Unauthorized(m) if m.contains("sign in again")),
        "{e}"
    );
}

#[tokio::test]
async fn rate_limited_login_carries_retry_after() {
    let s = taskbell_server::start(ServerConfig {
        login_max_failures: 2,
        ..server_config()
    })
    .await
    .unwrap();
    let a = api(&s.base_url());
    let mut last = None;
    for _ in 0..4 {
        last = Some(a.login(DEMO_ANNOTATOR.username, "wrong").await.unwrap_err());
    }
    match last.unwrap() {
        ApiError::RateLimited { retry_after } => {
            let d = retry_after.expect("Retry-After parsed");
            assert!(d.as_secs() >= 1, "{d:?}");
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

#[tokio::test]
async fn summary_counts_per_role_match_the_lists() {
    let s = server().await;
    let base = s.base_url();
    let a = api(&base);
    let zs = a
        .login(DEMO_ANNOTATOR.username, DEMO_ANNOTATOR.password)
        .await
        .unwrap();
    let za = a.clone().with_token(zs.token.clone());
    let tasks = za.my_tasks(None).await.unwrap();
    let c = za.summary_counts(&zs.user).await.unwrap();
    assert_eq!(
        c.rejected as usize,
        tasks.iter().filter(|t| t.status == "rejected").count()
    );
    assert_eq!(
        c.in_progress as usize,
        tasks.iter().filter(|t| t.status == "in_progress").count()
    );
    assert!(c.rejected >= 1 && c.in_progress >= 1, "{c:?}");
    assert_eq!(
        za.my_tasks(Some("rejected")).await.unwrap().len(),
        c.rejected as usize
    );

    let ls = a
        .login(DEMO_REVIEWER.username, DEMO_REVIEWER.password)
        .await
        .unwrap();
    let la = a.clone().with_token(ls.token.clone());
    let c = la.summary_counts(&ls.user).await.unwrap();
    assert_eq!(c.role, Role::Reviewer);
    assert_eq!(
        c.pending_reviews as usize,
        la.submitted_tasks().await.unwrap().len()
    );
    assert_eq!(
        c.pending_skips as usize,
        la.pending_skip_requests().await.unwrap().len()
    );
    assert!(c.pending_reviews >= 1, "{c:?}");
}

#[tokio::test]
async fn notifications_since_pages_and_marks_read() {
    let s = server().await;
    let base = s.base_url();
    let a = api(&base);
    let ok = a
        .login(DEMO_ANNOTATOR.username, DEMO_ANNOTATOR.password)
        .await
        .unwrap();
    let za = a.with_token(ok.token);
    for i in 0..5 {
        notify_user(&base, DEMO_ANNOTATOR.id, &format!("历史-{i}")).await;
    }
    let p1 = za.notifications_since(None, 3).await.unwrap().unwrap();
    assert_eq!(p1.list.len(), 3);
    assert_eq!(p1.list[0].content, "历史-0");
    let p2 = za
        .notifications_since(p1.last_id.as_deref(), 3)
        .await
        .unwrap()
        .unwrap();
    let rest: Vec<_> = p2.list.iter().map(|n| n.content.as_str()).collect();
    assert_eq!(rest, ["历史-3", "历史-4"]);
    let ids: Vec<String> = p2.list.iter().filter_map(|n| n.id.clone()).collect();
    assert!(za.mark_read(&ids).await.unwrap());
    // A server that keeps no history answers 404: None, not an error.
    post(
        &base,
        "/api/test/fail",
        None,
        json!({"path": "/api/notifications", "status": 404}),
    )
    .await;
    assert!(za.notifications_since(None, 3).await.unwrap().is_none());
}

#[tokio::test]
async fn server_errors_and_unreachable_servers_are_told_apart() {
    let s = server().await;
    let base = s.base_url();
    let a = api(&base);
    let ok = a
        .login(DEMO_ANNOTATOR.username, DEMO_ANNOTATOR.password)
        .await
        .unwrap();
    post(
        &base,
        "/api/test/fail",
        None,
        json!({"path": "/api/auth/me", "status": 502}),
    )
    .await;
    let e = a.clone().with_token(ok.token).me().await.unwrap_err();
    assert!(matches!(e, ApiError::Server { status: 502, .. }), "{e:?}");
    assert!(e.is_transient());
    assert!(e.to_string().contains("internal problem"), "{e}");

    // Nothing listens on this port: it is kept bound but never listening, so connects are
    // refused and nothing else can take it meanwhile.
    let refusing = tokio::net::TcpSocket::new_v4().unwrap();
    refusing.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = refusing.local_addr().unwrap().port();
    let e = api(&format!("http://127.0.0.1:{port}"))
        .login("a", "b")
        .await
        .unwrap_err();
    drop(refusing);
    assert!(matches!(e, ApiError::Network(_)), "{e:?}");
    assert!(e.to_string().starts_with("cannot reach the server"), "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    println!("unreachable: {e}");

    // https to a plain-HTTP server: a TLS failure, not "unreachable".
    let e = api(&base.replacen("http://", "https://", 1))
        .login("a", "b")
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Tls(_)), "{e:?}");
    println!("tls: {e}");

    assert!(matches!(
        parse_server_url("not a url"),
        Err(ApiError::BadUrl(_))
    ));
}

/// A raw TCP stub that answers every connection with `response` (after reading the request).
async fn stub(response: &'static [u8]) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf).await;
                let _ = c.write_all(response).await;
                let _ = c.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn non_json_answers_and_silent_servers() {
    let base = stub(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 15\r\n\r\n<html>hi</html>",
    )
    .await;
    let e = api(&base).login("a", "b").await.unwrap_err();
    assert!(matches!(e, ApiError::BadResponse(_)), "{e:?}");
    assert!(e.to_string().contains("unexpected answer"), "{e}");

    // A server that accepts and never answers: the request timeout.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((c, _)) = l.accept().await {
            held.push(c);
        }
    });
    let a = Api::with_timeouts(
        Url::parse(&format!("http://{addr}")).unwrap(),
        std::time::Duration::from_secs(5),
        std::time::Duration::from_millis(500),
    )
    .unwrap();
    assert_eq!(a.login("a", "b").await.unwrap_err(), ApiError::Timeout);
    hold.abort();
}

#[tokio::test]
async fn sign_in_and_sign_out_keep_secrets_in_the_keyring_only() {
    use taskbell_core::config::{Config, Paths};
    use taskbell_core::credentials::Credentials;
    use taskbell_core::supervisor::{SignInError, sign_in, sign_out};

    let s = server().await;
    let base = s.base_url();
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths {
        config_dir: dir.path().join("c"),
        data_dir: dir.path().join("d"),
    };
    let creds = Credentials::in_memory();

    // Wrong password: a clear error, nothing stored.
    let e = sign_in(
        &paths,
        &creds,
        &base,
        DEMO_ANNOTATOR.username,
        "wrong",
        true,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, SignInError::Api(ApiError::Unauthorized(_))),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "wrong user name or password");
    assert!(
        creds
            .load_password(&base, DEMO_ANNOTATOR.username)
            .unwrap()
            .is_none()
    );
    // Plain http to a remote host is refused before any request.
    let e = sign_in(
        &paths,
        &creds,
        "http://annotate.example.com",
        "u",
        "p",
        false,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, SignInError::Config(_)), "{e:?}");
    let e = sign_in(&paths, &creds, &base, " ", "p", false)
        .await
        .unwrap_err();
    assert!(matches!(e, SignInError::Invalid(_)), "{e:?}");

    // Success with remember-me: token and password in the keyring, never in the config file.
    let ok = sign_in(
        &paths,
        &creds,
        &base,
        DEMO_ANNOTATOR.username,
        DEMO_ANNOTATOR.password,
        true,
    )
    .await
    .unwrap();
    assert_eq!(ok.user.real_name, DEMO_ANNOTATOR.real_name);
    let token = creds
        .load_token(&ok.server, DEMO_ANNOTATOR.username)
        .unwrap()
        .unwrap();
    assert_eq!(
        creds
            .load_password(&ok.server, DEMO_ANNOTATOR.username)
            .unwrap()
            .as_deref(),
        Some(DEMO_ANNOTATOR.password)
    );
    let file = std::fs::read_to_string(paths.config_file()).unwrap();
    assert!(!file.contains(token.expose()) && !file.contains(DEMO_ANNOTATOR.password));
    let cfg = Config::load(&paths.config_file()).unwrap();
    assert_eq!(cfg.username.as_deref(), Some(DEMO_ANNOTATOR.username));
    assert!(cfg.remember_me);

    // Sign-out revokes the token on the server and clears the keyring.
    sign_out(&paths, &creds).await.unwrap();
    assert!(
        creds
            .load_token(&ok.server, DEMO_ANNOTATOR.username)
            .unwrap()
            .is_none()
    );
    assert!(
        creds
            .load_password(&ok.server, DEMO_ANNOTATOR.username)
            .unwrap()
            .is_none()
    );
    let e = api(&base).with_token(token).me().await.unwrap_err();
    assert!(matches!(e, ApiError::Unauthorized(_)), "revoked: {e:?}");
    assert!(!Config::load(&paths.config_file()).unwrap().remember_me);
}
