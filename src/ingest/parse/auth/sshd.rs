//! sshd's messages: attempts (accepted, failed, invalid user, refused), connections ending
//! before or after authentication, and scanners' traces.

use super::{
    AuthRecord, Endpoint, Kind, Outcome, endpoint, host_endpoint, user_then_endpoint,
    user_then_host,
};

pub(super) fn sshd(message: &str) -> Option<AuthRecord> {
    let message = message.strip_prefix("error: ").unwrap_or(message);
    let message = message.strip_suffix(" [preauth]").unwrap_or(message);
    sshd_auth(message)
        .or_else(|| sshd_refused(message))
        .or_else(|| message.strip_prefix("PAM: ").and_then(sshd_pam))
        .or_else(|| sshd_disconnect(message))
        .or_else(|| sshd_notice(message))
}

/// Attempts: accepted, failed, invalid user, too many failures.
fn sshd_auth(message: &str) -> Option<AuthRecord> {
    // Accepted / Failed METHOD for [invalid user ]USER from ADDR port N ssh2[: key]
    for (prefix, kind, outcome) in [
        ("Accepted ", Kind::LoginSuccess, Outcome::Success),
        ("Failed ", Kind::LoginFailed, Outcome::Failure),
        ("Postponed ", Kind::Info, Outcome::Neutral),
    ] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (method, rest) = rest.split_once(" for ")?;
            let (user, endpoint) = attempt_endpoint(rest)?;
            let (user, invalid) = match user.strip_prefix("invalid user ") {
                Some(user) => (user, true),
                // Solaris and macOS keyboard-interactive name no account that does not exist.
                None if user == "<invalid username>" => ("", true),
                None => (user, false),
            };
            let mut record = AuthRecord::new(kind, outcome).user(user).endpoint(endpoint);
            record.method = Some(method.to_string());
            record.invalid_user = invalid;
            return Some(record);
        }
    }
    if let Some(rest) = message.strip_prefix("Invalid user ") {
        let mut record = match user_then_endpoint(rest, " from ") {
            Some((user, endpoint, _)) => AuthRecord::new(Kind::InvalidUser, Outcome::Failure)
                .user(user)
                .endpoint(endpoint),
            None => AuthRecord::new(Kind::InvalidUser, Outcome::Failure).user(rest),
        };
        record.invalid_user = true;
        return Some(record);
    }
    if let Some(user) = message.strip_prefix("input_userauth_request: invalid user ") {
        let mut record = AuthRecord::new(Kind::InvalidUser, Outcome::Failure).user(user);
        record.invalid_user = true;
        return Some(record);
    }
    if let Some(rest) = message.strip_prefix("maximum authentication attempts exceeded for ") {
        let (user, endpoint, _) = user_then_endpoint(rest, " from ")?;
        let user = user.strip_prefix("invalid user ").unwrap_or(user);
        return Some(
            AuthRecord::new(Kind::MaxAttempts, Outcome::Failure)
                .user(user)
                .endpoint(endpoint),
        );
    }
    None
}

/// The user and the client of `USER from ADDR port N ssh2[: info]`. Both the user name and
/// the info are the client's words and may hold ` from ADDR port N ssh2` themselves; sshd's
/// own is the first that ends the line or is followed by its `: info`, and a user name that
/// fakes one before it would need a `:` to pass, which is why it is read so. Lines without the
/// protocol (older releases, other systems) take the last ` from ` followed by an address, or
/// by a host name.
fn attempt_endpoint(text: &str) -> Option<(&str, Endpoint<'_>)> {
    let mut from = 0;
    while let Some(at) = text[from..].find(" from ").map(|p| p + from) {
        from = at + 1;
        let Some((endpoint, rest)) = endpoint(&text[at + " from ".len()..]) else {
            continue;
        };
        let Some(after) = rest
            .strip_prefix("ssh2")
            .or_else(|| rest.strip_prefix("ssh1"))
        else {
            continue;
        };
        if endpoint.port.is_some() && (after.is_empty() || after.starts_with(':')) {
            return Some((&text[..at], endpoint));
        }
    }
    user_then_host(text, " from ").map(|(user, endpoint, _)| (user, endpoint))
}

/// Refusals before any password is checked: `AllowUsers`, `DenyUsers`, `AllowGroups`,
/// `DenyGroups`, an account in no group, `PermitRootLogin no`, TCP wrappers.
fn sshd_refused(message: &str) -> Option<AuthRecord> {
    if let Some(rest) = message.strip_prefix("User ") {
        // User NAME from HOST not allowed because REASON
        let (who, _) = rest.rsplit_once(" not allowed because ")?;
        let refused = AuthRecord::new(Kind::LoginRefused, Outcome::Failure);
        // `User NAME not allowed because account is locked` names no client: the connection
        // it belongs to does.
        return Some(match user_then_host(who, " from ") {
            Some((user, endpoint, _)) => refused.user(user).endpoint(endpoint),
            None => refused.user(who),
        });
    }
    if let Some(rest) = message.strip_prefix("ROOT LOGIN REFUSED FROM ") {
        let (endpoint, _) = host_endpoint(rest)?;
        return Some(
            AuthRecord::new(Kind::LoginRefused, Outcome::Failure)
                .user("root")
                .endpoint(endpoint),
        );
    }
    if let Some(rest) = message.strip_prefix("refused connect from ") {
        // NAME (ADDR): the name may be a user@host the client claims; the address is real.
        let (name, address) = rest.rsplit_once(" (")?;
        let ip = address.strip_suffix(')')?.parse().ok()?;
        let mut record = AuthRecord::new(Kind::LoginRefused, Outcome::Failure);
        record.source_ip = Some(ip);
        if name != address.trim_end_matches(')') {
            record.remote_host = Some(name.to_string());
        }
        return Some(record);
    }
    None
}

/// sshd's own report of what PAM said (`error: PAM: …`), as FreeBSD, macOS and Linux with
/// `UsePAM` write it: the host is the client's address or name, `via` the local address.
fn sshd_pam(message: &str) -> Option<AuthRecord> {
    const NOT_KNOWN: &str = "User not known to the underlying authentication module for ";
    // The first word is capitalised by some releases and not by others.
    let starts = |prefix: &str| {
        message
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    };
    let (prefix_end, kind) = if let Some(prefix) =
        ["authentication failure for ", "authentication error for "]
            .into_iter()
            .find(|p| starts(p))
    {
        (prefix.len(), Kind::PamFailure)
    } else if message.starts_with(NOT_KNOWN) {
        (NOT_KNOWN.len(), Kind::InvalidUser)
    } else {
        return None;
    };
    let rest = &message[prefix_end..];
    let (text, endpoint, _) = user_then_host(rest, " from ")?;
    let (user, invalid) = who(text);
    let mut record = AuthRecord::new(kind, Outcome::Failure)
        .user(user)
        .endpoint(endpoint);
    record.invalid_user = invalid || kind == Kind::InvalidUser;
    Some(record)
}

/// `[invalid |illegal |authenticating ]user NAME` → (NAME, invalid).
fn who(text: &str) -> (&str, bool) {
    if let Some(user) = text
        .strip_prefix("invalid user ")
        .or_else(|| text.strip_prefix("illegal user "))
    {
        return (user, true);
    }
    let user = text
        .strip_prefix("authenticating user ")
        .or_else(|| text.strip_prefix("user "))
        .unwrap_or(text);
    (user, false)
}

/// Connections ending, before or after authentication.
fn sshd_disconnect(message: &str) -> Option<AuthRecord> {
    if let Some(rest) = message.strip_prefix("Disconnecting: Too many authentication failures") {
        let (user, invalid) = who(rest.strip_prefix(" for ").unwrap_or(""));
        let mut record = AuthRecord::new(Kind::MaxAttempts, Outcome::Failure).user(user);
        record.invalid_user = invalid;
        return Some(record);
    }
    if let Some(rest) = message.strip_prefix("Disconnecting ") {
        // Disconnecting [invalid |authenticating ]user USER ADDR port N: reason
        let (text, endpoint, reason) = user_then_endpoint(rest, " ")?;
        let (user, invalid) = who(text);
        // Any text before the address names an account, even an empty `invalid user `.
        let named = !text.is_empty();
        // A client that named a user and went away mid-authentication failed it.
        let mut record = if reason.contains("Too many authentication failures") {
            AuthRecord::new(Kind::MaxAttempts, Outcome::Failure)
        } else {
            AuthRecord::new(Kind::PreauthDisconnect, abandoned(named))
        };
        record.invalid_user = invalid;
        return Some(record.user(user).endpoint(endpoint));
    }
    for prefix in [
        "Connection closed by ",
        "Disconnected from ",
        "Connection reset by ",
    ] {
        if let Some(rest) = message.strip_prefix(prefix) {
            // [invalid |authenticating ]user USER ADDR port N, or ADDR port N
            let (user, invalid, named, endpoint) = if let Some((endpoint, _)) = endpoint(rest) {
                ("", false, false, endpoint)
            } else {
                let (text, endpoint, _) = user_then_endpoint(rest, " ")?;
                let (user, invalid) = who(text);
                // Any text before the address names an account, even an empty `invalid user `.
                let named = !text.is_empty();
                (user, invalid, named, endpoint)
            };
            let (kind, outcome) = if prefix == "Disconnected from " && rest.starts_with("user ") {
                (Kind::Disconnect, Outcome::Neutral)
            } else {
                (Kind::PreauthDisconnect, abandoned(named))
            };
            let mut record = AuthRecord::new(kind, outcome).user(user).endpoint(endpoint);
            record.invalid_user = invalid;
            return Some(record);
        }
    }
    if let Some(rest) = message.strip_prefix("Received disconnect from ") {
        // ADDR[ port N]:CODE: reason. The client gave up on authentication: code 14 (no
        // method left) or code 3 with `Auth fail` (libraries such as JSch).
        let (endpoint, reason) = endpoint(rest)?;
        let reason = reason.trim_start();
        let (kind, outcome) = if message.contains("disconnected by user") {
            (Kind::Disconnect, Outcome::Neutral)
        } else if reason.starts_with("14:")
            || (reason.starts_with("3:") && reason.ends_with("Auth fail"))
        {
            (Kind::PreauthDisconnect, Outcome::Failure)
        } else {
            (Kind::PreauthDisconnect, Outcome::Neutral)
        };
        return Some(AuthRecord::new(kind, outcome).endpoint(endpoint));
    }
    None
}

/// A connection that ends before authentication: a failure when it named a user (it was
/// authenticating, or tried an account that does not exist), a mere notice otherwise.
fn abandoned(named_a_user: bool) -> Outcome {
    if named_a_user {
        Outcome::Failure
    } else {
        Outcome::Neutral
    }
}

/// Scanners, failed negotiation, address checks and other notices.
fn sshd_notice(message: &str) -> Option<AuthRecord> {
    // Many of these come as `fatal: …` too; what matters is the client they name.
    let notice = message.strip_prefix("fatal: ").unwrap_or(message);
    if let Some(fields) = notice.strip_prefix("SSH: Server;Ltype: ") {
        return audit(fields);
    }
    if let Some(rest) = notice.strip_prefix("Connection from ") {
        // Connection from ADDR port N[ on ADDR port N[ rdomain "…"]]: a connection begins.
        let (endpoint, _) = endpoint(rest)?;
        return Some(AuthRecord::new(Kind::Connected, Outcome::Neutral).endpoint(endpoint));
    }
    // The same ends without the client's address: the connection they belong to has it.
    for (prefix, kind) in [
        ("kex_exchange_identification: ", Kind::NoIdentification),
        (
            "Unable to negotiate a key exchange method",
            Kind::NegotiationFailed,
        ),
        ("no matching ", Kind::NegotiationFailed),
        ("Read from socket failed: ", Kind::PreauthDisconnect),
    ] {
        if notice.starts_with(prefix) {
            return Some(AuthRecord::new(kind, Outcome::Neutral));
        }
    }
    for (prefix, kind) in [
        (
            "Did not receive identification string from ",
            Kind::NoIdentification,
        ),
        ("Unable to negotiate with ", Kind::NegotiationFailed),
        ("banner exchange: Connection from ", Kind::NegotiationFailed),
        (
            "ssh_dispatch_run_fatal: Connection from ",
            Kind::NegotiationFailed,
        ),
        (
            "Timeout before authentication for connection from ",
            Kind::NoIdentification,
        ),
        ("Timeout before authentication for ", Kind::NoIdentification),
    ] {
        if let Some(rest) = notice.strip_prefix(prefix) {
            let (endpoint, _) = endpoint(rest)?;
            return Some(AuthRecord::new(kind, Outcome::Neutral).endpoint(endpoint));
        }
    }
    if let Some(rest) = notice.strip_prefix("Bad protocol version identification ") {
        // 'TEXT' from ADDR port N: the text is the client's, so the last address is sshd's.
        let (_, endpoint, _) = user_then_endpoint(rest, " from ")?;
        return Some(AuthRecord::new(Kind::NoIdentification, Outcome::Neutral).endpoint(endpoint));
    }
    if let Some(rest) = message.strip_prefix("reverse mapping checking getaddrinfo for ") {
        // NAME [ADDR] failed - POSSIBLE BREAK-IN ATTEMPT!
        let (name, rest) = rest.split_once(" [")?;
        let (addr, _) = rest.split_once(']')?;
        let mut record = AuthRecord::new(Kind::BreakInAttempt, Outcome::Neutral);
        record.source_ip = Some(addr.parse().ok()?);
        record.remote_host = Some(name.to_string());
        return Some(record);
    }
    if let Some(rest) = message.strip_prefix("Address ") {
        // Address ADDR maps to NAME, but this does not map back to the address - POSSIBLE BREAK-IN ATTEMPT!
        if message.ends_with("POSSIBLE BREAK-IN ATTEMPT!") {
            let (endpoint, _) = endpoint(rest)?;
            return Some(
                AuthRecord::new(Kind::BreakInAttempt, Outcome::Neutral).endpoint(endpoint),
            );
        }
    }
    if message.starts_with("fatal: ")
        || message.starts_with("Received disconnect")
        || message.starts_with("Server listening on ")
    {
        return Some(AuthRecord::new(Kind::Info, Outcome::Neutral));
    }
    None
}

/// The audit form some vendor builds log: `SSH: Server;Ltype: KIND;Remote: ADDR-PORT;…`, with
/// `Name: USER` when the client names an account (`Ltype: Authname`).
fn audit(fields: &str) -> Option<AuthRecord> {
    let mut parts = fields.split(';');
    let kind = parts.next()?;
    let mut record = AuthRecord::new(
        if kind == "Version" {
            Kind::Connected
        } else {
            Kind::Info
        },
        Outcome::Neutral,
    );
    for part in parts {
        if let Some(remote) = part.strip_prefix("Remote: ") {
            let (addr, port) = remote.rsplit_once('-')?;
            record.source_ip = Some(addr.parse().ok()?);
            record.port = port.parse().ok();
        } else if let Some(name) = part.strip_prefix("Name: ") {
            record = record.user(name);
        }
    }
    Some(record)
}
