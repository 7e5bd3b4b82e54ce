//! Administrative operations (users and API tokens), one implementation for every caller.
//!
//! redb lets one process open the database, so the CLI cannot write it while the server runs.
//! The server therefore listens on a Unix socket in the data directory (mode 0600, inside a
//! 0700 directory: only the operator account can reach it) and runs the same [`execute`] the
//! CLI runs directly against the file when no server is up. The protocol is one JSON
//! [`AdminRequest`] line in, one JSON [`AdminResponse`] line out.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::password;
use crate::auth::tokens::{self, IssuedToken, TokenRegistry};
use crate::event::format_timestamp;
use crate::ingest::batch::{ImportBatch, ImportCounts};
use crate::storage::{Role, Scope, StorageError, Store, TokenRecord, UserRecord};

/// Longest request line accepted on the admin socket (an import batch is up to about 1 MiB of
/// lines, escaped into JSON).
pub const MAX_REQUEST_BYTES: usize = 8 << 20;
/// Longest token name.
const MAX_TOKEN_NAME: usize = 100;

/// One administrative operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminRequest {
    TokenCreate {
        name: String,
        scopes: Vec<Scope>,
        expires_in_days: Option<u32>,
        created_by: String,
    },
    TokenList,
    TokenRevoke {
        id: String,
    },
    UserAdd {
        username: String,
        password: String,
        role: Role,
    },
    UserPasswd {
        username: String,
        password: String,
    },
    UserList,
    /// A batch of `securify import`, run by the live server (a stopped data directory is
    /// imported by the command itself).
    Import(ImportBatch),
}

/// The outcome of an [`AdminRequest`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum AdminResponse {
    TokenCreated {
        token: String,
        info: TokenInfo,
    },
    Tokens {
        tokens: Vec<TokenInfo>,
    },
    TokenRevoked {
        info: TokenInfo,
    },
    UserAdded {
        user: UserInfo,
    },
    PasswordChanged {
        username: String,
    },
    Users {
        users: Vec<UserInfo>,
    },
    Imported {
        counts: ImportCounts,
    },
    Error {
        kind: AdminErrorKind,
        message: String,
    },
}

/// An API token as listed: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: String,
    pub created_by: String,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl TokenInfo {
    #[must_use]
    pub fn new(record: &TokenRecord, pending_use: Option<i64>) -> Self {
        let last_used = match (record.last_used_at, pending_use) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Self {
            id: record.id.clone(),
            name: record.name.clone(),
            scopes: record.scopes.clone(),
            created_at: format_timestamp(record.created_at),
            created_by: record.created_by.clone(),
            last_used_at: last_used.map(format_timestamp),
            expires_at: record.expires_at.map(format_timestamp),
            revoked_at: record.revoked_at.map(format_timestamp),
        }
    }
}

/// A user as listed: never the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub username: String,
    pub role: Role,
    pub created_at: String,
    pub disabled: bool,
}

impl From<&UserRecord> for UserInfo {
    fn from(user: &UserRecord) -> Self {
        Self {
            username: user.username.clone(),
            role: user.role,
            created_at: format_timestamp(user.created_at),
            disabled: user.disabled,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminErrorKind {
    Invalid,
    NotFound,
    Conflict,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The operation's worker died (a panic); nothing to tell the caller but that.
    #[error("operation failed: {0}")]
    Failed(String),
}

impl AdminError {
    #[must_use]
    pub fn kind(&self) -> AdminErrorKind {
        match self {
            Self::Invalid(_) => AdminErrorKind::Invalid,
            Self::NotFound(_) => AdminErrorKind::NotFound,
            Self::Conflict(_) => AdminErrorKind::Conflict,
            Self::Storage(_) | Self::Failed(_) => AdminErrorKind::Internal,
        }
    }
}

/// Checks a user name: 1 to 64 characters of letters, digits, `.`, `_`, `-` and `@`.
pub fn check_username(name: &str) -> Result<(), AdminError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(AdminError::Invalid(
            "user name must be 1 to 64 characters: letters, digits, '.', '_', '-' or '@'".into(),
        ))
    }
}

/// Runs one operation. `registry` is the live server's token view, updated after the store.
/// Hashes passwords, so call it off the async executor.
pub fn execute(
    store: &Store,
    registry: Option<&TokenRegistry>,
    request: AdminRequest,
) -> Result<AdminResponse, AdminError> {
    let now = crate::now_micros();
    let pending = |id: &str| registry.and_then(|r| r.pending_use(id));
    match request {
        AdminRequest::TokenCreate {
            name,
            scopes,
            expires_in_days,
            created_by,
        } => create_token(
            store,
            registry,
            name,
            scopes,
            expires_in_days,
            created_by,
            now,
        ),
        AdminRequest::TokenList => {
            let mut records = store.list_tokens()?;
            records.sort_by_key(|t| t.created_at);
            Ok(AdminResponse::Tokens {
                tokens: records
                    .iter()
                    .map(|t| TokenInfo::new(t, pending(&t.id)))
                    .collect(),
            })
        }
        AdminRequest::TokenRevoke { id } => {
            let record = store
                .revoke_token(&id, now)?
                .ok_or_else(|| AdminError::NotFound(format!("no token with id `{id}`")))?;
            if let Some(registry) = registry {
                registry.upsert(record.clone());
            }
            Ok(AdminResponse::TokenRevoked {
                info: TokenInfo::new(&record, pending(&record.id)),
            })
        }
        AdminRequest::UserAdd {
            username,
            password,
            role,
        } => {
            check_username(&username)?;
            password::check_policy(&password, &username).map_err(AdminError::Invalid)?;
            let user = UserRecord {
                username,
                password_hash: password::hash(&password),
                role,
                created_at: now,
                disabled: false,
            };
            if !store.create_user(&user)? {
                return Err(AdminError::Conflict(format!(
                    "user `{}` already exists",
                    user.username
                )));
            }
            Ok(AdminResponse::UserAdded {
                user: UserInfo::from(&user),
            })
        }
        AdminRequest::UserPasswd { username, password } => {
            password::check_policy(&password, &username).map_err(AdminError::Invalid)?;
            let mut user = store
                .get_user(&username)?
                .ok_or_else(|| AdminError::NotFound(format!("no user `{username}`")))?;
            user.password_hash = password::hash(&password);
            store.update_user(&user)?;
            // Whoever knew the old password may hold a session: end them all.
            let ended = store.revoke_user_sessions(&username, crate::now_micros() / 1_000_000)?;
            tracing::info!(user = %username, sessions_ended = ended, "password changed");
            Ok(AdminResponse::PasswordChanged { username })
        }
        AdminRequest::UserList => {
            let mut users = store.list_users()?;
            users.sort_by(|a, b| a.username.cmp(&b.username));
            Ok(AdminResponse::Users {
                users: users.iter().map(UserInfo::from).collect(),
            })
        }
        AdminRequest::Import(_) => Err(AdminError::Invalid(
            "imports go through the running server's pipeline or `securify import`".into(),
        )),
    }
}

/// Longest lifetime of an API token that expires, in days.
pub const MAX_TOKEN_DAYS: u32 = 3_650;

fn create_token(
    store: &Store,
    registry: Option<&TokenRegistry>,
    name: String,
    mut scopes: Vec<Scope>,
    expires_in_days: Option<u32>,
    created_by: String,
    now: i64,
) -> Result<AdminResponse, AdminError> {
    let name = name.trim().to_string();
    if name.is_empty() || name.len() > MAX_TOKEN_NAME || name.chars().any(char::is_control) {
        return Err(AdminError::Invalid(format!(
            "token name must be 1 to {MAX_TOKEN_NAME} printable characters"
        )));
    }
    if scopes.is_empty() {
        return Err(AdminError::Invalid(
            "a token needs at least one scope: ingest, read or admin".into(),
        ));
    }
    scopes.sort();
    scopes.dedup();
    let issued = IssuedToken::generate();
    let record = TokenRecord {
        id: issued.id.clone(),
        name,
        scopes,
        secret_hash: tokens::hash_secret(&issued.secret),
        created_at: now,
        created_by,
        last_used_at: None,
        expires_at: match expires_in_days {
            Some(days @ 1..=MAX_TOKEN_DAYS) => {
                Some(now.saturating_add(i64::from(days) * 86_400 * 1_000_000))
            }
            Some(_) => {
                return Err(AdminError::Invalid(format!(
                    "expires_in_days must be 1 to {MAX_TOKEN_DAYS} (ten years), or absent for a token that does not expire"
                )));
            }
            None => None,
        },
        revoked_at: None,
    };
    store.insert_token(&record)?;
    if let Some(registry) = registry {
        registry.upsert(record.clone());
    }
    Ok(AdminResponse::TokenCreated {
        token: issued.bearer(),
        info: TokenInfo::new(&record, None),
    })
}

/// Turns an outcome into the response sent over the socket; storage details stay in the log.
#[must_use]
pub fn respond(result: Result<AdminResponse, AdminError>) -> AdminResponse {
    result.unwrap_or_else(|err| {
        let message = if err.kind() == AdminErrorKind::Internal {
            tracing::error!(error = ?err, "admin operation failed");
            "internal error; see the server log".to_string()
        } else {
            err.to_string()
        };
        AdminResponse::Error {
            kind: err.kind(),
            message,
        }
    })
}

/// Sends one request to a running server's admin socket.
///
/// Returns `Ok(None)` when nothing listens there (no server, or a stale socket file).
pub fn call_socket(path: &Path, request: &AdminRequest) -> std::io::Result<Option<AdminResponse>> {
    let mut stream = match UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply)?;
    serde_json::from_str(&reply)
        .map(Some)
        .map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_created_listed_and_revoked() {
        let (_dir, store) = Store::temporary();
        let registry = TokenRegistry::new(vec![]);
        let created = execute(
            &store,
            Some(&registry),
            AdminRequest::TokenCreate {
                name: "shipper".into(),
                scopes: vec![Scope::Ingest, Scope::Ingest],
                expires_in_days: None,
                created_by: "admin".into(),
            },
        )
        .unwrap();
        let AdminResponse::TokenCreated { token, info } = created else {
            panic!("{created:?}")
        };
        assert_eq!(info.scopes, vec![Scope::Ingest]);
        let (id, secret) = tokens::parse_bearer(&token).unwrap();
        assert!(registry.verify(id, secret, 1).is_ok());
        execute(
            &store,
            Some(&registry),
            AdminRequest::TokenRevoke { id: id.into() },
        )
        .unwrap();
        assert!(registry.verify(id, secret, 2).is_err());
        let missing = execute(
            &store,
            None,
            AdminRequest::TokenRevoke { id: "nope".into() },
        )
        .unwrap_err();
        assert_eq!(missing.kind(), AdminErrorKind::NotFound);
    }

    #[test]
    fn bad_user_input_is_refused_with_a_reason() {
        let (_dir, store) = Store::temporary();
        let add = |name: &str, pw: &str| {
            execute(
                &store,
                None,
                AdminRequest::UserAdd {
                    username: name.into(),
                    password: pw.into(),
                    role: Role::Viewer,
                },
            )
        };
        assert!(
            add("bad name", "long enough password")
                .unwrap_err()
                .to_string()
                .contains("user name")
        );
        assert!(
            add("carol", "short")
                .unwrap_err()
                .to_string()
                .contains("at least 12")
        );
        assert!(add("carol", "long enough password").is_ok());
        assert_eq!(
            add("carol", "long enough password").unwrap_err().kind(),
            AdminErrorKind::Conflict
        );
    }
}
