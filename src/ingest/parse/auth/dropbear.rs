//! Dropbear's messages (the SSH server of small systems and routers).

use super::local::quoted;
use super::{AuthRecord, Kind, Outcome};

pub(super) fn dropbear(message: &str) -> Option<AuthRecord> {
    // Bad password attempt for 'USER' from ADDR:PORT
    // Password auth succeeded for 'USER' from ADDR:PORT
    // Pubkey auth succeeded for 'USER' with key … from ADDR:PORT
    // Login attempt for nonexistent user from ADDR:PORT
    // Exit before auth from <ADDR:PORT>: …
    let (kind, outcome, method) = if message.starts_with("Bad password attempt for ") {
        (Kind::LoginFailed, Outcome::Failure, Some("password"))
    } else if message.starts_with("Password auth succeeded for ") {
        (Kind::LoginSuccess, Outcome::Success, Some("password"))
    } else if message.starts_with("Pubkey auth succeeded for ") {
        (Kind::LoginSuccess, Outcome::Success, Some("publickey"))
    } else if message.starts_with("Login attempt for nonexistent user") {
        (Kind::InvalidUser, Outcome::Failure, None)
    } else if message.starts_with("Exit before auth") {
        (Kind::PreauthDisconnect, Outcome::Neutral, None)
    } else {
        return None;
    };
    let mut record = AuthRecord::new(kind, outcome);
    record.method = method.map(str::to_string);
    if let Some(user) = quoted(message) {
        record = record.user(user);
    }
    let (_, from) = message.rsplit_once(" from ")?;
    let from = from.trim_start_matches('<');
    let addr = from.split(['>', ' ']).next()?.trim_end_matches(':');
    let (ip, port) = match addr.rsplit_once(':') {
        Some((ip, port)) if !ip.is_empty() => (ip.trim_matches(['[', ']']), port.parse().ok()),
        _ => (addr, None),
    };
    record.source_ip = Some(ip.parse().ok()?);
    record.port = port;
    Some(record)
}
