//! TLS: the certificate bootstrap and the rustls server configuration.
//!
//! With no certificate configured, the first start generates a self-signed one (SANs: the host
//! name, `localhost`, `127.0.0.1`, `::1` and the listen IP) and keeps it, with its key at mode 0600,
//! in `DATA_DIR/tls/`. Its SHA-256 fingerprint is logged so clients can pin it.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::digest;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsSource;
use crate::keys;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error("certificate and key do not form a usable TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A loaded certificate chain and key, ready to serve.
#[derive(Debug)]
pub struct TlsMaterial {
    pub config: Arc<ServerConfig>,
    /// SHA-256 of the leaf certificate, upper-case hex pairs separated by `:`.
    pub fingerprint: String,
    /// Where the leaf certificate lives, so clients can be pointed at it.
    pub cert_path: PathBuf,
}

/// Loads the configured certificate, generating the self-signed one if needed.
pub fn load(
    source: &TlsSource,
    data_dir: &Path,
    listen: SocketAddr,
) -> Result<TlsMaterial, TlsError> {
    let (cert_path, key_path) = match source {
        TlsSource::Files { cert, key } => (cert.clone(), key.clone()),
        TlsSource::Generated => {
            let dir = data_dir.join("tls");
            let cert = dir.join("cert.pem");
            let key = dir.join("key.pem");
            if !cert.exists() || !key.exists() {
                generate(&cert, &key, listen.ip())?;
            }
            (cert, key)
        }
    };
    let read_err = |path: &Path, e: &dyn std::fmt::Display| TlsError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| read_err(&cert_path, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| read_err(&cert_path, &e))?;
    let leaf = chain.first().ok_or_else(|| TlsError::NoCertificate {
        path: cert_path.clone(),
    })?;
    let fingerprint = fingerprint(leaf);
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| read_err(&key_path, &e))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        config: Arc::new(config),
        fingerprint,
        cert_path,
    })
}

fn generate(cert_path: &Path, key_path: &Path, listen_ip: IpAddr) -> Result<(), TlsError> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Some(host) = host_name() {
        names.insert(0, host);
    }
    if !listen_ip.is_unspecified() && !listen_ip.is_loopback() {
        names.push(listen_ip.to_string());
    }
    names.dedup();
    let certified = rcgen::generate_simple_self_signed(names)?;
    keys::write_private_file(key_path, certified.signing_key.serialize_pem().as_bytes())?;
    keys::write_private_file(cert_path, certified.cert.pem().as_bytes())?;
    tracing::info!(path = %cert_path.display(), "generated a self-signed TLS certificate");
    Ok(())
}

fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty() && name != "localhost").then(|| name.to_string())
}

/// SHA-256 fingerprint of a DER certificate as `AB:CD:…`.
#[must_use]
pub fn fingerprint(der: &[u8]) -> String {
    digest::digest(&digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
