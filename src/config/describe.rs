//! The effective configuration as `check-config` prints it.

use std::fmt::Write;
use std::path::PathBuf;

use super::{Settings, TlsSource};
use crate::keys::SecretSource;

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
        (
            "request_body_timeout_secs",
            settings.request_body_timeout.as_secs().to_string(),
        ),
        ("max_connections", settings.max_connections.to_string()),
        (
            "max_connections_per_address",
            settings.max_connections_per_address.to_string(),
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
