//! sshd's connections, remembered across lines by host and process id, so that each line of a
//! connection is read with what its other lines said.
//!
//! sshd tells one connection over several lines, and only some of them carry the client's
//! address (`Disconnecting: Too many authentication failures [preauth]`, `fatal: Read from
//! socket failed`, `kex_exchange_identification: …`) or the account. It also tells one attempt
//! more than once: `Invalid user admin from A` and then `Failed password for invalid user
//! admin`; PAM's `authentication failure` and then sshd's `Failed password`; `Received
//! disconnect` and then `Disconnected from invalid user`. [`Connections::follow`] fills in the
//! address, port and account a line lacks, and sets the `count` of each failure to the attempts
//! it adds:
//!
//! - a `Failed …` line counts its attempts, except one that an earlier line of the connection
//!   already counted (an `Invalid user` or a refusal, which come before their `Failed` line),
//!   and `Failed publickey` for an existing account: clients offer all their keys in turn, and
//!   only a connection that then ends without a login is an attempt;
//! - an `Invalid user` line or a refusal (`AllowUsers`, `DenyUsers`, …) counts one attempt when
//!   it is the connection's first, so that a server without passwords, which logs no `Failed`
//!   line, still counts it;
//! - PAM's report counts nothing: sshd's own line follows;
//! - the end of a connection before authentication (`Connection closed by authenticating user
//!   …`, `Received disconnect … [preauth]`, too many failures) counts one attempt when the
//!   connection named an account or failed, and nothing before it counted; the end of a
//!   connection that never named an account (a scanner, a health check) counts nothing.
//!
//! A line that shows an attempt before any line of its connection gave the client's address
//! counts nothing; the first line that has the address counts it instead.
//!
//! Memory is bounded: at most [`CAPACITY`] connections, the oldest forgotten first; a
//! connection silent for [`IDLE_MICROS`] is taken for a new one (process ids are reused), as
//! is a line from another client.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::net::IpAddr;

use rustc_hash::FxHashMap;

use super::{AuthRecord, Framed, Kind, Outcome};

/// Most connections remembered at once. What needs remembering is a connection before it
/// authenticates, and sshd admits 100 of those at a time by default (`MaxStartups`): this
/// covers that many on 160 hosts.
pub const CAPACITY: usize = 16_384;
/// A connection with no line for this long (µs) is over: sshd gives a client two minutes to
/// authenticate (`LoginGraceTime`).
pub const IDLE_MICROS: i64 = 15 * 60 * 1_000_000;

/// Host (hashed) and process id.
type Key = (u64, u32);

/// Which connection a line belongs to; see [`key_of`].
#[derive(Debug, Clone, Copy)]
pub struct ConnectionKey(Key);

/// The connection of the line `framed`: sshd lines with a process id only, on the line's host
/// or else `default_host`. Lines of other programs, or without a pid, belong to none.
#[must_use]
pub fn key_of(framed: &Framed<'_>, default_host: Option<&str>) -> Option<ConnectionKey> {
    let pid = framed
        .pid
        .filter(|_| framed.program.is_some_and(super::auth::is_sshd))?;
    let host = rustc_hash::FxBuildHasher.hash_one(framed.host.or(default_host).unwrap_or(""));
    Some(ConnectionKey((host, pid)))
}

#[derive(Debug, Default)]
struct Connection {
    /// Which start of this key it is, to tell stale entries of the eviction order apart.
    generation: u64,
    last: i64,
    ip: Option<IpAddr>,
    name: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    invalid_user: bool,
    /// Attempts counted so far.
    counted: u32,
    /// Attempts counted by an `Invalid user` or a refusal whose `Failed` line is still to come.
    credit: u32,
    /// An attempt was shown but not counted: no line had the client's address yet.
    pending: bool,
    /// Authentication succeeded.
    authenticated: bool,
}

impl Connection {
    /// Whether `record` names a different client than the one this connection had.
    fn other_client(&self, record: &AuthRecord) -> bool {
        matches!((self.ip, record.source_ip), (Some(a), Some(b)) if a != b)
            || matches!((&self.name, &record.remote_host), (Some(a), Some(b)) if a != b)
    }
}

/// The connections of every host, bounded; see the module's documentation.
#[derive(Debug, Default)]
pub struct Connections {
    open: FxHashMap<Key, Connection>,
    /// Keys in the order their connections started, oldest first.
    order: VecDeque<(Key, u64)>,
    generations: u64,
}

impl Connections {
    /// How many connections are remembered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.open.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Reads `record`, from a line logged at `at` (µs), as part of the connection `key`.
    pub fn follow(&mut self, key: ConnectionKey, at: i64, record: &mut AuthRecord) {
        let connection = self.connection(key.0, at, record);
        account(connection, record);
    }

    /// The connection `record` belongs to: the one remembered under `key`, or a new one.
    fn connection(&mut self, key: Key, at: i64, record: &AuthRecord) -> &mut Connection {
        let current = self.open.get(&key).is_some_and(|c| {
            record.kind != Kind::Connected
                && at.saturating_sub(c.last) <= IDLE_MICROS
                && !c.other_client(record)
        });
        if !current {
            if !self.open.contains_key(&key) {
                self.make_room();
            }
            self.generations += 1;
            let generation = self.generations;
            self.order.push_back((key, generation));
            self.open.insert(
                key,
                Connection {
                    generation,
                    last: at,
                    ..Connection::default()
                },
            );
            if self.order.len() > 2 * CAPACITY {
                let open = &self.open;
                self.order.retain(|(key, generation)| {
                    open.get(key).map(|c| c.generation) == Some(*generation)
                });
            }
        }
        let connection = self.open.entry(key).or_default();
        connection.last = connection.last.max(at);
        connection
    }

    /// Forgets the oldest connections until one more fits.
    fn make_room(&mut self) {
        while self.open.len() >= CAPACITY {
            let Some((key, generation)) = self.order.pop_front() else {
                self.open.clear();
                return;
            };
            if self.open.get(&key).map(|c| c.generation) == Some(generation) {
                self.open.remove(&key);
            }
        }
    }
}

/// Fills `record` from its connection and counts its attempts; see the module's documentation.
fn account(connection: &mut Connection, record: &mut AuthRecord) {
    // What the line lacks, its connection may know; what it has, the connection learns.
    if record.source_ip.is_none() && record.remote_host.is_none() {
        record.source_ip = connection.ip;
        record.remote_host.clone_from(&connection.name);
        record.port = record.port.or(connection.port);
    } else {
        connection.ip = record.source_ip.or(connection.ip);
        if record.remote_host.is_some() && connection.name != record.remote_host {
            connection.name.clone_from(&record.remote_host);
        }
        connection.port = record.port.or(connection.port);
    }
    let about_the_account = matches!(
        record.kind,
        Kind::LoginFailed
            | Kind::LoginSuccess
            | Kind::InvalidUser
            | Kind::LoginRefused
            | Kind::PamFailure
            | Kind::MaxAttempts
            | Kind::PreauthDisconnect
    );
    if about_the_account {
        match &record.user {
            Some(user) => {
                if connection.user.as_ref() != Some(user) {
                    connection.user = Some(user.clone());
                }
                connection.invalid_user = record.invalid_user;
            }
            None if connection.user.is_some() => {
                record.user.clone_from(&connection.user);
                record.invalid_user |= connection.invalid_user;
            }
            None => {}
        }
    }
    let has_client = record.source_ip.is_some() || record.remote_host.is_some();
    match record.kind {
        Kind::LoginSuccess => {
            connection.authenticated = true;
            connection.credit = 0;
            connection.pending = false;
        }
        Kind::LoginFailed if offered_key(record) => {
            record.count = 0;
            connection.pending |= !connection.authenticated;
        }
        Kind::LoginFailed => {
            let told = connection.credit.min(record.count);
            connection.credit -= told;
            record.count -= told;
            connection.counted += record.count;
            connection.pending = false;
        }
        Kind::InvalidUser | Kind::LoginRefused => {
            if connection.authenticated || connection.counted > 0 {
                record.count = 0;
            } else if !has_client {
                record.count = 0;
                connection.pending = true;
            } else {
                connection.counted += record.count;
                connection.credit += 1;
                connection.pending = false;
            }
        }
        // A client that names an account (`Postponed publickey`, an audit line's `Name:`)
        // has begun an attempt, which its connection's end counts if nothing else does.
        Kind::Info if record.user.is_some() => {
            connection.user.clone_from(&record.user);
            connection.pending |= connection.counted == 0 && !connection.authenticated;
        }
        Kind::PamFailure => {
            record.count = 0;
            connection.pending |= connection.counted == 0 && !connection.authenticated;
        }
        Kind::MaxAttempts | Kind::PreauthDisconnect => {
            let attempt = record.outcome == Outcome::Failure || connection.pending;
            if !attempt || connection.authenticated || connection.counted > 0 {
                record.count = 0;
            } else if !has_client {
                record.count = 0;
                connection.pending = true;
            } else {
                record.outcome = Outcome::Failure;
                record.count = record.count.max(1);
                connection.counted += record.count;
                connection.pending = false;
            }
        }
        _ => {}
    }
}

/// A key of an existing account that did not open it: clients offer every key they hold, one
/// after the other, and sshd (at `LogLevel VERBOSE`) logs each refused one as `Failed
/// publickey` before the right one is accepted. Only a connection that ends without a login
/// makes them an attempt, which its end counts.
fn offered_key(record: &AuthRecord) -> bool {
    !record.invalid_user && record.method.as_deref() == Some("publickey")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse::parse_line;

    /// A line as read: event type, outcome, attempts, client, user.
    type Read = (String, Outcome, u32, Option<String>, Option<String>);

    /// Each line read in order.
    fn follow(lines: &str) -> Vec<Read> {
        let mut connections = Connections::default();
        lines
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|line| {
                let parsed = parse_line(line);
                let mut record = parsed.record.clone().expect(line);
                let at = parsed
                    .framed
                    .time
                    .and_then(|t| t.resolve(2026, time::UtcOffset::UTC))
                    .expect(line);
                if let Some(key) = key_of(&parsed.framed, None) {
                    connections.follow(key, at, &mut record);
                }
                let client = record
                    .source_ip
                    .map(|ip| ip.to_string())
                    .or(record.remote_host);
                (
                    record.kind.as_str().to_string(),
                    record.outcome,
                    record.count,
                    client,
                    record.user,
                )
            })
            .collect()
    }

    /// The attempts counted: failures with their count.
    fn attempts(lines: &str) -> u32 {
        follow(lines)
            .iter()
            .filter(|(_, outcome, ..)| *outcome == Outcome::Failure)
            .map(|(_, _, count, ..)| count)
            .sum()
    }

    #[test]
    fn a_password_attempt_told_four_ways_counts_once() {
        let log = "
            Mar  1 10:00:00 h sshd[10]: Invalid user admin from 203.0.113.5 port 4000
            Mar  1 10:00:00 h sshd[10]: pam_unix(sshd:auth): check pass; user unknown
            Mar  1 10:00:00 h sshd[10]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.5
            Mar  1 10:00:02 h sshd[10]: Failed password for invalid user admin from 203.0.113.5 port 4000 ssh2
            Mar  1 10:00:02 h sshd[10]: Received disconnect from 203.0.113.5 port 4000:11: Bye Bye [preauth]
            Mar  1 10:00:02 h sshd[10]: Disconnected from invalid user admin 203.0.113.5 port 4000 [preauth]";
        assert_eq!(attempts(log), 1);
        // Two more passwords on the same connection are two more attempts.
        let more = format!(
            "{log}\n{}",
            "Mar  1 10:00:03 h sshd[10]: Failed password for invalid user admin from 203.0.113.5 port 4000 ssh2
             Mar  1 10:00:04 h sshd[10]: message repeated 2 times: [ Failed password for invalid user admin from 203.0.113.5 port 4000 ssh2]"
        );
        assert_eq!(attempts(&more), 4);
    }

    #[test]
    fn a_server_without_passwords_counts_what_the_client_tried() {
        // No `Failed` line: the client named an account and went away.
        let invalid = "
            Mar  1 10:00:00 h sshd[11]: Invalid user oracle from 203.0.113.6 port 4001
            Mar  1 10:00:00 h sshd[11]: Received disconnect from 203.0.113.6 port 4001:11: Bye Bye [preauth]
            Mar  1 10:00:00 h sshd[11]: Disconnected from invalid user oracle 203.0.113.6 port 4001 [preauth]";
        assert_eq!(attempts(invalid), 1);
        let existing = "Mar  1 10:00:00 h sshd[12]: Connection closed by authenticating user root 203.0.113.7 port 4002 [preauth]";
        assert_eq!(attempts(existing), 1);
        // A scanner or a health check names nobody: nothing counts.
        let probe = "
            Mar  1 10:00:00 h sshd[13]: Connection from 192.0.2.9 port 4003 on 192.0.2.1 port 22
            Mar  1 10:00:00 h sshd[13]: Connection closed by 192.0.2.9 port 4003 [preauth]";
        assert_eq!(attempts(probe), 0);
    }

    #[test]
    fn lines_without_the_client_get_it_from_their_connection() {
        let lines = follow(
            "
            Feb 12 04:09:18 h sshd[26713]: Connection from 115.249.163.77 port 51353 on 127.0.0.1 port 22
            Feb 12 04:09:21 h sshd[26713]: Disconnecting: Too many authentication failures [preauth]
            Feb 17 17:40:17 h sshd[19725]: Connection from 192.0.2.10 port 62004 on 192.0.2.10 port 22
            Feb 17 17:40:17 h sshd[19725]: error: kex_exchange_identification: client sent invalid protocol identifier \"\"
            Feb 17 17:40:18 h sshd[19725]: fatal: Read from socket failed: Connection reset by peer [preauth]",
        );
        let too_many = &lines[1];
        assert_eq!(
            (too_many.1, too_many.2, too_many.3.as_deref()),
            (Outcome::Failure, 1, Some("115.249.163.77"))
        );
        // A scanner's traces get its address and stay notices.
        for scan in &lines[3..] {
            assert_eq!(
                (scan.1, scan.3.as_deref()),
                (Outcome::Neutral, Some("192.0.2.10"))
            );
        }
    }

    #[test]
    fn a_vendor_audit_line_names_the_client_and_the_account() {
        let lines = follow(
            "
            Nov 24 23:46:39 host sshd[32686]: SSH: Server;Ltype: Version;Remote: 127.0.0.1-1780;Protocol: 2.0;Client: libssh2_1.4.3
            Nov 24 23:46:41 host sshd[32686]: SSH: Server;Ltype: Authname;Remote: 127.0.0.1-1780;Name: root [preauth]
            Nov 24 23:46:43 host sshd[32686]: fatal: Read from socket failed: Connection reset by peer [preauth]",
        );
        let end = &lines[2];
        assert_eq!(
            (end.1, end.2, end.3.as_deref(), end.4.as_deref()),
            (Outcome::Failure, 1, Some("127.0.0.1"), Some("root"))
        );
    }

    #[test]
    fn an_attempt_seen_before_the_address_counts_where_the_address_is() {
        let lines = follow(
            "
            Nov 23 21:50:19 h sshd[8148]: Disconnecting: Too many authentication failures for root [preauth]
            Nov 23 21:50:37 h sshd[8148]: Connection closed by 61.0.0.1 [preauth]
            Apr 24 01:39:19 h sshd[3719]: User root not allowed because account is locked
            Apr 24 01:39:19 h sshd[3719]: input_userauth_request: invalid user root [preauth]
            Apr 24 01:39:19 h sshd[3719]: error: Received disconnect from 198.51.100.34: 11: Bye Bye [preauth]",
        );
        let counted: Vec<(u32, Option<&str>, Option<&str>)> = lines
            .iter()
            .filter(|l| l.1 == Outcome::Failure && l.2 > 0)
            .map(|l| (l.2, l.3.as_deref(), l.4.as_deref()))
            .collect();
        assert_eq!(
            counted,
            [
                (1, Some("61.0.0.1"), Some("root")),
                (1, Some("198.51.100.34"), Some("root"))
            ]
        );
    }

    #[test]
    fn a_login_ends_the_counting_and_pids_are_reused() {
        let log = "
            Mar  7 18:53:20 h sshd[1556]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.113  user=rda
            Mar  7 18:53:20 h sshd[1556]: Accepted password for rda from 192.0.2.113 port 52100 ssh2
            Mar  7 18:53:20 h sshd[1556]: Connection closed by 192.0.2.113
            Mar  7 18:53:21 h sshd[1556]: Connection closed by authenticating user rda 192.0.2.114 port 1 [preauth]
            Mar  7 19:53:21 h sshd[1556]: Connection closed by authenticating user rda 192.0.2.114 port 2 [preauth]";
        let lines = follow(log);
        assert_eq!(attempts(log), 2);
        // Another client on the same process id is another connection.
        assert_eq!((lines[3].1, lines[3].2), (Outcome::Failure, 1));
        // So is one after a long silence.
        assert_eq!((lines[4].1, lines[4].2), (Outcome::Failure, 1));
    }

    #[test]
    fn keys_offered_before_the_right_one_are_no_attempt() {
        let login = "
            Nov 28 09:16:03 srv sshd[32307]: Failed publickey for git from 192.0.2.1 port 57904 ssh2: ECDSA 0e:ff:xx
            Nov 28 09:16:03 srv sshd[32307]: Failed publickey for git from 192.0.2.1 port 57904 ssh2: RSA 04:bc:xx
            Nov 28 09:16:03 srv sshd[32307]: Postponed publickey for git from 192.0.2.1 port 57904 ssh2 [preauth]
            Nov 28 09:16:03 srv sshd[32307]: Accepted publickey for git from 192.0.2.1 port 57904 ssh2: DSA 36:48:xx
            Nov 28 09:16:03 srv sshd[32307]: Connection closed by 192.0.2.1";
        assert_eq!(attempts(login), 0);
        let refused = "
            Nov 28 09:16:05 srv sshd[32310]: Failed publickey for git from 192.0.2.111 port 57910 ssh2: ECDSA 1e:fe:xx
            Nov 28 09:16:05 srv sshd[32310]: Failed publickey for git from 192.0.2.111 port 57910 ssh2: RSA 14:ba:xx
            Nov 28 09:16:05 srv sshd[32310]: Disconnecting: Too many authentication failures for git [preauth]
            Nov 28 09:16:05 srv sshd[32310]: Connection closed by 192.0.2.111 [preauth]";
        assert_eq!(attempts(refused), 1);
        // Keys for an account that does not exist are attempts each.
        let invalid = "
            Jul 05 18:22:44 mercury sshd[4669]: Failed publickey for invalid user graysky from 127.0.0.1 port 37954 ssh2: RSA SHA256:v3dp
            Jul 05 18:22:45 mercury sshd[4669]: Failed publickey for invalid user graysky from 127.0.0.1 port 37954 ssh2: RSA SHA256:v3dq";
        assert_eq!(attempts(invalid), 2);
    }

    #[test]
    fn lines_of_other_hosts_and_programs_are_apart() {
        let log = "
            Mar  1 10:00:00 a sshd[10]: Invalid user admin from 203.0.113.5 port 4000
            Mar  1 10:00:01 b sshd[10]: Failed password for invalid user admin from 203.0.113.5 port 4000 ssh2
            Mar  1 10:00:01 a sudo[10]: pam_unix(sudo:auth): authentication failure; logname=x uid=1 euid=0 tty=/dev/pts/0 ruser=x rhost=  user=x";
        assert_eq!(attempts(log), 3);
    }

    #[test]
    fn memory_stays_bounded() {
        let mut connections = Connections::default();
        let line = |pid: usize| {
            format!(
                "Mar  1 10:00:00 h sshd[{pid}]: Connection from 192.0.2.1 port 1 on 192.0.2.2 port 22"
            )
        };
        for pid in 0..CAPACITY + 1_000 {
            let text = line(pid);
            let parsed = parse_line(&text);
            let mut record = parsed.record.unwrap();
            let key = key_of(&parsed.framed, None).unwrap();
            connections.follow(key, 0, &mut record);
            // The same process again, as a new connection: the order must not grow unbounded.
            connections.follow(key, 0, &mut record);
        }
        assert_eq!(connections.len(), CAPACITY);
        assert!(connections.order.len() <= 2 * CAPACITY + 1);
    }
}
