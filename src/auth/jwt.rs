//! Signed tokens for logged-in users, with one audience per purpose.
//!
//! An API access token (`securify:api`, short-lived, sent as a Bearer header) and a dashboard
//! session cookie (`securify:web`) are both HS256 JWTs, but a token minted for one purpose fails
//! validation for the other. Both carry the session id so logout and refresh-token reuse
//! revoke them at once.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::storage::Role;

const ISSUER: &str = "securify";
/// Clock difference tolerated on `exp`, `nbf` and `iat`, in seconds.
const LEEWAY_SECS: i64 = 5;

/// What a JWT may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Bearer access token for the JSON API.
    ApiAccess,
    /// The dashboard's session cookie.
    WebSession,
}

impl Purpose {
    fn audience(self) -> &'static str {
        match self {
            Self::ApiAccess => "securify:api",
            Self::WebSession => "securify:web",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// User name.
    pub sub: String,
    pub role: Role,
    /// Session id, checked against revocation on every request.
    pub sid: String,
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    /// Not valid before; tokens issued by earlier versions lack it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub exp: i64,
}

/// Signing and verification keys derived from the JWT secret.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys([redacted])")
    }
}

impl JwtKeys {
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// Signs a token for `purpose`, valid from `now` (seconds) for `ttl_secs`.
    #[must_use]
    pub fn issue(
        &self,
        purpose: Purpose,
        username: &str,
        role: Role,
        sid: &str,
        now: i64,
        ttl_secs: i64,
    ) -> String {
        let claims = Claims {
            sub: username.to_string(),
            role,
            sid: sid.to_string(),
            aud: purpose.audience().to_string(),
            iss: ISSUER.to_string(),
            iat: now,
            nbf: Some(now),
            exp: now + ttl_secs,
        };
        // HS256 over serialisable claims cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing")
    }

    /// Verifies signature, issuer, audience, expiry, and that the token was issued in the past
    /// and is valid now (`iat`, `nbf`, within [`LEEWAY_SECS`]); `None` for any failure.
    #[must_use]
    pub fn verify(&self, purpose: Purpose, token: &str) -> Option<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[purpose.audience()]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "aud", "iss", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS as u64;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .ok()?
            .claims;
        let now = crate::now_micros() / 1_000_000;
        (claims.iat <= now + LEEWAY_SECS && claims.iat < claims.exp).then_some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_only_works_for_its_purpose() {
        let keys = JwtKeys::new(&[7u8; 64]);
        let now = crate::now_micros() / 1_000_000;
        let token = keys.issue(Purpose::ApiAccess, "alice", Role::Admin, "s1", now, 60);
        assert_eq!(
            keys.verify(Purpose::ApiAccess, &token).unwrap().sub,
            "alice"
        );
        assert!(keys.verify(Purpose::WebSession, &token).is_none());
        assert!(
            JwtKeys::new(&[8u8; 64])
                .verify(Purpose::ApiAccess, &token)
                .is_none()
        );
        let expired = keys.issue(
            Purpose::ApiAccess,
            "alice",
            Role::Admin,
            "s1",
            now - 120,
            60,
        );
        assert!(keys.verify(Purpose::ApiAccess, &expired).is_none());
        // Issued in the future, or not valid yet.
        let early = keys.issue(
            Purpose::ApiAccess,
            "alice",
            Role::Admin,
            "s1",
            now + 60,
            600,
        );
        assert!(keys.verify(Purpose::ApiAccess, &early).is_none());
        let mut claims = keys.verify(Purpose::ApiAccess, &token).unwrap();
        claims.nbf = Some(now + 60);
        let not_yet =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap();
        assert!(keys.verify(Purpose::ApiAccess, &not_yet).is_none());
        claims.nbf = None;
        let older =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap();
        assert!(keys.verify(Purpose::ApiAccess, &older).is_some());
    }
}
