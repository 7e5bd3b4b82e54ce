//! The appliance's own secrets: the master key (field encryption) and the JWT signing key.
//!
//! Each is taken, in order, from an inline value (environment), from a file named in the
//! configuration, or from its default file in the data directory, which is generated with mode
//! 0600 on first start. Secret files that group or others can read are refused unless the
//! operator explicitly allows it, because a leaked signing key lets anyone mint sessions.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// Bytes of a generated master key (AES-256).
const MASTER_KEY_LEN: usize = 32;
/// Bytes of a generated JWT signing key (HS256 wants at least 32).
const JWT_KEY_LEN: usize = 64;
/// Shortest secret accepted from the operator, in bytes after decoding.
const MIN_SUPPLIED_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}` or set allow_insecure_secret_files"
    )]
    InsecurePermissions { path: PathBuf, mode: u32 },
    #[error("{what}: expected base64 text of at least {MIN_SUPPLIED_LEN} bytes")]
    BadEncoding { what: String },
}

/// Secret bytes that never show up in `Debug` output or logs.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps a textual secret such as a password.
    #[must_use]
    pub fn from_text(text: &str) -> Self {
        Self(text.as_bytes().to_vec())
    }

    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret as text, for secrets that were text to begin with.
    #[must_use]
    pub fn expose_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Where one secret comes from, in the order they are tried.
#[derive(Debug, Clone)]
pub struct SecretSource {
    /// Human name used in errors, for example `master key`.
    pub what: &'static str,
    /// Base64 value given inline (environment variable).
    pub inline: Option<String>,
    /// A file the operator named; must exist.
    pub file: Option<PathBuf>,
    /// The default file, generated when absent.
    pub default_file: PathBuf,
}

/// Both keys the server needs.
#[derive(Debug, Clone)]
pub struct Keys {
    pub master: Secret,
    pub jwt: Secret,
}

/// Fills an array with bytes from the operating system's secure generator.
#[must_use]
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // The system generator failing is not recoverable and would make every secret guessable.
    aws_lc_rs::rand::fill(&mut out).expect("the system random generator failed");
    out
}

/// Lower-case hexadecimal text of `bytes`.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// A random URL-safe token of `N` random bytes.
#[must_use]
pub fn random_token<const N: usize>() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<N>())
}

/// Loads a secret from its sources, generating the default file on first start.
pub fn load_secret(
    source: &SecretSource,
    generated_len: usize,
    allow_insecure: bool,
) -> Result<Secret, KeyError> {
    if let Some(value) = &source.inline {
        return decode(source.what, value);
    }
    if let Some(path) = &source.file {
        let text = read_secret_file(path, allow_insecure)?;
        return decode(source.what, &text);
    }
    let path = &source.default_file;
    if path.exists() {
        let text = read_secret_file(path, allow_insecure)?;
        return decode(source.what, &text);
    }
    let bytes = random_bytes::<JWT_KEY_LEN>()[..generated_len.min(JWT_KEY_LEN)].to_vec();
    write_private_file(path, format!("{}\n", STANDARD.encode(&bytes)).as_bytes())?;
    tracing::info!(path = %path.display(), "generated {}", source.what);
    Ok(Secret(bytes))
}

/// Loads the master key and the JWT signing key.
pub fn load_keys(
    master: &SecretSource,
    jwt: &SecretSource,
    allow_insecure: bool,
) -> Result<Keys, KeyError> {
    Ok(Keys {
        master: load_secret(master, MASTER_KEY_LEN, allow_insecure)?,
        jwt: load_secret(jwt, JWT_KEY_LEN, allow_insecure)?,
    })
}

fn decode(what: &str, text: &str) -> Result<Secret, KeyError> {
    let bytes = STANDARD
        .decode(text.trim())
        .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim()))
        .map_err(|_| KeyError::BadEncoding { what: what.into() })?;
    if bytes.len() < MIN_SUPPLIED_LEN {
        return Err(KeyError::BadEncoding { what: what.into() });
    }
    Ok(Secret(bytes))
}

/// Reads a secret file after checking that only its owner can read it.
pub fn read_secret_file(path: &Path, allow_insecure: bool) -> Result<String, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = fs::metadata(path).map_err(io)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 && !allow_insecure {
        return Err(KeyError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    fs::read_to_string(path).map_err(io)
}

/// Writes a new file readable only by its owner; fails if it already exists.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        create_private_dir(parent).map_err(io)?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Creates a directory (and parents) that only its owner can enter, leaving existing ones alone.
/// Makes every file and directory this process creates from now on private to its user
/// (umask 077): the search index and anything else written by a library included.
pub fn private_files() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Takes group and other permissions off everything in the data directory `root` that has
/// them (a directory made by an earlier version, or copied with a loose umask), saying what
/// it changed. Symbolic links are left alone, and the walk stops [`TIGHTEN_DEPTH`] levels down.
pub fn tighten_data_dir(root: &Path) -> std::io::Result<usize> {
    let mut changed = Vec::new();
    tighten(root, 0, &mut changed)?;
    if let Some(first) = changed.first() {
        tracing::warn!(
            count = changed.len(),
            first = %first.display(),
            "the data directory was readable by other users: group and other permissions removed"
        );
    }
    Ok(changed.len())
}

const TIGHTEN_DEPTH: usize = 4;

fn tighten(
    path: &Path,
    depth: usize,
    changed: &mut Vec<std::path::PathBuf>,
) -> std::io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o700))?;
        changed.push(path.to_path_buf());
    }
    if meta.is_dir() && depth < TIGHTEN_DEPTH {
        for entry in fs::read_dir(path)? {
            tighten(&entry?.path(), depth + 1, changed)?;
        }
    }
    Ok(())
}

pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    if path.as_os_str().is_empty() || path.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(dir: &Path) -> SecretSource {
        SecretSource {
            what: "test key",
            inline: None,
            file: None,
            default_file: dir.join("keys/test.key"),
        }
    }

    #[test]
    fn generates_once_with_private_mode_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_secret(&source(dir.path()), 32, false).unwrap();
        let mode = fs::metadata(dir.path().join("keys/test.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = load_secret(&source(dir.path()), 32, false).unwrap();
        assert_eq!(first.expose(), second.expose());
    }

    #[test]
    fn refuses_group_readable_files() {
        let dir = tempfile::tempdir().unwrap();
        load_secret(&source(dir.path()), 32, false).unwrap();
        let path = dir.path().join("keys/test.key");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = load_secret(&source(dir.path()), 32, false).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert!(load_secret(&source(dir.path()), 32, true).is_ok());
    }

    #[test]
    fn short_inline_values_are_refused_and_debug_is_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let mut src = source(dir.path());
        src.inline = Some(STANDARD.encode([1u8; 8]));
        assert!(load_secret(&src, 32, false).is_err());
        src.inline = Some(STANDARD.encode([7u8; 32]));
        let secret = load_secret(&src, 32, false).unwrap();
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
    }
}
