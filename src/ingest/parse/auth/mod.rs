//! What an authentication message means: sshd, PAM, sudo, su, account tools, systemd-logind
//! and dropbear messages turned into an [`AuthRecord`].
//!
//! Each program's messages are matched by their fixed words, anchored where user-supplied text
//! cannot move them: a user name may contain spaces (sshd logs it verbatim), so the user is
//! whatever lies between the fixed words before it and the *last* ` from ` that is followed by
//! an address. A message no rule knows yields `None`; the template miner handles it.

mod dropbear;
mod local;
mod pam;
mod sshd;

use std::net::IpAddr;

use dropbear::dropbear;
use local::{accounts, logind, su, sudo};
use pam::pam;
use sshd::sshd;

/// What kind of authentication event a line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A login succeeded (sshd `Accepted`, dropbear `auth succeeded`).
    LoginSuccess,
    /// A login attempt failed (wrong password or key).
    LoginFailed,
    /// sshd refused the account or the client before any password was checked (`AllowUsers`,
    /// `DenyUsers`, `AllowGroups`, `DenyGroups`, no group, `ROOT LOGIN REFUSED`, TCP wrappers).
    LoginRefused,
    /// PAM reports an authentication failure. sshd logs the same attempt as `Failed …` too,
    /// so this is kept apart: counting both would count every attempt twice.
    PamFailure,
    /// Someone tried a user name that does not exist.
    InvalidUser,
    /// sshd or PAM gave up on a connection after too many failures.
    MaxAttempts,
    /// A client connected (sshd `Connection from`, logged at `LogLevel VERBOSE`).
    Connected,
    /// A connection ended before authentication.
    PreauthDisconnect,
    /// An authenticated connection ended.
    Disconnect,
    /// A client connected and sent nothing (a scanner).
    NoIdentification,
    /// Key exchange failed (old or scanning clients).
    NegotiationFailed,
    /// The client's address does not map back to its name.
    BreakInAttempt,
    /// A PAM session opened or closed.
    SessionOpened,
    SessionClosed,
    /// sudo ran a command, or refused one.
    SudoCommand,
    SudoFailed,
    /// su switched user, or failed to.
    SuSuccess,
    SuFailed,
    /// Account changes.
    UserCreated,
    UserDeleted,
    UserModified,
    GroupCreated,
    GroupMemberAdded,
    PasswordChanged,
    /// systemd-logind session bookkeeping.
    LogindSessionNew,
    LogindSessionRemoved,
    /// Recognised but only informative (PAM bookkeeping, sshd notices).
    Info,
}

impl Kind {
    /// The stored `event_type`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::LoginSuccess => "LOGIN_SUCCESS",
            Self::LoginFailed => "LOGIN_FAILED",
            Self::LoginRefused => "LOGIN_REFUSED",
            Self::PamFailure => "PAM_AUTH_FAILURE",
            Self::InvalidUser => "INVALID_USER",
            Self::MaxAttempts => "MAX_AUTH_ATTEMPTS",
            Self::Connected => "CONNECTION",
            Self::PreauthDisconnect => "PREAUTH_DISCONNECT",
            Self::Disconnect => "DISCONNECT",
            Self::NoIdentification => "NO_IDENTIFICATION",
            Self::NegotiationFailed => "NEGOTIATION_FAILED",
            Self::BreakInAttempt => "BREAKIN_ATTEMPT",
            Self::SessionOpened => "SESSION_OPENED",
            Self::SessionClosed => "SESSION_CLOSED",
            Self::SudoCommand => "SUDO_COMMAND",
            Self::SudoFailed => "SUDO_FAILED",
            Self::SuSuccess => "SU_SUCCESS",
            Self::SuFailed => "SU_FAILED",
            Self::UserCreated => "USER_CREATED",
            Self::UserDeleted => "USER_DELETED",
            Self::UserModified => "USER_MODIFIED",
            Self::GroupCreated => "GROUP_CREATED",
            Self::GroupMemberAdded => "GROUP_MEMBER_ADDED",
            Self::PasswordChanged => "PASSWORD_CHANGED",
            Self::LogindSessionNew => "LOGIND_SESSION_NEW",
            Self::LogindSessionRemoved => "LOGIND_SESSION_REMOVED",
            Self::Info => "AUTH_INFO",
        }
    }
}

/// How an event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// Neither: a notice or bookkeeping.
    Neutral,
}

/// One authentication message, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRecord {
    /// The family of messages that recognised the line (`sshd`, `pam`, `sudo`, …).
    pub parser: &'static str,
    pub kind: Kind,
    pub outcome: Outcome,
    /// The account the event is about (the one logging in, running sudo, being created).
    pub user: Option<String>,
    pub source_ip: Option<IpAddr>,
    pub port: Option<u16>,
    /// `password`, `publickey`, `keyboard-interactive/pam`, `none`, …
    pub method: Option<String>,
    /// The account switched to (`sudo` `USER=`, `su` target) or the group joined.
    pub target: Option<String>,
    /// The command run through sudo.
    pub command: Option<String>,
    /// PAM's `rhost` when it is a name rather than an address.
    pub remote_host: Option<String>,
    /// The user name does not exist on the host (`invalid user`).
    pub invalid_user: bool,
    /// How many attempts the line stands for (`message repeated N times`, `N incorrect
    /// password attempts`, `PAM N more authentication failures`); 1 otherwise.
    pub count: u32,
}

impl AuthRecord {
    pub(super) fn new(kind: Kind, outcome: Outcome) -> Self {
        Self {
            parser: "",
            kind,
            outcome,
            user: None,
            source_ip: None,
            port: None,
            method: None,
            target: None,
            command: None,
            remote_host: None,
            invalid_user: false,
            count: 1,
        }
    }

    pub(super) fn user(mut self, user: &str) -> Self {
        let user = user.trim();
        if !user.is_empty() {
            self.user = Some(user.to_string());
        }
        self
    }

    pub(super) fn endpoint(mut self, endpoint: Endpoint<'_>) -> Self {
        self.source_ip = endpoint.ip;
        self.port = endpoint.port;
        if let Some(name) = endpoint.name {
            self.remote_host = Some(name.to_string());
        }
        self
    }
}

/// Understands `message` as logged by `program` (`sshd`, `sudo`, …; `None` for a bare line,
/// which is tried against every program's messages).
#[must_use]
pub fn parse(program: Option<&str>, message: &str) -> Option<AuthRecord> {
    let message = without_message_id(message.trim());
    if let Some((count, inner)) = repeated(message) {
        let mut record = parse(program, inner)?;
        record.count = record.count.saturating_mul(count);
        return Some(record);
    }
    let program = program.map(|p| p.rsplit('/').next().unwrap_or(p));
    let rules: &[Rule] = match program {
        Some(p) if is_sshd(p) => &[SSHD, PAM],
        Some("sudo") => &[SUDO, PAM],
        Some("su") => &[SU, PAM],
        Some(
            "useradd" | "usermod" | "userdel" | "groupadd" | "gpasswd" | "passwd" | "chpasswd",
        ) => &[ACCOUNTS, PAM],
        Some("systemd-logind") => &[LOGIND],
        Some("dropbear") => &[DROPBEAR],
        Some(_) => &[PAM],
        None => &[SSHD, PAM, SUDO, SU, ACCOUNTS, LOGIND, DROPBEAR],
    };
    rules.iter().find_map(|(name, rule)| {
        rule(message).map(|mut record| {
            record.parser = name;
            // `::ffff:192.0.2.1` is the IPv4 address as a dual-stack socket reports it.
            record.source_ip = record.source_ip.map(|ip| ip.to_canonical());
            record
        })
    })
}

/// Whether `program` (a name or a path) is sshd, under either name it logs as.
#[must_use]
pub fn is_sshd(program: &str) -> bool {
    matches!(
        program.rsplit('/').next().unwrap_or(program),
        "sshd" | "sshd-session"
    )
}

/// The message without the `[ID 800047 auth.info] ` that Solaris and illumos put first.
fn without_message_id(message: &str) -> &str {
    let Some(rest) = message.strip_prefix("[ID ") else {
        return message;
    };
    let Some((id, rest)) = rest.split_once(' ') else {
        return message;
    };
    match rest.split_once("] ") {
        Some((facility, after))
            if id.bytes().all(|b| b.is_ascii_digit()) && !facility.contains(' ') =>
        {
            after
        }
        _ => message,
    }
}

/// A family of messages: its name (reported as the parser) and its reader.
type Rule = (&'static str, fn(&str) -> Option<AuthRecord>);
const SSHD: Rule = ("sshd", sshd);
const PAM: Rule = ("pam", pam);
const SUDO: Rule = ("sudo", sudo);
const SU: Rule = ("su", su);
const ACCOUNTS: Rule = ("accounts", accounts);
const LOGIND: Rule = ("systemd-logind", logind);
const DROPBEAR: Rule = ("dropbear", dropbear);

/// `message repeated N times: [ inner]`
fn repeated(message: &str) -> Option<(u32, &str)> {
    let rest = message.strip_prefix("message repeated ")?;
    let (count, rest) = rest.split_once(" times: [")?;
    let inner = rest.strip_suffix(']')?;
    Some((count.parse().ok()?, inner.trim()))
}

/// Where a client came from: an address, or a host name where sshd logs one (`UseDNS`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Endpoint<'a> {
    pub(super) ip: Option<IpAddr>,
    pub(super) name: Option<&'a str>,
    pub(super) port: Option<u16>,
}

/// `ADDR port N` or `ADDR` at the start of `text`; returns what follows.
pub(super) fn endpoint(text: &str) -> Option<(Endpoint<'_>, &str)> {
    let (addr, rest) = text.split_once(' ').unwrap_or((text, ""));
    let ip: IpAddr = addr.trim_end_matches([':', ',']).parse().ok()?;
    Some(with_port(
        Endpoint {
            ip: Some(ip),
            name: None,
            port: None,
        },
        rest,
    ))
}

/// As [`endpoint`], or a host name: letters, digits, dots and dashes, with a letter; or four
/// dotted numbers that are no address as written (`192.030.0.6`: a resolver may read the
/// leading zero as octal), kept as the name they are.
pub(super) fn host_endpoint(text: &str) -> Option<(Endpoint<'_>, &str)> {
    if let Some(found) = endpoint(text) {
        return Some(found);
    }
    let (name, rest) = text.split_once(' ').unwrap_or((text, ""));
    let name = name.trim_end_matches([':', ',']);
    let dotted = || {
        let labels: Vec<&str> = name.split('.').collect();
        labels.len() == 4
            && labels
                .iter()
                .all(|l| (1..=3).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_digit()))
    };
    let plausible = !name.is_empty()
        && name.len() <= 253
        && (name.bytes().any(|b| b.is_ascii_alphabetic()) || dotted())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    plausible.then(|| {
        with_port(
            Endpoint {
                ip: None,
                name: Some(name),
                port: None,
            },
            rest,
        )
    })
}

/// Reads `port N` from the start of `rest` into `endpoint`; returns what follows.
fn with_port<'a>(mut endpoint: Endpoint<'a>, rest: &'a str) -> (Endpoint<'a>, &'a str) {
    if let Some(after) = rest.strip_prefix("port ") {
        let end = after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len());
        if let Ok(port) = after[..end].parse() {
            endpoint.port = Some(port);
            return (endpoint, after[end..].trim_start_matches(':').trim_start());
        }
    }
    (endpoint, rest)
}

/// Splits `text` at the last `separator` that is followed by an address: user names may
/// contain anything, including the separator.
pub(super) fn user_then_endpoint<'a>(
    text: &'a str,
    separator: &str,
) -> Option<(&'a str, Endpoint<'a>, &'a str)> {
    split_at_endpoint(text, separator, endpoint)
}

/// As [`user_then_endpoint`], and failing that at the last `separator` followed by a host
/// name.
pub(super) fn user_then_host<'a>(
    text: &'a str,
    separator: &str,
) -> Option<(&'a str, Endpoint<'a>, &'a str)> {
    user_then_endpoint(text, separator)
        .or_else(|| split_at_endpoint(text, separator, host_endpoint))
}

fn split_at_endpoint<'a>(
    text: &'a str,
    separator: &str,
    read: fn(&'a str) -> Option<(Endpoint<'a>, &'a str)>,
) -> Option<(&'a str, Endpoint<'a>, &'a str)> {
    let mut search = text.len();
    while let Some(at) = text[..search].rfind(separator) {
        if let Some((endpoint, rest)) = read(&text[at + separator.len()..]) {
            return Some((&text[..at], endpoint, rest));
        }
        search = at;
    }
    None
}
