//! Linux-PAM's messages (`pam_unix(SERVICE:TYPE): …`, `PAM N more authentication failures`),
//! logged under the name of the program that uses PAM.

use super::{AuthRecord, Kind, Outcome};

/// `key=value` from PAM's `; logname= uid=0 euid=0 tty=ssh ruser= rhost=ADDR  user=NAME`.
fn pam_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let start = text
        .match_indices(key)
        .find(|(at, _)| *at == 0 || text.as_bytes()[at - 1] == b' ')
        .map(|(at, _)| at + key.len())?;
    let value = text[start..].split(' ').next()?;
    (!value.is_empty()).then_some(value)
}

/// The user and remote host of PAM's `… rhost=ADDR  user=NAME` fields.
fn pam_who(mut record: AuthRecord, fields: &str) -> AuthRecord {
    if let Some(user) = pam_field(fields, "user=") {
        record = record.user(user);
    }
    if let Some(rhost) = pam_field(fields, "rhost=") {
        match rhost.parse() {
            Ok(ip) => record.source_ip = Some(ip),
            Err(_) => record.remote_host = Some(rhost.to_string()),
        }
    }
    record
}

pub(super) fn pam(message: &str) -> Option<AuthRecord> {
    // pam_unix(SERVICE:TYPE): ...
    if let Some(rest) = message.strip_prefix("pam_unix(") {
        let (_, rest) = rest.split_once("): ")?;
        if let Some(fields) = rest.strip_prefix("authentication failure;") {
            return Some(pam_who(
                AuthRecord::new(Kind::PamFailure, Outcome::Failure),
                fields,
            ));
        }
        if let Some(user) = rest.strip_prefix("session opened for user ") {
            // USER[(uid=N)] by [NAME](uid=N)
            let (user, by) = user.split_once(" by ").unwrap_or((user, ""));
            let mut record =
                AuthRecord::new(Kind::SessionOpened, Outcome::Success).user(strip_uid(user));
            let by = strip_uid(by);
            if !by.is_empty() {
                record.target = Some(by.to_string());
            }
            return Some(record);
        }
        if let Some(user) = rest.strip_prefix("session closed for user ") {
            return Some(AuthRecord::new(Kind::SessionClosed, Outcome::Neutral).user(user));
        }
        if let Some(user) = rest.strip_prefix("password changed for ") {
            return Some(AuthRecord::new(Kind::PasswordChanged, Outcome::Success).user(user));
        }
        return Some(AuthRecord::new(Kind::Info, Outcome::Neutral));
    }
    // PAM N more authentication failure(s); ... rhost=ADDR  user=NAME
    if let Some(rest) = message.strip_prefix("PAM ") {
        if let Some((count, fields)) = rest.split_once(" more authentication failure") {
            let mut record = pam_who(AuthRecord::new(Kind::MaxAttempts, Outcome::Failure), fields);
            record.count = count.parse().unwrap_or(1);
            return Some(record);
        }
        if rest.starts_with("service(") {
            return Some(AuthRecord::new(Kind::Info, Outcome::Neutral));
        }
    }
    None
}

/// `root(uid=0)` → `root`; `(uid=0)` → the empty string.
pub(super) fn strip_uid(text: &str) -> &str {
    match text.find('(') {
        Some(at) => &text[..at],
        None => text,
    }
}
