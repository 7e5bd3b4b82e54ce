//! What an authentication message means: sshd, PAM, sudo, su, account tools, systemd-logind
//! and dropbear messages turned into an [`AuthRecord`].
//!
//! Each program's messages are matched by their fixed words, anchored where user-supplied text
//! cannot move them: a user name may contain spaces (sshd logs it verbatim), so the user is
//! whatever lies between the fixed words before it and the *last* ` from ` that is followed by
//! an address. A message no rule knows yields `None`; the template miner handles it.

use std::net::IpAddr;

/// What kind of authentication event a line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A login succeeded (sshd `Accepted`, dropbear `auth succeeded`).
    LoginSuccess,
    /// A login attempt failed (wrong password or key).
    LoginFailed,
    /// PAM reports an authentication failure. sshd logs the same attempt as `Failed …` too,
    /// so this is kept apart: counting both would count every attempt twice.
    PamFailure,
    /// Someone tried a user name that does not exist.
    InvalidUser,
    /// sshd or PAM gave up on a connection after too many failures.
    MaxAttempts,
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
            Self::PamFailure => "PAM_AUTH_FAILURE",
            Self::InvalidUser => "INVALID_USER",
            Self::MaxAttempts => "MAX_AUTH_ATTEMPTS",
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
    fn new(kind: Kind, outcome: Outcome) -> Self {
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

    fn user(mut self, user: &str) -> Self {
        let user = user.trim();
        if !user.is_empty() {
            self.user = Some(user.to_string());
        }
        self
    }

    fn endpoint(mut self, endpoint: Endpoint) -> Self {
        self.source_ip = Some(endpoint.ip);
        self.port = endpoint.port;
        self
    }
}

/// Understands `message` as logged by `program` (`sshd`, `sudo`, …; `None` for a bare line,
/// which is tried against every program's messages).
#[must_use]
pub fn parse(program: Option<&str>, message: &str) -> Option<AuthRecord> {
    let message = message.trim();
    if let Some((count, inner)) = repeated(message) {
        let mut record = parse(program, inner)?;
        record.count = record.count.saturating_mul(count);
        return Some(record);
    }
    let program = program.map(|p| p.rsplit('/').next().unwrap_or(p));
    let rules: &[Rule] = match program {
        Some("sshd" | "sshd-session") => &[SSHD, PAM],
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
            record
        })
    })
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

#[derive(Debug, Clone, Copy)]
struct Endpoint {
    ip: IpAddr,
    port: Option<u16>,
}

/// `ADDR port N` or `ADDR` at the start of `text`; returns what follows.
fn endpoint(text: &str) -> Option<(Endpoint, &str)> {
    let (addr, rest) = text.split_once(' ').unwrap_or((text, ""));
    let addr = addr.trim_end_matches([':', ',']);
    let ip: IpAddr = addr.parse().ok()?;
    if let Some(after) = rest.strip_prefix("port ") {
        let end = after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len());
        if let Ok(port) = after[..end].parse() {
            return Some((
                Endpoint {
                    ip,
                    port: Some(port),
                },
                after[end..].trim_start_matches(':').trim_start(),
            ));
        }
    }
    Some((Endpoint { ip, port: None }, rest))
}

/// Splits `text` at the last `separator` that is followed by an address: user names may
/// contain anything, including the separator.
fn user_then_endpoint<'a>(text: &'a str, separator: &str) -> Option<(&'a str, Endpoint, &'a str)> {
    let mut search = text.len();
    while let Some(at) = text[..search].rfind(separator) {
        if let Some((endpoint, rest)) = endpoint(&text[at + separator.len()..]) {
            return Some((&text[..at], endpoint, rest));
        }
        search = at;
    }
    None
}

fn sshd(message: &str) -> Option<AuthRecord> {
    let message = message.strip_prefix("error: ").unwrap_or(message);
    let message = message.strip_suffix(" [preauth]").unwrap_or(message);
    sshd_auth(message)
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
            let (user, endpoint, _) = user_then_endpoint(rest, " from ")?;
            let (user, invalid) = match user.strip_prefix("invalid user ") {
                Some(user) => (user, true),
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

/// `[invalid |authenticating ]user NAME` → (NAME, invalid).
fn who(text: &str) -> (&str, bool) {
    if let Some(user) = text.strip_prefix("invalid user ") {
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
        let mut record = if reason.contains("Too many authentication failures") {
            AuthRecord::new(Kind::MaxAttempts, Outcome::Failure)
        } else {
            AuthRecord::new(Kind::PreauthDisconnect, Outcome::Neutral)
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
            let (user, invalid, endpoint) = if let Some((endpoint, _)) = endpoint(rest) {
                ("", false, endpoint)
            } else {
                let (text, endpoint, _) = user_then_endpoint(rest, " ")?;
                let (user, invalid) = who(text);
                (user, invalid, endpoint)
            };
            let kind = if prefix == "Disconnected from " && rest.starts_with("user ") {
                Kind::Disconnect
            } else {
                Kind::PreauthDisconnect
            };
            let mut record = AuthRecord::new(kind, Outcome::Neutral)
                .user(user)
                .endpoint(endpoint);
            record.invalid_user = invalid;
            return Some(record);
        }
    }
    if let Some(rest) = message.strip_prefix("Received disconnect from ") {
        let (endpoint, _) = endpoint(rest)?;
        let kind = if message.contains("disconnected by user") {
            Kind::Disconnect
        } else {
            Kind::PreauthDisconnect
        };
        return Some(AuthRecord::new(kind, Outcome::Neutral).endpoint(endpoint));
    }
    None
}

/// Scanners, failed negotiation, address checks and other notices.
fn sshd_notice(message: &str) -> Option<AuthRecord> {
    if let Some(rest) = message.strip_prefix("Did not receive identification string from ") {
        let (endpoint, _) = endpoint(rest)?;
        return Some(AuthRecord::new(Kind::NoIdentification, Outcome::Neutral).endpoint(endpoint));
    }
    if let Some(rest) = message.strip_prefix("Unable to negotiate with ") {
        let (endpoint, _) = endpoint(rest)?;
        return Some(AuthRecord::new(Kind::NegotiationFailed, Outcome::Neutral).endpoint(endpoint));
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
        || message.starts_with("Connection from ")
    {
        return Some(AuthRecord::new(Kind::Info, Outcome::Neutral));
    }
    None
}

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

fn pam(message: &str) -> Option<AuthRecord> {
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
fn strip_uid(text: &str) -> &str {
    match text.find('(') {
        Some(at) => &text[..at],
        None => text,
    }
}

fn sudo(message: &str) -> Option<AuthRecord> {
    // USER : [N incorrect password attempts ; ]TTY=pts/0 ; PWD=/x ; USER=root ; COMMAND=/bin/ls
    let (user, rest) = message.split_once(" : ")?;
    let user = user.trim();
    if user.is_empty() || user.contains(' ') {
        return None;
    }
    let mut fields = rest.split(" ; ");
    let first = fields.next()?;
    let (kind, outcome, count) = if first.ends_with("incorrect password attempts")
        || first.ends_with("incorrect password attempt")
    {
        let count = first
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        (Kind::SudoFailed, Outcome::Failure, count)
    } else if first == "user NOT in sudoers" || first == "command not allowed" {
        (Kind::SudoFailed, Outcome::Failure, 1)
    } else if first.starts_with("TTY=") {
        (Kind::SudoCommand, Outcome::Success, 1)
    } else {
        return None;
    };
    let mut record = AuthRecord::new(kind, outcome).user(user);
    record.count = count;
    for field in std::iter::once(first).chain(fields) {
        if let Some(target) = field.strip_prefix("USER=") {
            record.target = Some(target.to_string());
        } else if let Some(command) = field.strip_prefix("COMMAND=") {
            record.command = Some(command.to_string());
        }
    }
    Some(record)
}

fn su(message: &str) -> Option<AuthRecord> {
    // Successful su for TARGET by USER / FAILED su for TARGET by USER
    for (prefix, kind, outcome) in [
        ("Successful su for ", Kind::SuSuccess, Outcome::Success),
        ("FAILED su for ", Kind::SuFailed, Outcome::Failure),
    ] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (target, user) = rest.rsplit_once(" by ")?;
            let mut record = AuthRecord::new(kind, outcome).user(user);
            record.target = Some(target.to_string());
            return Some(record);
        }
    }
    // (to TARGET) USER on TTY
    if let Some(rest) = message.strip_prefix("(to ") {
        let (target, rest) = rest.split_once(") ")?;
        let user = rest.rsplit_once(" on ").map_or(rest, |(user, _)| user);
        let mut record = AuthRecord::new(Kind::SuSuccess, Outcome::Success).user(user);
        record.target = Some(target.to_string());
        return Some(record);
    }
    None
}

/// `name=NAME, UID=…` → NAME.
fn name_field(text: &str) -> Option<&str> {
    let start = text.find("name=")? + "name=".len();
    let value = text[start..].split([',', ' ']).next()?;
    (!value.is_empty()).then_some(value)
}

/// Text between the first pair of single quotes.
fn quoted(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once('\'')?;
    Some(rest.split_once('\'')?.0)
}

fn accounts(message: &str) -> Option<AuthRecord> {
    if let Some(rest) = message.strip_prefix("new user: ") {
        return Some(AuthRecord::new(Kind::UserCreated, Outcome::Success).user(name_field(rest)?));
    }
    if let Some(rest) = message.strip_prefix("new group: ") {
        let mut record = AuthRecord::new(Kind::GroupCreated, Outcome::Success);
        record.target = Some(name_field(rest)?.to_string());
        return Some(record);
    }
    if message.starts_with("delete user ") {
        return Some(AuthRecord::new(Kind::UserDeleted, Outcome::Success).user(quoted(message)?));
    }
    // usermod: add 'USER' to group 'GROUP' / add 'USER' to shadow group 'GROUP'
    if let Some(rest) = message.strip_prefix("add ") {
        let user = quoted(rest)?;
        let (_, group_part) = rest.split_once(" group ")?;
        let mut record = AuthRecord::new(Kind::GroupMemberAdded, Outcome::Success).user(user);
        record.target = Some(quoted(group_part)?.to_string());
        return Some(record);
    }
    // gpasswd: user USER added by ADMIN to group GROUP
    if let Some((user, rest)) = message
        .strip_prefix("user ")
        .and_then(|rest| rest.split_once(" added by "))
    {
        {
            let (_, group) = rest.rsplit_once(" to group ")?;
            let mut record = AuthRecord::new(Kind::GroupMemberAdded, Outcome::Success).user(user);
            record.target = Some(group.to_string());
            return Some(record);
        }
    }
    if let Some(rest) = message.strip_prefix("change user ") {
        return Some(AuthRecord::new(Kind::UserModified, Outcome::Success).user(quoted(rest)?));
    }
    if let Some(rest) = message.strip_prefix("password for ") {
        let user = quoted(rest).unwrap_or_else(|| rest.split(' ').next().unwrap_or(""));
        return Some(AuthRecord::new(Kind::PasswordChanged, Outcome::Success).user(user));
    }
    None
}

fn logind(message: &str) -> Option<AuthRecord> {
    if let Some(rest) = message.strip_prefix("New session ") {
        let (_, user) = rest.split_once(" of user ")?;
        return Some(
            AuthRecord::new(Kind::LogindSessionNew, Outcome::Success)
                .user(user.trim_end_matches('.')),
        );
    }
    if message.starts_with("Removed session ") {
        return Some(AuthRecord::new(
            Kind::LogindSessionRemoved,
            Outcome::Neutral,
        ));
    }
    if message.starts_with("Session ") || message.starts_with("Watching system buttons") {
        return Some(AuthRecord::new(Kind::Info, Outcome::Neutral));
    }
    None
}

fn dropbear(message: &str) -> Option<AuthRecord> {
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
