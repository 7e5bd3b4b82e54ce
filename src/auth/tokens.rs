//! API tokens: `sfy_<16 hex id>_<43 char secret>`, hashed at rest, checked from memory.
//!
//! The registry keeps every token record in memory so that checking a token on the ingest hot
//! path costs a hash map look-up and one SHA-256, never a database read. Every change goes
//! through the store first and then the registry, so a revoked token stops working at once.
//! Last-use times are collected here and written to the store periodically.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};

use aws_lc_rs::digest;

use crate::storage::{Scope, TokenRecord};

const PREFIX: &str = "sfy_";
const ID_HEX_LEN: usize = 16;

/// A token as handed to its owner once: the id and the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub id: String,
    pub secret: String,
}

impl IssuedToken {
    /// A fresh random token.
    #[must_use]
    pub fn generate() -> Self {
        let id = crate::keys::hex(&crate::keys::random_bytes::<8>());
        Self {
            id,
            secret: crate::keys::random_token::<32>(),
        }
    }

    /// The full bearer value.
    #[must_use]
    pub fn bearer(&self) -> String {
        format!("{PREFIX}{}_{}", self.id, self.secret)
    }
}

/// Splits a bearer value into (id, secret) if it has the API-token shape.
#[must_use]
pub fn parse_bearer(value: &str) -> Option<(&str, &str)> {
    let rest = value.strip_prefix(PREFIX)?;
    if rest.len() <= ID_HEX_LEN + 1 || !rest.is_char_boundary(ID_HEX_LEN) {
        return None;
    }
    let (id, secret) = rest.split_at(ID_HEX_LEN);
    let secret = secret.strip_prefix('_')?;
    id.bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then_some((id, secret))
}

/// SHA-256 of a token secret or refresh token.
#[must_use]
pub fn hash_secret(secret: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, secret.as_bytes())
        .as_ref()
        .to_vec()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a token was refused; the client only ever learns "invalid token".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    Unknown,
    WrongSecret,
    Revoked,
    Expired,
}

/// In-memory view of every API token.
#[derive(Debug, Default)]
pub struct TokenRegistry {
    /// Token records by id, mirrored from the store after every change.
    tokens: RwLock<HashMap<String, TokenRecord>>,
    /// Last successful use per token id since the last flush to the store.
    uses: Mutex<HashMap<String, i64>>,
}

impl TokenRegistry {
    #[must_use]
    pub fn new(records: Vec<TokenRecord>) -> Self {
        Self {
            tokens: RwLock::new(records.into_iter().map(|t| (t.id.clone(), t)).collect()),
            uses: Mutex::new(HashMap::new()),
        }
    }

    /// Adds or replaces a record (after the store has it).
    pub fn upsert(&self, record: TokenRecord) {
        self.tokens
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(record.id.clone(), record);
    }

    /// Checks a bearer value; on success returns the token's id, name and scopes.
    pub fn verify(
        &self,
        id: &str,
        secret: &str,
        now: i64,
    ) -> Result<(String, Vec<Scope>), TokenRefusal> {
        let tokens = self.tokens.read().unwrap_or_else(PoisonError::into_inner);
        let record = tokens.get(id).ok_or(TokenRefusal::Unknown)?;
        if !constant_time_eq(&hash_secret(secret), &record.secret_hash) {
            return Err(TokenRefusal::WrongSecret);
        }
        if record.revoked_at.is_some() {
            return Err(TokenRefusal::Revoked);
        }
        if record.expires_at.is_some_and(|at| at <= now) {
            return Err(TokenRefusal::Expired);
        }
        let granted = (record.name.clone(), record.scopes.clone());
        drop(tokens);
        self.uses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_string(), now);
        Ok(granted)
    }

    /// Takes the last-use times collected since the previous call.
    pub fn take_uses(&self) -> HashMap<String, i64> {
        std::mem::take(&mut *self.uses.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Last use not yet flushed to the store, for listings.
    pub fn pending_use(&self, id: &str) -> Option<i64> {
        self.uses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(token: &IssuedToken) -> TokenRecord {
        TokenRecord {
            id: token.id.clone(),
            name: "ci".into(),
            scopes: vec![Scope::Ingest],
            secret_hash: hash_secret(&token.secret),
            created_at: 0,
            created_by: "admin".into(),
            last_used_at: None,
            expires_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn bearer_values_parse_back() {
        let token = IssuedToken::generate();
        let bearer = token.bearer();
        assert_eq!(
            parse_bearer(&bearer),
            Some((token.id.as_str(), token.secret.as_str()))
        );
        assert_eq!(parse_bearer("sfy_short"), None);
        assert_eq!(parse_bearer("eyJhbGciOi.x.y"), None);
        assert_eq!(parse_bearer("sfy_zzzzzzzzzzzzzzzz_secret"), None);
    }

    #[test]
    fn revocation_and_wrong_secrets_are_refused() {
        let token = IssuedToken::generate();
        let registry = TokenRegistry::new(vec![record(&token)]);
        assert!(registry.verify(&token.id, &token.secret, 5).is_ok());
        assert_eq!(registry.take_uses().get(&token.id), Some(&5));
        assert_eq!(
            registry.verify(&token.id, "nope", 5),
            Err(TokenRefusal::WrongSecret)
        );
        let mut revoked = record(&token);
        revoked.revoked_at = Some(6);
        registry.upsert(revoked);
        assert_eq!(
            registry.verify(&token.id, &token.secret, 7),
            Err(TokenRefusal::Revoked)
        );
    }

    #[test]
    fn expired_and_unknown_tokens_are_refused() {
        let token = IssuedToken::generate();
        let mut expiring = record(&token);
        expiring.expires_at = Some(100);
        let registry = TokenRegistry::new(vec![expiring]);
        assert!(registry.verify(&token.id, &token.secret, 99).is_ok());
        assert_eq!(
            registry.verify(&token.id, &token.secret, 100),
            Err(TokenRefusal::Expired)
        );
        assert_eq!(
            registry.verify("0000000000000000", &token.secret, 1),
            Err(TokenRefusal::Unknown)
        );
    }
}
