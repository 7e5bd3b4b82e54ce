//! Local privilege and account messages: sudo, su, the shadow tools (useradd, usermod,
//! userdel, groupadd, gpasswd, passwd, chpasswd) and systemd-logind.

use super::{AuthRecord, Kind, Outcome};

pub(super) fn sudo(message: &str) -> Option<AuthRecord> {
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

pub(super) fn su(message: &str) -> Option<AuthRecord> {
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
pub(super) fn quoted(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once('\'')?;
    Some(rest.split_once('\'')?.0)
}

pub(super) fn accounts(message: &str) -> Option<AuthRecord> {
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

pub(super) fn logind(message: &str) -> Option<AuthRecord> {
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
