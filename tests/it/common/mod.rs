//! The test harness: runs the real `securify` binary on 127.0.0.1 port 0 with its own data
//! directory, learns the port from `--addr-file`, talks HTTPS to it trusting only the
//! certificate it generated, and kills it on drop. Server output goes to files in the test's
//! directory and is printed when a start fails; set `TEST_LOG=1` to get debug logs.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

pub const ADMIN_PASSWORD: &str = "correct horse battery staple";
pub const BIN: &str = env!("CARGO_BIN_EXE_securify");

/// A running server.
pub struct TestServer {
    child: Child,
    pub addr: SocketAddr,
    /// The directory holding `data/`, `addr` and the logs; owned by the test.
    pub root: PathBuf,
    pub client: Client,
}

/// Options for one start.
#[derive(Default, Clone)]
pub struct Start {
    pub extra_args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Leave `SECURIFY_ADMIN_PASSWORD` unset so the server generates one.
    pub no_admin_password: bool,
    /// The certificate to trust, when not the one generated in the data directory.
    pub trust_cert: Option<PathBuf>,
}

impl TestServer {
    /// Starts a server in `root` (its data directory is `root/data`), waiting until it listens.
    pub async fn start(root: &Path, options: Start) -> Self {
        let addr_file = root.join("addr");
        let _ = std::fs::remove_file(&addr_file);
        let run = std::fs::read_dir(root).map_or(0, Iterator::count);
        let stdout = std::fs::File::create(root.join(format!("stdout.{run}.log"))).unwrap();
        let stderr = std::fs::File::create(root.join(format!("stderr.{run}.log"))).unwrap();
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(root.join("data"))
            .arg("--addr-file")
            .arg(&addr_file)
            .arg("--log-format")
            .arg("text")
            .args(&options.extra_args)
            .env_remove("SECURIFY_CONFIG")
            .env(
                "SECURIFY_LOG_LEVEL",
                if std::env::var_os("TEST_LOG").is_some() {
                    "debug"
                } else {
                    "warn"
                },
            )
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        if !options.no_admin_password {
            command.env("SECURIFY_ADMIN_PASSWORD", ADMIN_PASSWORD);
        }
        for (k, v) in &options.env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn securify");
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            if let Ok(text) = std::fs::read_to_string(&addr_file)
                && let Ok(addr) = text.trim().parse::<SocketAddr>()
            {
                break addr;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("securify exited during start ({status}):\n{}", logs(root));
            }
            assert!(
                Instant::now() < deadline,
                "securify did not start in time:\n{}",
                logs(root)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(
            addr.ip().is_loopback(),
            "server must listen on loopback, got {addr}"
        );
        let cert = options
            .trust_cert
            .clone()
            .unwrap_or_else(|| root.join("data/tls/cert.pem"));
        let client = https_client(&cert);
        Self {
            child,
            addr,
            root: root.to_path_buf(),
            client,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// SIGKILL, as in a crash or power loss, and reap the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "securify did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Logs in through the API; returns the status and the reply.
    pub async fn login(&self, username: &str, password: &str) -> (StatusCode, Value) {
        self.post_json(
            "/api/v1/auth/login",
            None,
            &json!({"username": username, "password": password}),
        )
        .await
    }

    /// Logs in as the first admin through the API; returns the access token (a person's
    /// credential, unlike [`TestServer::admin_token`]).
    pub async fn admin_access(&self) -> String {
        let (status, body) = self.login("admin", ADMIN_PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// An API token with the `admin` scope (everything but ingest), made through the admin
    /// socket: no login, so the appliance records no login event of its own.
    pub async fn admin_token(&self) -> String {
        self.api_token(&["admin", "read"]).await
    }

    /// Creates an API token with `scopes` through the running server's admin socket; returns
    /// its bearer value.
    pub async fn api_token(&self, scopes: &[&str]) -> String {
        let mut args = vec!["token", "create", "--name", "test"];
        for scope in scopes {
            args.extend(["--scope", scope]);
        }
        let root = self.root.clone();
        let args: Vec<String> = args.into_iter().map(str::to_string).collect();
        let (status, stdout, stderr) = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(&root, &args, None)
        })
        .await
        .unwrap();
        assert!(status.success(), "{stderr}");
        stdout.trim().lines().last().unwrap().to_string()
    }

    pub async fn post_json(
        &self,
        path: &str,
        bearer: Option<&str>,
        body: &Value,
    ) -> (StatusCode, Value) {
        self.post_raw(path, bearer, "application/json", body.to_string())
            .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        bearer: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        json_reply(response).await
    }

    pub async fn put_json(
        &self,
        path: &str,
        bearer: Option<&str>,
        body: &Value,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .put(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        json_reply(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        json_reply(request.send().await.unwrap()).await
    }

    /// Every stored event id, newest first, by walking all pages.
    pub async fn all_event_ids(&self, bearer: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let mut path = "/api/v1/events?limit=1000".to_string();
        loop {
            let (status, body) = self.get(&path, Some(bearer)).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            ids.extend(
                body["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["event_id"].as_str().unwrap().to_string()),
            );
            match body["next_cursor"].as_str() {
                Some(cursor) => path = format!("/api/v1/events?limit=1000&cursor={cursor}"),
                None => return ids,
            }
        }
    }

    pub fn stdout(&self) -> String {
        logs_matching(&self.root, "stdout")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn json_reply(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

/// An HTTPS client that trusts only the given certificate.
pub fn https_client(cert: &Path) -> Client {
    let pem = std::fs::read(cert).unwrap();
    Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn logs_matching(root: &Path, prefix: &str) -> String {
    let mut names: Vec<_> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    names.sort();
    let mut out = String::new();
    for path in &names {
        out.push_str("== ");
        out.push_str(&path.display().to_string());
        out.push('\n');
        out.push_str(&std::fs::read_to_string(path).unwrap_or_default());
    }
    out
}

/// Everything the server printed in `root` so far, standard output and error.
pub fn logs_of(root: &Path) -> String {
    logs(root)
}

fn logs(root: &Path) -> String {
    format!(
        "{}{}",
        logs_matching(root, "stdout"),
        logs_matching(root, "stderr")
    )
}

/// A valid event as JSON, with the given id.
pub fn event(id: &str) -> Value {
    json!({
        "event_id": id,
        "timestamp": "2024-05-01T12:00:00Z",
        "source_ip": "203.0.113.7",
        "event_type": "LOGIN_ATTEMPT",
        "username": "alice",
        "success": false,
    })
}

/// Runs the binary with `args` and the data directory of `root`; returns (status, stdout, stderr).
pub fn cli(root: &Path, args: &[&str], stdin: Option<&str>) -> (ExitStatus, String, String) {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(root.join("data"))
        .env_remove("SECURIFY_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A WebSocket over TLS to the test server.
pub type WebSocket =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket at `path`, trusting only the server's certificate, with an optional
/// bearer token and `Origin`; a refused upgrade is the error's text (with its status).
pub async fn websocket(
    server: &TestServer,
    path: &str,
    bearer: Option<&str>,
    origin: Option<&str>,
) -> Result<WebSocket, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let cert = CertificateDer::from_pem_file(server.root.join("data/tls/cert.pem"))
        .map_err(|e| e.to_string())?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).map_err(|e| e.to_string())?;
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::from(server.addr.ip());
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let mut request = format!("wss://{}{path}", server.addr)
        .into_client_request()
        .map_err(|e| e.to_string())?;
    if let Some(token) = bearer {
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().map_err(|_| "bad token")?,
        );
    }
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().map_err(|_| "bad origin")?);
    }
    tokio_tungstenite::client_async(request, tls)
        .await
        .map(|(stream, _)| stream)
        .map_err(|e| e.to_string())
}

/// A TLS connection to the test server from the loopback address `source` (any of
/// 127.0.0.0/8), trusting only the server's certificate.
pub async fn tls_from(
    server: &TestServer,
    source: std::net::Ipv4Addr,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};

    let cert = CertificateDer::from_pem_file(server.root.join("data/tls/cert.pem"))
        .map_err(std::io::Error::other)?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).map_err(std::io::Error::other)?;
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    let tcp = socket.connect(server.addr).await?;
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(ServerName::from(server.addr.ip()), tcp)
        .await
}
