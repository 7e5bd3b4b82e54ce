//! The options every source sets: the command line, the environment and the TOML file.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

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
    /// A request body must arrive within this many seconds, plus one per 16 KiB received [default: 30]
    #[arg(
        long,
        global = true,
        env = "SECURIFY_REQUEST_BODY_TIMEOUT_SECS",
        value_name = "SECS"
    )]
    pub request_body_timeout_secs: Option<u64>,
    /// Open HTTPS connections at most; the longest idle is closed to make room [default: 4096]
    #[arg(
        long,
        global = true,
        env = "SECURIFY_MAX_CONNECTIONS",
        value_name = "N"
    )]
    pub max_connections: Option<usize>,
    /// Open HTTPS connections at most from one client address [default: 64]
    #[arg(
        long,
        global = true,
        env = "SECURIFY_MAX_CONNECTIONS_PER_ADDRESS",
        value_name = "N"
    )]
    pub max_connections_per_address: Option<usize>,
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
pub const OPTION_NAMES: [&str; 26] = [
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
    "request_body_timeout_secs",
    "max_connections",
    "max_connections_per_address",
    "master_key_file",
    "jwt_secret_file",
    "admin_password_file",
    "rules_file",
    "geoip_db",
    "blocklist_allow",
    "blocklist_ttl_secs",
    "allow_insecure_secret_files",
];

impl Options {
    /// Fills every unset value of `self` from `lower`.
    pub(super) fn merge_over(self, lower: Options) -> Options {
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
            request_body_timeout_secs: self
                .request_body_timeout_secs
                .or(lower.request_body_timeout_secs),
            max_connections: self.max_connections.or(lower.max_connections),
            max_connections_per_address: self
                .max_connections_per_address
                .or(lower.max_connections_per_address),
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
}
