//! One configuration for the command line, the environment (`SECURIFY_*`) and a TOML file.
//!
//! [`Options`] is the single source of truth: clap reads it from the command line and the
//! environment, serde reads it from the file (unknown keys are errors). Precedence is
//! CLI > env > file > default. [`Options::resolve`] turns the merged options into [`Settings`],
//! the only form the rest of the appliance sees, and records where each value came from.

mod describe;
mod options;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ArgMatches;
use clap::parser::ValueSource;
use ipnetwork::IpNetwork;

use crate::detect::rules::{self, Rule};
use crate::keys::{self, Secret, SecretSource};
pub use describe::describe;
pub use options::{LogFormat, OPTION_NAMES, Options};

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
const DEFAULT_REQUEST_BODY_TIMEOUT_SECS: u64 = 30;
const DEFAULT_MAX_CONNECTIONS: usize = 4096;
const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 64;
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
    /// Time a request body has to arrive, before its rate extends it.
    pub request_body_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
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

    fn validate(self, sources: Vec<(&'static str, &'static str)>) -> Result<Settings, ConfigError> {
        let invalid = |msg: &str| Err(ConfigError::Invalid(msg.to_string()));
        let (rules, blocklist_allow, blocklist_ttl) = self.detection()?;
        let (max_connections, max_connections_per_address) = self.connections()?;
        let allow_insecure = self.allow_insecure_secret_files.unwrap_or(false);
        let admin_password = self.admin_password(allow_insecure)?;
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
            request_body_timeout: ttl(
                self.request_body_timeout_secs,
                DEFAULT_REQUEST_BODY_TIMEOUT_SECS,
                "request_body_timeout_secs",
            )?,
            max_connections,
            max_connections_per_address,
            allow_insecure_secret_files: allow_insecure,
            rules,
            rules_file: self.rules_file,
            geoip_db: self.geoip_db,
            blocklist_allow,
            blocklist_ttl,
            sources,
        })
    }

    /// The first admin's password, from the environment or its file.
    fn admin_password(&self, allow_insecure: bool) -> Result<Option<String>, ConfigError> {
        Ok(
            match (
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
            },
        )
    }

    /// The connection allowances, in all and per address.
    fn connections(&self) -> Result<(usize, usize), ConfigError> {
        let total = self.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
        if !(1..=1 << 20).contains(&total) {
            return Err(ConfigError::Invalid(
                "max_connections must be between 1 and 1048576".into(),
            ));
        }
        let per_address = self
            .max_connections_per_address
            .unwrap_or(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS);
        if !(1..=total).contains(&per_address) {
            return Err(ConfigError::Invalid(
                "max_connections_per_address must be between 1 and max_connections".into(),
            ));
        }
        Ok((total, per_address))
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

/// A positive number of seconds, `default` when unset.
fn ttl(value: Option<u64>, default: u64, name: &str) -> Result<Duration, ConfigError> {
    match value.unwrap_or(default) {
        0 => Err(ConfigError::Invalid(format!("{name} must be positive"))),
        secs => Ok(Duration::from_secs(secs)),
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
