//! Who is calling and what they may do.
//!
//! Three kinds of credential reach the appliance: API tokens (`sfy_…`, for machines, with
//! scopes), API access JWTs (for people using the JSON API, with a rotating refresh token) and
//! the dashboard session cookie (a JWT of its own audience). All three resolve to a
//! [`Principal`], and every handler asks the principal for a [`Permission`]. Nothing here knows
//! about HTTP; `api` and `web` extract the credential and map the errors.

pub mod guard;
pub mod jwt;
pub mod password;
pub mod tokens;

use std::sync::{Arc, LazyLock};

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::time::Duration;

use crate::storage::{
    RefreshRecord, RefreshRotation, Role, Scope, SessionRecord, StorageError, Store, UserRecord,
};
use jwt::{JwtKeys, Purpose};
use tokens::TokenRegistry;

/// A hash to verify against when the user does not exist, so that the reply takes as long as
/// for a wrong password and does not reveal which user names exist.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| password::hash("dummy password for timing"));

/// A permission a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Send events (`POST /ingest`).
    Ingest,
    /// Read events.
    Read,
    /// Manage tokens and users.
    Admin,
    /// Work alerts: change their status, add notes (analysts and admins; tokens with `admin`).
    Triage,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A person, through an API access token or the dashboard cookie.
    User {
        username: String,
        role: Role,
        session_id: String,
    },
    /// A machine, through an API token.
    ApiToken {
        id: String,
        name: String,
        scopes: Vec<Scope>,
    },
}

impl Principal {
    /// Whether this caller holds `permission`. An `admin` scope implies `read`; ingesting needs
    /// an explicit `ingest` token so a leaked dashboard login cannot inject events.
    #[must_use]
    pub fn allows(&self, permission: Permission) -> bool {
        match self {
            Self::User { role, .. } => match permission {
                Permission::Ingest => false,
                Permission::Read => true,
                Permission::Admin => *role == Role::Admin,
                Permission::Triage => matches!(role, Role::Admin | Role::Analyst),
            },
            Self::ApiToken { scopes, .. } => match permission {
                Permission::Ingest => scopes.contains(&Scope::Ingest),
                Permission::Read => scopes.contains(&Scope::Read) || scopes.contains(&Scope::Admin),
                Permission::Admin | Permission::Triage => scopes.contains(&Scope::Admin),
            },
        }
    }

    /// A short label for logs and audit records, for example `user:alice`.
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            Self::User { username, .. } => format!("user:{username}"),
            Self::ApiToken { id, .. } => format!("token:{id}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing credentials")]
    Missing,
    #[error("invalid credentials")]
    Invalid,
    #[error("insufficient permissions")]
    Forbidden,
    /// Too many logins from one address: try again after this long.
    #[error("too many login attempts")]
    Throttled(Duration),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Lifetimes of the credentials this module issues.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub access: Duration,
    pub refresh: Duration,
    pub web_session: Duration,
}

/// What a successful login or refresh hands back.
#[derive(Debug, Clone)]
pub struct Grant {
    pub username: String,
    pub role: Role,
    pub session_id: String,
    /// Access JWT (API) or session JWT (dashboard cookie).
    pub token: String,
    /// Seconds until `token` expires.
    pub expires_in: u64,
    /// Refresh token, for API logins only.
    pub refresh_token: Option<String>,
}

/// The authentication service shared by all handlers.
#[derive(Debug)]
pub struct Auth {
    store: Arc<Store>,
    jwt: JwtKeys,
    /// Key for CSRF tokens, derived from the JWT secret under its own label.
    csrf_key: hmac::Key,
    /// Every API token, checked without touching the store.
    pub tokens: TokenRegistry,
    lifetimes: Lifetimes,
    /// Rate limit per address and lockout per account, for logins.
    guard: guard::LoginGuard,
}

fn now_secs() -> i64 {
    crate::now_micros() / 1_000_000
}

impl Auth {
    pub fn new(
        store: Arc<Store>,
        jwt_secret: &[u8],
        lifetimes: Lifetimes,
    ) -> Result<Self, StorageError> {
        let tokens = TokenRegistry::new(store.list_tokens()?);
        let derived = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, jwt_secret),
            b"securify csrf key v1",
        );
        Ok(Self {
            store,
            jwt: JwtKeys::new(jwt_secret),
            csrf_key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
            tokens,
            lifetimes,
            guard: guard::LoginGuard::default(),
        })
    }

    /// Takes one login attempt from `address`'s allowance (see [`guard`]): called before the
    /// request's body is read, so that a throttled client costs nothing.
    pub fn admit(&self, address: std::net::IpAddr) -> Result<(), AuthError> {
        self.guard
            .admit(address, std::time::Instant::now())
            .map_err(AuthError::Throttled)
    }

    /// Checks a user name and password and opens a session, for a client [`Auth::admit`] let
    /// in. Slow (argon2): call it off the async executor. A locked-out account fails like a
    /// wrong password (see [`guard`]).
    pub fn login(
        &self,
        username: &str,
        password: &str,
        purpose: Purpose,
    ) -> Result<Grant, AuthError> {
        let now = std::time::Instant::now();
        let locked = self.guard.is_locked(username, now);
        let user = self.store.get_user(username)?;
        let hash = user
            .as_ref()
            .map_or(DUMMY_HASH.as_str(), |u| u.password_hash.as_str());
        // Checked even when locked, so that the reply takes as long either way.
        let matches = password::verify(password, hash);
        let user = match user {
            Some(user) if matches && !user.disabled && !locked => {
                self.guard.succeeded(username);
                user
            }
            _ => {
                self.guard.failed(username, now);
                return Err(AuthError::Invalid);
            }
        };
        let now = now_secs();
        let session_ttl = match purpose {
            Purpose::ApiAccess => self.lifetimes.refresh,
            Purpose::WebSession => self.lifetimes.web_session,
        };
        let session = SessionRecord {
            id: crate::keys::random_token::<18>(),
            username: user.username.clone(),
            created_at: now,
            expires_at: now + session_ttl.as_secs() as i64,
            revoked_at: None,
        };
        let refresh_token = (purpose == Purpose::ApiAccess).then(crate::keys::random_token::<32>);
        let refresh_hash = refresh_token.as_deref().map(tokens::hash_secret);
        let refresh_record = RefreshRecord {
            session_id: session.id.clone(),
            username: user.username.clone(),
            expires_at: session.expires_at,
            spent: false,
        };
        self.store.create_session(
            &session,
            refresh_hash.as_deref().map(|hash| (hash, &refresh_record)),
        )?;
        Ok(self.grant(&user, &session.id, purpose, refresh_token, now))
    }

    fn grant(
        &self,
        user: &UserRecord,
        session_id: &str,
        purpose: Purpose,
        refresh_token: Option<String>,
        now: i64,
    ) -> Grant {
        let ttl = match purpose {
            Purpose::ApiAccess => self.lifetimes.access,
            Purpose::WebSession => self.lifetimes.web_session,
        };
        Grant {
            username: user.username.clone(),
            role: user.role,
            session_id: session_id.to_string(),
            token: self.jwt.issue(
                purpose,
                &user.username,
                user.role,
                session_id,
                now,
                ttl.as_secs() as i64,
            ),
            expires_in: ttl.as_secs(),
            refresh_token,
        }
    }

    /// Exchanges a refresh token for a new access token and refresh token.
    pub fn refresh(&self, refresh_token: &str) -> Result<Grant, AuthError> {
        let now = now_secs();
        let next = crate::keys::random_token::<32>();
        let rotation = self.store.rotate_refresh(
            &tokens::hash_secret(refresh_token),
            &tokens::hash_secret(&next),
            now + self.lifetimes.refresh.as_secs() as i64,
            now,
        )?;
        match rotation {
            RefreshRotation::Rotated(record) => {
                let user = self.active_user(&record.username)?;
                Ok(self.grant(
                    &user,
                    &record.session_id,
                    Purpose::ApiAccess,
                    Some(next),
                    now,
                ))
            }
            RefreshRotation::Reused => {
                tracing::warn!("refresh token reused; its session has been revoked");
                Err(AuthError::Invalid)
            }
            RefreshRotation::Invalid => Err(AuthError::Invalid),
        }
    }

    /// Ends a session: its JWTs and refresh tokens stop working at once.
    pub fn logout(&self, session_id: &str) -> Result<(), AuthError> {
        self.store.revoke_session(session_id, now_secs())?;
        Ok(())
    }

    /// Resolves a Bearer value: an API token or an API access JWT.
    pub fn authenticate_bearer(&self, value: &str) -> Result<Principal, AuthError> {
        if let Some((id, secret)) = tokens::parse_bearer(value) {
            let (name, scopes) = self
                .tokens
                .verify(id, secret, crate::now_micros())
                .map_err(|_| AuthError::Invalid)?;
            return Ok(Principal::ApiToken {
                id: id.to_string(),
                name,
                scopes,
            });
        }
        self.authenticate_jwt(Purpose::ApiAccess, value)
    }

    /// Resolves the dashboard session cookie.
    pub fn authenticate_session(&self, cookie: &str) -> Result<Principal, AuthError> {
        self.authenticate_jwt(Purpose::WebSession, cookie)
    }

    fn authenticate_jwt(&self, purpose: Purpose, token: &str) -> Result<Principal, AuthError> {
        let claims = self.jwt.verify(purpose, token).ok_or(AuthError::Invalid)?;
        let session = self
            .store
            .get_session(&claims.sid)?
            .ok_or(AuthError::Invalid)?;
        if session.revoked_at.is_some() || session.username != claims.sub {
            return Err(AuthError::Invalid);
        }
        // The role comes from the user record, so a demotion applies to live sessions at once.
        let user = self.active_user(&claims.sub)?;
        Ok(Principal::User {
            username: user.username,
            role: user.role,
            session_id: claims.sid,
        })
    }

    fn active_user(&self, username: &str) -> Result<UserRecord, AuthError> {
        match self.store.get_user(username)? {
            Some(user) if !user.disabled => Ok(user),
            _ => Err(AuthError::Invalid),
        }
    }

    /// The CSRF token for forms of a session (or of a pre-login nonce).
    #[must_use]
    pub fn csrf_token(&self, session_id: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.csrf_key, session_id.as_bytes()))
    }

    /// Whether `token` is the CSRF token of `session_id`, compared in constant time.
    #[must_use]
    pub fn check_csrf(&self, session_id: &str, token: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(token)
            .is_ok_and(|tag| hmac::verify(&self.csrf_key, session_id.as_bytes(), &tag).is_ok())
    }

    /// Writes collected token last-use times to the store.
    pub fn flush_token_uses(&self) -> Result<(), StorageError> {
        let uses = self.tokens.take_uses();
        self.store.record_token_use(&uses)
    }
}
