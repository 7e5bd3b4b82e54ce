//! One configuration for the command line, the environment (`SECURIFY_*`) and a TOML file.
//!
//! [`Options`] is the single source of truth: clap reads it from the command line and the
//! environment, serde reads it from the file (unknown keys are errors). Precedence is
//! CLI > env > file > default. [`Options::resolve`] turns the merged options into [`Settings`],
//! the only form the rest of the appliance sees, and records where each value came from.

use std::fmt::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ArgMatches;
use clap::parser::ValueSource;
use serde::Deserialize;

use ipnetwork::IpNetwork;

use crate::detect::rules::{self, Rule};
use crate::keys::{self, Secret, SecretSource};

/// Data directory used when none is configured, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "securify-data";
/// Listen address used when none is configured.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8443";
const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
const DEFAULT_CACHE_MB: usize = 32;
const DEFAULT_INDEX_MEMORY_MB: usize = 16;
const DEFAULT_ACCESS_TTL_SECS: u64 = 15 * 60;
const DEFAULT_REFRESH_TTL_SECS: u64 = 30 * 24 * 3600;
const DEFAULT_SESSION_TTL_SECS: u64 = 12 * 3600;
const DEFAULT_REQUEST_HEADER_TIMEOUT_SECS: u64 = 30;
const DEFAULT_BLOCKLIST_TTL_SECS: u64 = 24 * 3600;
const DEFAULT_BLOCKLIST_ALLOW: [&str; 2] = ["127.0.0.0/8", "::1/128"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error(transparent)]
    Secret(#[from] keys::KeyError),
}

/// Output format of the logs written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line, for collectors.
    Json,
    /// Human-readable lines, for a terminal.
    Text,
}

/// Every setting, each optional so that the sources can be layered.
///
/// Inline secrets (`SECURIFY_ADMIN_PASSWORD`, `SECURIFY_MASTER_KEY`, `SECURIFY_JWT_SECRET`) are
/// read from the environment only, never from the command line where `ps` would show them.
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Directory holding the database, keys and certificate [default: ./securify-data]
    #[arg(long, global = true, env = "SECURIFY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address and port of the HTTPS listener [default: 0.0.0.0:8443]
    #[arg(long, global = true, env = "SECURIFY_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain replacing the generated self-signed certificate
    #[arg(long, global = true, env = "SECURIFY_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert
    #[arg(long, global = true, env = "SECURIFY_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Write the bound address here once listening (useful with port 0)
    #[arg(long, global = true, env = "SECURIFY_ADDR_FILE", value_name = "FILE")]
    pub addr_file: Option<PathBuf>,
    /// Receive syslog (RFC 3164 and 5424) on this address, UDP and TCP [default: off]
    #[arg(
        long,
        global = true,
        env = "SECURIFY_SYSLOG_LISTEN",
        value_name = "ADDR"
    )]
    pub syslog_listen: Option<SocketAddr>,
    /// Log output format [default: json]
    #[arg(long, global = true, env = "SECURIFY_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter, for example `info` or `securify=debug` [default: info]
    #[arg(long, global = true, env = "SECURIFY_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Largest accepted request body in bytes [default: 16777216]
    #[arg(
        long,
        global = true,
        env = "SECURIFY_MAX_BODY_BYTES",
        value_name = "BYTES"
    )]
    pub max_body_bytes: Option<usize>,
    /// Memory for the database page cache, in MiB [default: 32]
    #[arg(long, global = true, env = "SECURIFY_CACHE_MB", value_name = "MIB")]
    pub cache_mb: Option<usize>,
    /// Memory of the search index writer, in MiB (at least 15) [default: 32]
    #[arg(
        long,
        global = true,
        env = "SECURIFY_INDEX_MEMORY_MB",
        value_name = "MIB"
    )]
    pub index_memory_mb: Option<usize>,
    /// Lifetime of API access tokens (JWT) in seconds [default: 900]
    #[arg(
        long,
        global = true,
        env = "SECURIFY_ACCESS_TOKEN_TTL_SECS",
        value_name = "SECS"
    )]
    pub access_token_ttl_secs: Option<u64>,
    /// Lifetime of refresh tokens in seconds [default: 2592000]
    #[arg(
        long,
        global = true,
        env = "SECURIFY_REFRESH_TOKEN_TTL_SECS",
        value_name = "SECS"
    )]
    pub refresh_token_ttl_secs: Option<u64>,
    /// Lifetime of a dashboard login in seconds [default: 43200]
    #[arg(
        long,
        global = true,
        env = "SECURIFY_SESSION_TTL_SECS",
        value_name = "SECS"
    )]
    pub session_ttl_secs: Option<u64>,
    /// Close connections that do not send a complete request head within this many seconds [default: 30]
    #[arg(
        long,
        global = true,
        env = "SECURIFY_REQUEST_HEADER_TIMEOUT_SECS",
        value_name = "SECS"
    )]
    pub request_header_timeout_secs: Option<u64>,
    /// File holding the base64 master key [default: `DATA_DIR/keys/master.key`, generated]
    #[arg(
        long,
        global = true,
        env = "SECURIFY_MASTER_KEY_FILE",
        value_name = "FILE"
    )]
    pub master_key_file: Option<PathBuf>,
    /// File holding the base64 JWT signing key [default: `DATA_DIR/keys/jwt.key`, generated]
    #[arg(
        long,
        global = true,
        env = "SECURIFY_JWT_SECRET_FILE",
        value_name = "FILE"
    )]
    pub jwt_secret_file: Option<PathBuf>,
    /// File holding the first admin's password, read on first start only
    #[arg(
        long,
        global = true,
        env = "SECURIFY_ADMIN_PASSWORD_FILE",
        value_name = "FILE"
    )]
    pub admin_password_file: Option<PathBuf>,
    /// Detection rules file (TOML) replacing the built-in rules [default: built in]
    #[arg(long, global = true, env = "SECURIFY_RULES_FILE", value_name = "FILE")]
    pub rules_file: Option<PathBuf>,
    /// MaxMind-format IP-to-country database replacing the built-in one (GeoLite2/GeoIP2 Country or City)
    #[arg(long, global = true, env = "SECURIFY_GEOIP_DB", value_name = "FILE")]
    pub geoip_db: Option<PathBuf>,
    /// Networks never put on the blocklist, comma-separated CIDRs [default: `127.0.0.0/8,::1/128`]
    #[arg(
        long,
        global = true,
        env = "SECURIFY_BLOCKLIST_ALLOW",
        value_name = "CIDRS",
        value_delimiter = ','
    )]
    pub blocklist_allow: Option<Vec<String>>,
    /// How long an address stays on the blocklist after its alert last changed, in seconds [default: 86400]
    #[arg(
        long,
        global = true,
        env = "SECURIFY_BLOCKLIST_TTL_SECS",
        value_name = "SECS"
    )]
    pub blocklist_ttl_secs: Option<u64>,
    /// Accept secret files that group or others can read [default: false]
    #[arg(long, global = true, env = "SECURIFY_ALLOW_INSECURE_SECRET_FILES", num_args = 0..=1, default_missing_value = "true")]
    pub allow_insecure_secret_files: Option<bool>,
}

/// The names of the fields of [`Options`], as written in the TOML file and shown by `check-config`.
pub const OPTION_NAMES: [&str; 23] = [
    "data_dir",
    "listen",
    "tls_cert",
    "tls_key",
    "addr_file",
    "syslog_listen",
    "log_format",
    "log_level",
    "max_body_bytes",
    "cache_mb",
    "index_memory_mb",
    "access_token_ttl_secs",
    "refresh_token_ttl_secs",
    "session_ttl_secs",
    "request_header_timeout_secs",
    "master_key_file",
    "jwt_secret_file",
    "admin_password_file",
    "rules_file",
    "geoip_db",
    "blocklist_allow",
    "blocklist_ttl_secs",
    "allow_insecure_secret_files",
];

/// Where the TLS certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// Self-signed, generated on first start and kept in the data directory.
    Generated,
    /// Operator-supplied PEM files.
    Files { cert: PathBuf, key: PathBuf },
}

/// The validated configuration the appliance runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub tls: TlsSource,
    pub addr_file: Option<PathBuf>,
    /// Where to receive syslog, if anywhere.
    pub syslog_listen: Option<SocketAddr>,
    pub log_format: LogFormat,
    pub log_level: String,
    pub max_body_bytes: usize,
    pub cache_bytes: usize,
    /// Memory of the search index writer.
    pub index_memory_bytes: usize,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub session_ttl: Duration,
    /// Time a connection has to send a complete request head (slow-client protection).
    pub request_header_timeout: Duration,
    pub master_key: SecretSource,
    pub jwt_secret: SecretSource,
    /// First admin's password, if the operator supplied one; otherwise one is generated.
    pub admin_password: Option<Secret>,
    pub allow_insecure_secret_files: bool,
    /// The detection rules (the built-in ones unless a rules file replaces them).
    pub rules: Vec<Rule>,
    pub rules_file: Option<PathBuf>,
    /// A GeoIP database replacing the built-in one.
    pub geoip_db: Option<PathBuf>,
    /// Networks never put on the blocklist.
    pub blocklist_allow: Vec<IpNetwork>,
    pub blocklist_ttl: Duration,
    /// For each option, where its value came from: `cli`, `env`, `file` or `default`.
    pub sources: Vec<(&'static str, &'static str)>,
}

impl Settings {
    /// Path of the redb database file.
    #[must_use]
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("securify.redb")
    }

    /// Path of the local administration socket.
    #[must_use]
    pub fn admin_socket_path(&self) -> PathBuf {
        self.data_dir.join("admin.sock")
    }
}

impl Options {
    /// Layers the command line and environment (already in `self`) over a config file, then
    /// validates. `matches` tells which values came from the command line or the environment.
    pub fn resolve(
        self,
        config_file: Option<&Path>,
        matches: Option<&ArgMatches>,
    ) -> Result<Settings, ConfigError> {
        let (file, file_keys) = match config_file {
            Some(path) => read_file(path)?,
            None => (Options::default(), Vec::new()),
        };
        let sources = OPTION_NAMES
            .iter()
            .map(|name| {
                let source = match matches.and_then(|m| m.value_source(name)) {
                    Some(ValueSource::CommandLine) => "cli",
                    Some(ValueSource::EnvVariable) => "env",
                    _ if file_keys.iter().any(|k| k == name) => "file",
                    _ => "default",
                };
                (*name, source)
            })
            .collect();
        self.merge_over(file).validate(sources)
    }

    /// Fills every unset value of `self` from `lower`.
    fn merge_over(self, lower: Options) -> Options {
        Options {
            data_dir: self.data_dir.or(lower.data_dir),
            listen: self.listen.or(lower.listen),
            tls_cert: self.tls_cert.or(lower.tls_cert),
            tls_key: self.tls_key.or(lower.tls_key),
            addr_file: self.addr_file.or(lower.addr_file),
            syslog_listen: self.syslog_listen.or(lower.syslog_listen),
            log_format: self.log_format.or(lower.log_format),
            log_level: self.log_level.or(lower.log_level),
            max_body_bytes: self.max_body_bytes.or(lower.max_body_bytes),
            cache_mb: self.cache_mb.or(lower.cache_mb),
            index_memory_mb: self.index_memory_mb.or(lower.index_memory_mb),
            access_token_ttl_secs: self.access_token_ttl_secs.or(lower.access_token_ttl_secs),
            refresh_token_ttl_secs: self.refresh_token_ttl_secs.or(lower.refresh_token_ttl_secs),
            session_ttl_secs: self.session_ttl_secs.or(lower.session_ttl_secs),
            request_header_timeout_secs: self
                .request_header_timeout_secs
                .or(lower.request_header_timeout_secs),
            master_key_file: self.master_key_file.or(lower.master_key_file),
            jwt_secret_file: self.jwt_secret_file.or(lower.jwt_secret_file),
            admin_password_file: self.admin_password_file.or(lower.admin_password_file),
            rules_file: self.rules_file.or(lower.rules_file),
            geoip_db: self.geoip_db.or(lower.geoip_db),
            blocklist_allow: self.blocklist_allow.or(lower.blocklist_allow),
            blocklist_ttl_secs: self.blocklist_ttl_secs.or(lower.blocklist_ttl_secs),
            allow_insecure_secret_files: self
                .allow_insecure_secret_files
                .or(lower.allow_insecure_secret_files),
        }
    }

    fn validate(self, sources: Vec<(&'static str, &'static str)>) -> Result<Settings, ConfigError> {
        let invalid = |msg: &str| Err(ConfigError::Invalid(msg.to_string()));
        let (rules, blocklist_allow, blocklist_ttl) = self.detection()?;
        let data_dir = self
            .data_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        if data_dir.as_os_str().is_empty() {
            return invalid("data_dir must not be empty");
        }
        let listen = match self.listen {
            Some(addr) => addr,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|_| ConfigError::Invalid("default listen address".into()))?,
        };
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => TlsSource::Files { cert, key },
            (None, None) => TlsSource::Generated,
            _ => return invalid("tls_cert and tls_key must be given together"),
        };
        let max_body_bytes = self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if !(1024..=1 << 30).contains(&max_body_bytes) {
            return invalid("max_body_bytes must be between 1024 and 1073741824");
        }
        let index_memory_mb = index_memory_mb(self.index_memory_mb)?;
        let cache_mb = self.cache_mb.unwrap_or(DEFAULT_CACHE_MB);
        if !(1..=1 << 20).contains(&cache_mb) {
            return invalid("cache_mb must be between 1 and 1048576");
        }
        let ttl = |value: Option<u64>, default: u64, name: &str| -> Result<Duration, ConfigError> {
            match value.unwrap_or(default) {
                0 => Err(ConfigError::Invalid(format!("{name} must be positive"))),
                secs => Ok(Duration::from_secs(secs)),
            }
        };
        let allow_insecure = self.allow_insecure_secret_files.unwrap_or(false);
        let admin_password = match (
            env_secret("SECURIFY_ADMIN_PASSWORD"),
            &self.admin_password_file,
        ) {
            (Some(value), _) => Some(value),
            (None, Some(path)) => Some(
                keys::read_secret_file(path, allow_insecure)?
                    .trim_end()
                    .to_string(),
            ),
            (None, None) => None,
        };
        Ok(Settings {
            master_key: SecretSource {
                what: "master key",
                inline: env_secret("SECURIFY_MASTER_KEY"),
                file: self.master_key_file,
                default_file: data_dir.join("keys").join("master.key"),
            },
            jwt_secret: SecretSource {
                what: "JWT signing key",
                inline: env_secret("SECURIFY_JWT_SECRET"),
                file: self.jwt_secret_file,
                default_file: data_dir.join("keys").join("jwt.key"),
            },
            admin_password: admin_password.map(|p| Secret::from_text(&p)),
            data_dir,
            listen,
            tls,
            addr_file: self.addr_file,
            syslog_listen: self.syslog_listen,
            log_format: self.log_format.unwrap_or(LogFormat::Json),
            log_level: self.log_level.unwrap_or_else(|| "info".to_string()),
            max_body_bytes,
            cache_bytes: cache_mb * 1024 * 1024,
            index_memory_bytes: index_memory_mb * 1024 * 1024,
            access_token_ttl: ttl(
                self.access_token_ttl_secs,
                DEFAULT_ACCESS_TTL_SECS,
                "access_token_ttl_secs",
            )?,
            refresh_token_ttl: ttl(
                self.refresh_token_ttl_secs,
                DEFAULT_REFRESH_TTL_SECS,
                "refresh_token_ttl_secs",
            )?,
            session_ttl: ttl(
                self.session_ttl_secs,
                DEFAULT_SESSION_TTL_SECS,
                "session_ttl_secs",
            )?,
            request_header_timeout: ttl(
                self.request_header_timeout_secs,
                DEFAULT_REQUEST_HEADER_TIMEOUT_SECS,
                "request_header_timeout_secs",
            )?,
            allow_insecure_secret_files: allow_insecure,
            rules,
            rules_file: self.rules_file,
            geoip_db: self.geoip_db,
            blocklist_allow,
            blocklist_ttl,
            sources,
        })
    }
    /// The detection rules (the file's or the built-in ones), the blocklist's allow-list and
    /// how long an address stays listed.
    fn detection(&self) -> Result<(Vec<Rule>, Vec<IpNetwork>, Duration), ConfigError> {
        let rules = match &self.rules_file {
            None => rules::parse(rules::DEFAULT_RULES),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                rules::parse(&text)
            }
        }
        .map_err(|e| match &self.rules_file {
            Some(path) => ConfigError::Parse {
                path: path.clone(),
                message: e.to_string(),
            },
            None => ConfigError::Invalid(format!("built-in rules: {e}")),
        })?;
        if let Some(path) = &self.geoip_db
            && !path.is_file()
        {
            return Err(ConfigError::Invalid(format!(
                "geoip_db: no file at {}",
                path.display()
            )));
        }
        let blocklist_allow = match &self.blocklist_allow {
            None => DEFAULT_BLOCKLIST_ALLOW
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect(),
            Some(list) => list
                .iter()
                .map(|text| {
                    text.trim().parse::<IpNetwork>().map_err(|_| {
                        ConfigError::Invalid(format!(
                            "blocklist_allow: `{text}` is not a network (for example 10.0.0.0/8)"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        let ttl = match self
            .blocklist_ttl_secs
            .unwrap_or(DEFAULT_BLOCKLIST_TTL_SECS)
        {
            0 => {
                return Err(ConfigError::Invalid(
                    "blocklist_ttl_secs must be positive".into(),
                ));
            }
            secs => Duration::from_secs(secs),
        };
        Ok((rules, blocklist_allow, ttl))
    }
}

fn env_secret(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Reads the TOML file, returning its options and the keys it set.
fn read_file(path: &Path) -> Result<(Options, Vec<String>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let parse_err = |e: toml::de::Error| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    };
    let table: toml::Table = toml::from_str(&text).map_err(parse_err)?;
    let keys = table.keys().cloned().collect();
    let options = toml::from_str(&text).map_err(parse_err)?;
    Ok((options, keys))
}

/// The detection options as `describe` shows them.
fn detection_rows(settings: &Settings) -> Vec<(&'static str, String)> {
    vec![
        (
            "rules_file",
            settings
                .rules_file
                .as_ref()
                .map_or_else(|| "(built in)".to_string(), |p| p.display().to_string()),
        ),
        (
            "geoip_db",
            settings
                .geoip_db
                .as_ref()
                .map_or_else(|| "(built in)".to_string(), |p| p.display().to_string()),
        ),
        (
            "blocklist_allow",
            format!(
                "[{}]",
                settings
                    .blocklist_allow
                    .iter()
                    .map(|n| format!("{:?}", n.to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        (
            "blocklist_ttl_secs",
            settings.blocklist_ttl.as_secs().to_string(),
        ),
    ]
}

fn index_memory_mb(value: Option<usize>) -> Result<usize, ConfigError> {
    let mb = value.unwrap_or(DEFAULT_INDEX_MEMORY_MB);
    if (15..=1 << 16).contains(&mb) {
        Ok(mb)
    } else {
        Err(ConfigError::Invalid(
            "index_memory_mb must be between 15 and 65536".into(),
        ))
    }
}

/// The effective configuration as TOML-like lines with their sources; secrets never appear.
#[must_use]
pub fn describe(settings: &Settings) -> String {
    let source = |name: &str| {
        settings
            .sources
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("default", |(_, s)| *s)
    };
    let path = |p: &Option<PathBuf>| {
        p.as_ref()
            .map_or("(unset)".to_string(), |p| p.display().to_string())
    };
    let (cert, key) = match &settings.tls {
        TlsSource::Generated => ("(generated)".to_string(), "(generated)".to_string()),
        TlsSource::Files { cert, key } => (cert.display().to_string(), key.display().to_string()),
    };
    let secret_file = |s: &SecretSource| match (&s.inline, &s.file) {
        (Some(_), _) => "(inline from environment)".to_string(),
        (None, Some(f)) => f.display().to_string(),
        (None, None) => s.default_file.display().to_string(),
    };
    let mut rows: Vec<(&str, String)> = vec![
        ("data_dir", settings.data_dir.display().to_string()),
        ("listen", settings.listen.to_string()),
        ("tls_cert", cert),
        ("tls_key", key),
        ("addr_file", path(&settings.addr_file)),
        (
            "syslog_listen",
            settings
                .syslog_listen
                .map_or_else(|| "off".to_string(), |a| a.to_string()),
        ),
        (
            "log_format",
            format!("{:?}", settings.log_format).to_lowercase(),
        ),
        ("log_level", settings.log_level.clone()),
        ("max_body_bytes", settings.max_body_bytes.to_string()),
        (
            "cache_mb",
            (settings.cache_bytes / (1024 * 1024)).to_string(),
        ),
        (
            "index_memory_mb",
            (settings.index_memory_bytes / (1024 * 1024)).to_string(),
        ),
        (
            "access_token_ttl_secs",
            settings.access_token_ttl.as_secs().to_string(),
        ),
        (
            "refresh_token_ttl_secs",
            settings.refresh_token_ttl.as_secs().to_string(),
        ),
        (
            "session_ttl_secs",
            settings.session_ttl.as_secs().to_string(),
        ),
        (
            "request_header_timeout_secs",
            settings.request_header_timeout.as_secs().to_string(),
        ),
        ("master_key_file", secret_file(&settings.master_key)),
        ("jwt_secret_file", secret_file(&settings.jwt_secret)),
        (
            "admin_password_file",
            if settings.admin_password.is_some() {
                "(set)".into()
            } else {
                "(unset: generated on first start)".into()
            },
        ),
        (
            "allow_insecure_secret_files",
            settings.allow_insecure_secret_files.to_string(),
        ),
    ];
    rows.extend(detection_rows(settings));
    rows.iter().fold(String::new(), |mut out, (name, value)| {
        // Numbers and booleans stay bare so the output is a valid config file.
        let bare = value.parse::<u64>().is_ok()
            || value == "true"
            || value == "false"
            || value.starts_with('[');
        let shown = if bare {
            value.clone()
        } else {
            format!("{value:?}")
        };
        let _ = writeln!(out, "{name} = {shown}  # {}", source(name));
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_beats_file_and_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("securify.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\ncache_mb = 8\n").unwrap();
        let cli = Options {
            cache_mb: Some(16),
            ..Options::default()
        };
        let settings = cli.resolve(Some(&file), None).unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(settings.cache_bytes, 16 * 1024 * 1024);
        assert_eq!(settings.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert!(settings.sources.contains(&("listen", "file")));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("securify.toml");
        std::fs::write(&file, "listne = \"127.0.0.1:9000\"\n").unwrap();
        let err = Options::default().resolve(Some(&file), None).unwrap_err();
        assert!(err.to_string().contains("listne"), "{err}");

        let half_tls = Options {
            tls_cert: Some("cert.pem".into()),
            ..Options::default()
        };
        assert!(half_tls.resolve(None, None).is_err());
    }
}
