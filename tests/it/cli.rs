//! The command line: first-start password, `token` and `user` with and without a running
//! server, configuration precedence and errors, secret-file permissions, supplied certificates,
//! and `explain` on a real log.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use reqwest::StatusCode;

use crate::common::{BIN, Start, TestServer, cli, event};

#[tokio::test]
async fn first_start_prints_a_generated_admin_password_once() {
    let dir = tempfile::tempdir().unwrap();
    let start = Start {
        no_admin_password: true,
        ..Start::default()
    };
    let mut server = TestServer::start(dir.path(), start.clone()).await;
    let stdout = server.stdout();
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("First start: created user `admin` with password: "))
        .unwrap_or_else(|| panic!("no password in {stdout}"))
        .to_string();
    let (status, _) = server.login("admin", &password).await;
    assert_eq!(status, StatusCode::OK);

    assert!(server.terminate().success());
    drop(server);
    let server = TestServer::start(dir.path(), start).await;
    assert_eq!(
        server.stdout().matches("with password").count(),
        1,
        "printed again on restart"
    );

    let key = dir.path().join("data/keys/jwt.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let db = dir.path().join("data/securify.redb");
    assert_eq!(
        std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// Every file and directory under `root` with permissions for group or others.
fn loose_modes(root: &std::path::Path) -> Vec<String> {
    let mut loose = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.permissions().mode() & 0o077 != 0 {
            loose.push(format!(
                "{} {:o}",
                path.display(),
                meta.permissions().mode()
            ));
        }
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    loose
}

#[tokio::test]
async fn the_data_directory_is_private_and_a_loose_one_is_tightened() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A directory made by hand (or by an earlier version) with a loose umask.
    std::fs::create_dir_all(data.join("extra")).unwrap();
    std::fs::write(data.join("extra/notes.txt"), "x").unwrap();
    for (path, mode) in [(&data, 0o755), (&data.join("extra"), 0o775)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::set_permissions(
        data.join("extra/notes.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let mut server = TestServer::start(dir.path(), Start::default()).await;
    assert!(
        crate::common::logs_of(dir.path()).contains("readable by other users"),
        "no warning"
    );
    // Events stored and indexed: the index's files are private too.
    let token = server.api_token(&["ingest", "read"]).await;
    let (status, _) = server
        .post_json("/ingest", Some(&token), &event("private-1"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(server.terminate().success());
    assert_eq!(loose_modes(&data), Vec::<String>::new());
}

#[tokio::test]
async fn tokens_and_users_through_the_socket_and_on_a_stopped_server() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut server = TestServer::start(root, Start::default()).await;

    // Server running: the CLI goes through the admin socket and the change is live at once.
    let (status, token, stderr) = cli(
        root,
        &["token", "create", "--name", "cli", "--scope", "ingest"],
        None,
    );
    assert!(status.success(), "{stderr}");
    let token = token.trim().to_string();
    assert!(token.starts_with("sfy_"), "{token}");
    assert_eq!(
        server
            .post_json("/ingest", Some(&token), &event("via-cli"))
            .await
            .0,
        StatusCode::ACCEPTED
    );
    let id = &token[4..20];
    let (status, list, _) = cli(root, &["token", "list"], None);
    assert!(status.success());
    assert!(list.contains(id) && list.contains("active"), "{list}");
    let (status, _, stderr) = cli(root, &["token", "revoke", id], None);
    assert!(status.success(), "{stderr}");
    assert_eq!(
        server
            .post_json("/ingest", Some(&token), &event("after"))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _, stderr) = cli(root, &["token", "revoke", "0000000000000000"], None);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("no token with id"), "{stderr}");

    let (status, _, stderr) = cli(
        root,
        &[
            "user",
            "add",
            "ann",
            "--role",
            "analyst",
            "--password-stdin",
        ],
        Some("analyst password 1\n"),
    );
    assert!(status.success(), "{stderr}");
    let (status, _, stderr) = cli(
        root,
        &["user", "add", "bo", "--password-stdin"],
        Some("short\n"),
    );
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("at least 12"), "{stderr}");
    let (status, _) = server.login("ann", "analyst password 1").await;
    assert_eq!(status, StatusCode::OK);

    // Server stopped: the CLI opens the database itself.
    assert!(server.terminate().success());
    drop(server);
    let (status, created, stderr) = cli(
        root,
        &[
            "token", "create", "--name", "offline", "--scope", "read", "--json",
        ],
        None,
    );
    assert!(status.success(), "{stderr}");
    let created: serde_json::Value = serde_json::from_str(&created).unwrap();
    let offline = created["token"].as_str().unwrap().to_string();
    let (status, users, _) = cli(root, &["user", "list"], None);
    assert!(status.success());
    assert!(
        users.contains("ann") && users.contains("analyst") && users.contains("admin"),
        "{users}"
    );
    let (status, list, _) = cli(root, &["token", "list", "--json"], None);
    assert!(status.success());
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let tokens = list["tokens"].as_array().unwrap();
    let used = tokens.iter().find(|t| t["name"] == "cli").unwrap();
    assert!(used["revoked_at"].is_string(), "{used}");
    assert!(
        used["last_used_at"].is_string(),
        "the last use must be kept across a stop: {used}"
    );
    let unused = tokens.iter().find(|t| t["name"] == "offline").unwrap();
    assert!(unused["last_used_at"].is_null(), "{unused}");

    let server = TestServer::start(root, Start::default()).await;
    assert_eq!(
        server.get("/api/v1/events", Some(&offline)).await.0,
        StatusCode::OK
    );
}

#[test]
fn configuration_errors_are_clear_and_sources_are_shown() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("securify.toml");
    std::fs::write(&file, "cache_mb = 8\nlisten = \"127.0.0.1:9443\"\n").unwrap();
    let output = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&file)
        .args(["--cache-mb", "16"])
        .env("SECURIFY_MAX_BODY_BYTES", "65536")
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("cache_mb = 16  # cli"), "{text}");
    assert!(
        text.contains("listen = \"127.0.0.1:9443\"  # file"),
        "{text}"
    );
    assert!(text.contains("max_body_bytes = 65536  # env"), "{text}");
    assert!(
        text.contains("data_dir = \"securify-data\"  # default"),
        "{text}"
    );

    std::fs::write(&file, "lissten = \"127.0.0.1:9443\"\n").unwrap();
    let output = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("lissten"), "{stderr}");

    let output = Command::new(BIN)
        .args(["check-config", "--tls-cert", "cert.pem"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("tls_cert and tls_key"));

    let output = Command::new(BIN)
        .args(["serve", "--listen", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "usage errors exit with 2");
}

#[tokio::test]
async fn readable_secret_files_are_refused_and_supplied_certificates_used() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path(), Start::default()).await;
    assert!(server.terminate().success());
    drop(server);

    let key = dir.path().join("data/keys/jwt.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = Command::new(BIN)
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("chmod 600"), "{stderr}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    // The first server's certificate, supplied to a second, fresh server.
    let other = tempfile::tempdir().unwrap();
    let tls = dir.path().join("data/tls");
    let start = Start {
        extra_args: vec![
            "--tls-cert".into(),
            tls.join("cert.pem").display().to_string(),
            "--tls-key".into(),
            tls.join("key.pem").display().to_string(),
        ],
        trust_cert: Some(tls.join("cert.pem")),
        ..Start::default()
    };
    let server = TestServer::start(other.path(), start).await;
    assert!(
        !other.path().join("data/tls").exists(),
        "no certificate may be generated"
    );
    assert_eq!(server.get("/health", None).await.0, StatusCode::OK);
}

#[test]
fn explain_reads_a_real_sshd_log_line_by_line() {
    let log = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/loghub-openssh/OpenSSH_2k.log"
    );
    let output = Command::new(BIN)
        .args(["explain", "--json", "--year", "2017", log])
        .output()
        .unwrap();
    assert!(output.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2000);
    for line in &lines {
        for key in ["parser", "event_type", "template_id", "template", "fields"] {
            assert!(line.get(key).is_some(), "{key} missing in {line}");
        }
        assert!(line["event_type"].is_string(), "not understood: {line}");
    }
    assert_eq!(lines[0]["time"], "2017-12-10T06:55:46Z");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("2000 lines, 2000 understood by a rule, 27 templates"),
        "{stderr}"
    );

    // Standard input, readable output.
    let mut child = Command::new(BIN)
        .args(["explain", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"Mar  2 00:00:03 srv01 sudo: eve : user NOT in sudoers ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/sh\n")
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("SUDO_FAILED (sudo)"), "{text}");

    // Clear errors for a missing file and a bad offset.
    let missing = Command::new(BIN)
        .args(["explain", "/nonexistent/auth.log"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot open /nonexistent/auth.log"));
    let bad = Command::new(BIN)
        .args(["explain", "--utc-offset", "Mars/Olympus", log])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected UTC or an offset like +02:00"));
}
