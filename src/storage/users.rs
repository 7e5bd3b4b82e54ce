//! Accounts and credentials: users, API tokens, login sessions and refresh tokens.
//!
//! Secrets are never stored: passwords as argon2id PHC strings, token secrets and refresh tokens
//! as SHA-256 hashes (they are long random values, so a fast hash is enough).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::tables::{self, API_TOKENS, REFRESH_TOKENS, SESSIONS, USERS};
use super::{StorageError, Store};

/// What a dashboard or API user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Reads everything and works alerts.
    Analyst,
    /// Everything, including users, tokens and settings.
    Admin,
}

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Send events.
    Ingest,
    /// Read events and alerts.
    Read,
    /// Administrative API (tokens, users).
    Admin,
}

macro_rules! name_enum {
    ($t:ty, $what:literal, $($variant:ident => $name:literal),*) => {
        impl $t {
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),* }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($name => Ok(Self::$variant),)*
                    other => Err(format!(concat!("unknown ", $what, " `{}` (expected one of: ", $($name, " ",)* ")"), other)),
                }
            }
        }
    };
}

name_enum!(Role, "role", Viewer => "viewer", Analyst => "analyst", Admin => "admin");
name_enum!(Scope, "scope", Ingest => "ingest", Read => "read", Admin => "admin");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub username: String,
    /// argon2id in PHC string form.
    pub password_hash: String,
    pub role: Role,
    pub created_at: i64,
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Public part of the token, shown in listings.
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// SHA-256 of the secret part.
    pub secret_hash: Vec<u8>,
    pub created_at: i64,
    pub created_by: String,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// One login: the family of refresh tokens it issues, revoked as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: String,
    pub username: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRecord {
    pub session_id: String,
    pub username: String,
    pub expires_at: i64,
    /// Set once the token has been exchanged; a second use revokes the session.
    pub spent: bool,
}

/// Result of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshRotation {
    /// The token was valid and is now spent; the new one is stored.
    Rotated(RefreshRecord),
    /// The token was already spent: its whole session has been revoked.
    Reused,
    /// Unknown, expired, or its session is revoked.
    Invalid,
}

impl Store {
    pub fn get_user(&self, username: &str) -> Result<Option<UserRecord>, StorageError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(USERS)?;
        table
            .get(username)?
            .map(|v| tables::decode(v.value()))
            .transpose()
    }

    /// Stores a new user; returns `false` if the name is taken.
    pub fn create_user(&self, user: &UserRecord) -> Result<bool, StorageError> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(USERS)?;
            if table.get(user.username.as_str())?.is_some() {
                return Ok(false);
            }
            table.insert(user.username.as_str(), tables::encode(user).as_slice())?;
        }
        txn.commit()?;
        Ok(true)
    }

    /// Replaces an existing user; returns `false` if there is none by that name.
    pub fn update_user(&self, user: &UserRecord) -> Result<bool, StorageError> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(USERS)?;
            if table.get(user.username.as_str())?.is_none() {
                return Ok(false);
            }
            table.insert(user.username.as_str(), tables::encode(user).as_slice())?;
        }
        txn.commit()?;
        Ok(true)
    }

    pub fn list_users(&self) -> Result<Vec<UserRecord>, StorageError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(USERS)?;
        table
            .iter()?
            .map(|entry| tables::decode(entry?.1.value()))
            .collect()
    }

    pub fn insert_token(&self, token: &TokenRecord) -> Result<(), StorageError> {
        let txn = self.db.begin_write()?;
        txn.open_table(API_TOKENS)?
            .insert(token.id.as_str(), tables::encode(token).as_slice())?;
        txn.commit()?;
        Ok(())
    }

    pub fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, StorageError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(API_TOKENS)?;
        table
            .get(id)?
            .map(|v| tables::decode(v.value()))
            .transpose()
    }

    pub fn list_tokens(&self) -> Result<Vec<TokenRecord>, StorageError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(API_TOKENS)?;
        table
            .iter()?
            .map(|entry| tables::decode(entry?.1.value()))
            .collect()
    }

    /// Marks a token revoked; returns it, or `None` if there is no such token.
    pub fn revoke_token(&self, id: &str, at: i64) -> Result<Option<TokenRecord>, StorageError> {
        let txn = self.db.begin_write()?;
        let revoked = {
            let mut table = txn.open_table(API_TOKENS)?;
            let current: Option<TokenRecord> = table
                .get(id)?
                .map(|v| tables::decode(v.value()))
                .transpose()?;
            match current {
                None => None,
                Some(mut token) => {
                    token.revoked_at.get_or_insert(at);
                    table.insert(id, tables::encode(&token).as_slice())?;
                    Some(token)
                }
            }
        };
        txn.commit()?;
        Ok(revoked)
    }

    /// Records last-use times, keeping the later of the stored and the given time.
    pub fn record_token_use(&self, uses: &HashMap<String, i64>) -> Result<(), StorageError> {
        if uses.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(API_TOKENS)?;
            for (id, at) in uses {
                let current: Option<TokenRecord> = table
                    .get(id.as_str())?
                    .map(|v| tables::decode(v.value()))
                    .transpose()?;
                if let Some(mut token) = current
                    && token.last_used_at.is_none_or(|t| t < *at)
                {
                    token.last_used_at = Some(*at);
                    table.insert(id.as_str(), tables::encode(&token).as_slice())?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Stores a new session together with its first refresh token (if any).
    pub fn create_session(
        &self,
        session: &SessionRecord,
        refresh: Option<(&[u8], &RefreshRecord)>,
    ) -> Result<(), StorageError> {
        let txn = self.db.begin_write()?;
        txn.open_table(SESSIONS)?
            .insert(session.id.as_str(), tables::encode(session).as_slice())?;
        if let Some((hash, record)) = refresh {
            txn.open_table(REFRESH_TOKENS)?
                .insert(hash, tables::encode(record).as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    pub fn get_session(&self, id: &str) -> Result<Option<SessionRecord>, StorageError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SESSIONS)?;
        table
            .get(id)?
            .map(|v| tables::decode(v.value()))
            .transpose()
    }

    /// Revokes a session and so every refresh token of its family.
    pub fn revoke_session(&self, id: &str, at: i64) -> Result<bool, StorageError> {
        let txn = self.db.begin_write()?;
        let found = revoke_session_in(&txn, id, at)?;
        txn.commit()?;
        Ok(found)
    }

    /// Revokes every live session of a user (after a password change); returns how many.
    pub fn revoke_user_sessions(&self, username: &str, at: i64) -> Result<usize, StorageError> {
        let txn = self.db.begin_write()?;
        let mut revoked = 0;
        {
            let mut sessions = txn.open_table(SESSIONS)?;
            let live: Vec<SessionRecord> = sessions
                .iter()?
                .map(|entry| {
                    entry
                        .map_err(StorageError::from)
                        .and_then(|(_, v)| tables::decode(v.value()))
                })
                .filter(|s: &Result<SessionRecord, StorageError>| {
                    s.as_ref()
                        .map_or(true, |s| s.username == username && s.revoked_at.is_none())
                })
                .collect::<Result<_, _>>()?;
            for mut session in live {
                session.revoked_at = Some(at);
                sessions.insert(session.id.as_str(), tables::encode(&session).as_slice())?;
                revoked += 1;
            }
        }
        txn.commit()?;
        Ok(revoked)
    }

    /// Exchanges a refresh token (by hash) for a new one, in one transaction.
    ///
    /// A token presented a second time means it was stolen or replayed, so the whole session is
    /// revoked and the caller must log in again.
    pub fn rotate_refresh(
        &self,
        old_hash: &[u8],
        new_hash: &[u8],
        new_expires_at: i64,
        now: i64,
    ) -> Result<RefreshRotation, StorageError> {
        let txn = self.db.begin_write()?;
        let outcome = {
            let mut refresh = txn.open_table(REFRESH_TOKENS)?;
            let current: Option<RefreshRecord> = refresh
                .get(old_hash)?
                .map(|v| tables::decode(v.value()))
                .transpose()?;
            let session: Option<SessionRecord> = match &current {
                Some(r) => txn
                    .open_table(SESSIONS)?
                    .get(r.session_id.as_str())?
                    .map(|v| tables::decode(v.value()))
                    .transpose()?,
                None => None,
            };
            match (current, session) {
                (Some(record), Some(session))
                    if session.revoked_at.is_none()
                        && session.expires_at > now
                        && record.expires_at > now =>
                {
                    if record.spent {
                        drop(refresh);
                        revoke_session_in(&txn, &record.session_id, now)?;
                        RefreshRotation::Reused
                    } else {
                        let spent = RefreshRecord {
                            spent: true,
                            ..record.clone()
                        };
                        refresh.insert(old_hash, tables::encode(&spent).as_slice())?;
                        let next = RefreshRecord {
                            expires_at: new_expires_at.min(session.expires_at),
                            spent: false,
                            ..record
                        };
                        refresh.insert(new_hash, tables::encode(&next).as_slice())?;
                        RefreshRotation::Rotated(next)
                    }
                }
                _ => RefreshRotation::Invalid,
            }
        };
        txn.commit()?;
        Ok(outcome)
    }

    /// Deletes sessions and refresh tokens that expired before `now`.
    pub fn purge_expired_sessions(&self, now: i64) -> Result<usize, StorageError> {
        let txn = self.db.begin_write()?;
        let mut removed = 0;
        {
            let mut sessions = txn.open_table(SESSIONS)?;
            sessions.retain(|_, v| {
                let expired = tables::decode::<SessionRecord>(v).is_ok_and(|s| s.expires_at < now);
                removed += usize::from(expired);
                !expired
            })?;
            let mut refresh = txn.open_table(REFRESH_TOKENS)?;
            refresh.retain(|_, v| {
                let expired = tables::decode::<RefreshRecord>(v).is_ok_and(|r| r.expires_at < now);
                removed += usize::from(expired);
                !expired
            })?;
        }
        txn.commit()?;
        Ok(removed)
    }
}

fn revoke_session_in(
    txn: &redb::WriteTransaction,
    id: &str,
    at: i64,
) -> Result<bool, StorageError> {
    let mut sessions = txn.open_table(SESSIONS)?;
    let current: Option<SessionRecord> = sessions
        .get(id)?
        .map(|v| tables::decode(v.value()))
        .transpose()?;
    let Some(mut session) = current else {
        return Ok(false);
    };
    session.revoked_at.get_or_insert(at);
    sessions.insert(id, tables::encode(&session).as_slice())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reusing_a_spent_refresh_token_revokes_the_session() {
        let (_dir, store) = Store::temporary();
        let session = SessionRecord {
            id: "s1".into(),
            username: "alice".into(),
            created_at: 0,
            expires_at: 1_000,
            revoked_at: None,
        };
        let first = RefreshRecord {
            session_id: "s1".into(),
            username: "alice".into(),
            expires_at: 1_000,
            spent: false,
        };
        store
            .create_session(&session, Some((b"r1", &first)))
            .unwrap();
        assert!(matches!(
            store.rotate_refresh(b"r1", b"r2", 900, 10).unwrap(),
            RefreshRotation::Rotated(_)
        ));
        assert_eq!(
            store.rotate_refresh(b"r1", b"r3", 900, 11).unwrap(),
            RefreshRotation::Reused
        );
        assert!(
            store
                .get_session("s1")
                .unwrap()
                .unwrap()
                .revoked_at
                .is_some()
        );
        // The legitimately rotated token dies with its family.
        assert_eq!(
            store.rotate_refresh(b"r2", b"r4", 900, 12).unwrap(),
            RefreshRotation::Invalid
        );
        assert_eq!(
            store.rotate_refresh(b"nope", b"r5", 900, 12).unwrap(),
            RefreshRotation::Invalid
        );
    }

    #[test]
    fn names_parse_back() {
        for role in [Role::Viewer, Role::Analyst, Role::Admin] {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        let err = "root".parse::<Role>().unwrap_err();
        assert!(err.contains("viewer analyst admin"), "{err}");
    }
}
