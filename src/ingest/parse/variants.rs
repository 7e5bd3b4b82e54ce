//! Parser tests of the shapes other systems and releases write: one line per form that the
//! common sshd log filters recognise as a failure from an address, checked field by field.

use std::net::IpAddr;

use super::*;

/// How a real-world variant must be read: its kind and outcome, the account, where the client
/// came from (an address, or a host name where sshd logs one) and whether the account exists.
struct Variant {
    line: &'static str,
    kind: Kind,
    outcome: Outcome,
    user: Option<&'static str>,
    from: Option<&'static str>,
    invalid_user: bool,
}

const fn variant(
    line: &'static str,
    kind: Kind,
    outcome: Outcome,
    user: Option<&'static str>,
    from: Option<&'static str>,
    invalid_user: bool,
) -> Variant {
    Variant {
        line,
        kind,
        outcome,
        user,
        from,
        invalid_user,
    }
}

use Kind::{
    Connected, InvalidUser, LoginFailed, LoginRefused, MaxAttempts, NegotiationFailed,
    NoIdentification, PamFailure, PreauthDisconnect,
};
use Outcome::{Failure, Neutral};

/// The shapes other distributions, releases and systems write, one line each: sshd's own PAM
/// errors, refusals before a password is checked, Solaris message ids, host names where an
/// address would be, IPv4-mapped addresses, headers without a host or a pid, clients that
/// give up mid-authentication, and user names or key details that imitate sshd's own words.
const VARIANTS: &[Variant] = &[
    variant(
        "Apr  3 10:00:01 gw1 sshd[401]: error: PAM: Authentication failure for carol from 198.51.100.20",
        PamFailure,
        Failure,
        Some("carol"),
        Some("198.51.100.20"),
        false,
    ),
    variant(
        "Apr  3 10:00:02 gw1 sshd[401]: error: PAM: authentication error for carol from files.example.org via 10.1.1.1",
        PamFailure,
        Failure,
        Some("carol"),
        Some("files.example.org"),
        false,
    ),
    variant(
        "Apr  3 10:00:03 gw1 sshd[401]: error: PAM: Authentication error for illegal user zed from 198.51.100.21",
        PamFailure,
        Failure,
        Some("zed"),
        Some("198.51.100.21"),
        true,
    ),
    variant(
        "Apr  3 10:00:04 gw1 sshd[401]: error: PAM: User not known to the underlying authentication module for illegal user zed from 198.51.100.22",
        InvalidUser,
        Failure,
        Some("zed"),
        Some("198.51.100.22"),
        true,
    ),
    variant(
        "Apr  3 10:00:05 gw1 sshd[402]: User dave from 198.51.100.23 not allowed because not listed in AllowUsers",
        LoginRefused,
        Failure,
        Some("dave"),
        Some("198.51.100.23"),
        false,
    ),
    variant(
        "Apr  3 10:00:06 gw1 sshd[402]: User dave from 198.51.100.24 not allowed because listed in DenyUsers",
        LoginRefused,
        Failure,
        Some("dave"),
        Some("198.51.100.24"),
        false,
    ),
    variant(
        "Apr  3 10:00:07 gw1 sshd[402]: User dave from dialup-7.example.net not allowed because not in any group",
        LoginRefused,
        Failure,
        Some("dave"),
        Some("dialup-7.example.net"),
        false,
    ),
    variant(
        "Apr  3 10:00:08 gw1 sshd[402]: User dave from 198.51.100.26 not allowed because a group is listed in DenyGroups",
        LoginRefused,
        Failure,
        Some("dave"),
        Some("198.51.100.26"),
        false,
    ),
    variant(
        "Apr  3 10:00:09 gw1 sshd[402]: User dave from 198.51.100.27 not allowed because none of user's groups are listed in AllowGroups",
        LoginRefused,
        Failure,
        Some("dave"),
        Some("198.51.100.27"),
        false,
    ),
    variant(
        "Apr  3 10:00:10 gw1 sshd[403]: ROOT LOGIN REFUSED FROM 198.51.100.28",
        LoginRefused,
        Failure,
        Some("root"),
        Some("198.51.100.28"),
        false,
    ),
    variant(
        "Apr  3 10:00:11 gw1 sshd[403]: ROOT LOGIN REFUSED FROM ::ffff:198.51.100.29 port 5000 [preauth]",
        LoginRefused,
        Failure,
        Some("root"),
        Some("198.51.100.29"),
        false,
    ),
    variant(
        "Apr  3 10:00:12 gw1 sshd[404]: refused connect from probe@scanner.example.net (::ffff:198.51.100.30)",
        LoginRefused,
        Failure,
        None,
        Some("198.51.100.30"),
        false,
    ),
    variant(
        "Apr  3 10:00:13 gw1 sshd[405]: [ID 800047 auth.info] Failed keyboard-interactive for <invalid username> from 198.51.100.31 port 4000 ssh2",
        LoginFailed,
        Failure,
        None,
        Some("198.51.100.31"),
        true,
    ),
    variant(
        "Apr  3 10:00:13 gw1 sshd[405]: [ID 800047 auth.info] Failed keyboard-interactive for erin from 198.51.100.31 port 4000 ssh2",
        LoginFailed,
        Failure,
        Some("erin"),
        Some("198.51.100.31"),
        false,
    ),
    variant(
        "Apr  3 10:00:14 gw1 sshd[405]: Failed password for erin from files.example.org port 4001 ssh2",
        LoginFailed,
        Failure,
        Some("erin"),
        Some("files.example.org"),
        false,
    ),
    variant(
        "Apr  3 10:00:15 gw1 sshd[405]: Failed password for erin from ::ffff:198.51.100.32 port 4002 ssh2",
        LoginFailed,
        Failure,
        Some("erin"),
        Some("198.51.100.32"),
        false,
    ),
    variant(
        "Apr  3 10:00:15 gw1 sshd[405]: Failed password for invalid user ERIN from 2001:db8:5::1",
        LoginFailed,
        Failure,
        Some("ERIN"),
        Some("2001:db8:5::1"),
        true,
    ),
    variant(
        "Apr  3 10:00:16 [sshd]: User root from 198.51.100.33 not allowed because not listed in AllowUsers",
        LoginRefused,
        Failure,
        Some("root"),
        Some("198.51.100.33"),
        false,
    ),
    variant(
        "Apr  3 10:00:17 [sshd] User root from 198.51.100.34 not allowed because not listed in AllowUsers",
        LoginRefused,
        Failure,
        Some("root"),
        Some("198.51.100.34"),
        false,
    ),
    variant(
        "Apr  3 10:00:18 sshd[406]: Failed password for root from 198.51.100.35 port 4017 ssh2",
        LoginFailed,
        Failure,
        Some("root"),
        Some("198.51.100.35"),
        false,
    ),
    variant(
        "Apr  3 10:00:19 gw1 sshd: Failed password for frank from 198.51.100.36 port 4003 ssh2",
        LoginFailed,
        Failure,
        Some("frank"),
        Some("198.51.100.36"),
        false,
    ),
    variant(
        "Apr  3 10:00:19 gw1 sshd-session[413]: Failed password for root from 198.51.100.49 port 4016 ssh2",
        LoginFailed,
        Failure,
        Some("root"),
        Some("198.51.100.49"),
        false,
    ),
    variant(
        "Apr  3 10:00:20 gw1 sshd[407]: Connection closed by authenticating user root 198.51.100.37 port 4004 [preauth]",
        PreauthDisconnect,
        Failure,
        Some("root"),
        Some("198.51.100.37"),
        false,
    ),
    variant(
        "Apr  3 10:00:20 gw1 sshd[407]: Connection reset by invalid user oracle 198.51.100.37 port 4004 [preauth]",
        PreauthDisconnect,
        Failure,
        Some("oracle"),
        Some("198.51.100.37"),
        true,
    ),
    variant(
        "Apr  3 10:00:21 gw1 sshd[407]: Disconnected from authenticating user root 198.51.100.38 port 4005 [preauth]",
        PreauthDisconnect,
        Failure,
        Some("root"),
        Some("198.51.100.38"),
        false,
    ),
    variant(
        "Apr  3 10:00:22 gw1 sshd[407]: Received disconnect from 198.51.100.39 port 4006:3: com.example.ssh.Exception: Auth fail [preauth]",
        PreauthDisconnect,
        Failure,
        None,
        Some("198.51.100.39"),
        false,
    ),
    variant(
        "Apr  3 10:00:23 gw1 sshd[407]: error: Received disconnect from 198.51.100.40: 14: No supported authentication methods available [preauth]",
        PreauthDisconnect,
        Failure,
        None,
        Some("198.51.100.40"),
        false,
    ),
    variant(
        "Apr  3 10:00:24 gw1 sshd[408]: Disconnecting invalid user gus 198.51.100.41 port 4008: Change of username or service not allowed: (gus,ssh-connection) -> (hal,ssh-connection) [preauth]",
        PreauthDisconnect,
        Failure,
        Some("gus"),
        Some("198.51.100.41"),
        true,
    ),
    variant(
        "Apr  3 10:00:25 gw1 sshd[409]: Failed password for ivy from 198.51.100.42 port 4009 ssh1: ruser from 203.0.113.250",
        LoginFailed,
        Failure,
        Some("ivy"),
        Some("198.51.100.42"),
        false,
    ),
    variant(
        "Apr  3 10:00:26 gw1 sshd[409]: Failed password for invalid user ivy from 198.51.100.43 port 4010 ssh2: from 203.0.113.251 port 1 ssh2",
        LoginFailed,
        Failure,
        Some("ivy"),
        Some("198.51.100.43"),
        true,
    ),
    variant(
        "Apr  3 10:00:27 gw1 sshd[409]: Failed password for invalid user ivy from 203.0.113.252 port 1 ssh2 from 198.51.100.44 port 4011 ssh2",
        LoginFailed,
        Failure,
        Some("ivy from 203.0.113.252 port 1 ssh2"),
        Some("198.51.100.44"),
        true,
    ),
    variant(
        "Apr  3 10:00:27 gw1 sshd[409]: Failed password for invalid user from 203.0.113.253 from 198.51.100.44 port 4011 ssh2",
        LoginFailed,
        Failure,
        Some("from 203.0.113.253"),
        Some("198.51.100.44"),
        true,
    ),
    variant(
        "Apr  3 10:00:28 gw1 sshd[409]: Failed hostbased for ivy from 198.51.100.45 port 4012 ssh2: RSA 00:11, client user \"ivy\", client host \"h.example\"",
        LoginFailed,
        Failure,
        Some("ivy"),
        Some("198.51.100.45"),
        false,
    ),
    variant(
        "<38>1 2026-04-03T10:00:29.1-04:00 gw1.example.com sshd 410 - - Failed unknown for invalid user jo from 198.51.100.46 port 4013 ssh2",
        LoginFailed,
        Failure,
        Some("jo"),
        Some("198.51.100.46"),
        true,
    ),
    variant(
        "Apr  3 10:00:32 gw1 sshd[412]: error: maximum authentication attempts exceeded for invalid user kim from 198.51.100.50 port 4018 ssh2 [preauth]",
        MaxAttempts,
        Failure,
        Some("kim"),
        Some("198.51.100.50"),
        false,
    ),
    variant(
        "Apr  3 10:00:36 gw1 sshd[416]: Connection closed by invalid user  198.51.100.54 port 4022 [preauth]",
        PreauthDisconnect,
        Failure,
        None,
        Some("198.51.100.54"),
        true,
    ),
    // Notices, not failures: a scanner's connection, a user's own logout.
    variant(
        "Apr  3 10:00:33 gw1 sshd[414]: Connection closed by 198.51.100.51 port 4019 [preauth]",
        PreauthDisconnect,
        Neutral,
        None,
        Some("198.51.100.51"),
        false,
    ),
    variant(
        "Apr  3 10:00:34 gw1 sshd[414]: Received disconnect from 198.51.100.52 port 4020:11: Bye Bye [preauth]",
        PreauthDisconnect,
        Neutral,
        None,
        Some("198.51.100.52"),
        false,
    ),
    variant(
        "Apr  3 10:00:35 gw1 sshd[415]: Received disconnect from 198.51.100.53 port 4021:11: disconnected by user",
        Kind::Disconnect,
        Neutral,
        None,
        Some("198.51.100.53"),
        false,
    ),
    // Scanners: no authentication, but the client they name is kept.
    variant(
        "Apr  3 10:00:37 gw1 sshd[417]: fatal: Unable to negotiate with 198.51.100.55 port 4023: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1",
        NegotiationFailed,
        Neutral,
        None,
        Some("198.51.100.55"),
        false,
    ),
    variant(
        "Apr  3 10:00:38 gw1 sshd[418]: banner exchange: Connection from 198.51.100.56 port 4024: invalid format",
        NegotiationFailed,
        Neutral,
        None,
        Some("198.51.100.56"),
        false,
    ),
    variant(
        "Apr  3 10:00:39 gw1 sshd[419]: Bad protocol version identification 'x from 203.0.113.9' from 198.51.100.57 port 4025",
        NoIdentification,
        Neutral,
        None,
        Some("198.51.100.57"),
        false,
    ),
    variant(
        "Apr  3 10:00:40 gw1 sshd[420]: fatal: Timeout before authentication for 198.51.100.58 port 4026",
        NoIdentification,
        Neutral,
        None,
        Some("198.51.100.58"),
        false,
    ),
    // Lines that name no client: their connection's other lines do (see `connections`).
    variant(
        "Apr  3 10:00:41 gw1 sshd[421]: Connection from 198.51.100.59 port 4027 on 10.0.0.1 port 22 rdomain \"\"",
        Connected,
        Neutral,
        None,
        Some("198.51.100.59"),
        false,
    ),
    variant(
        "Apr  3 10:00:42 gw1 sshd[421]: error: kex_exchange_identification: read: Connection reset by peer",
        NoIdentification,
        Neutral,
        None,
        None,
        false,
    ),
    variant(
        "Apr  3 10:00:43 gw1 sshd[422]: fatal: Unable to negotiate a key exchange method [preauth]",
        NegotiationFailed,
        Neutral,
        None,
        None,
        false,
    ),
    variant(
        "Apr  3 10:00:44 gw1 sshd[423]: fatal: Read from socket failed: Connection reset by peer [preauth]",
        PreauthDisconnect,
        Neutral,
        None,
        None,
        false,
    ),
    variant(
        "Apr  3 10:00:45 gw1 sshd[424]: User root not allowed because account is locked",
        LoginRefused,
        Failure,
        Some("root"),
        None,
        false,
    ),
    // Four dotted numbers that are no address as written: kept as the name sshd logged.
    variant(
        "Apr  3 10:00:46 gw1 sshd[425]: error: PAM: Authentication failure for myhlj1374 from 192.030.0.6",
        PamFailure,
        Failure,
        Some("myhlj1374"),
        Some("192.030.0.6"),
        false,
    ),
];

#[test]
fn variants_of_other_systems_and_releases() {
    for v in VARIANTS {
        let record = parse_line(v.line)
            .record
            .unwrap_or_else(|| panic!("not understood: {}", v.line));
        assert_eq!(
            (record.kind, record.outcome),
            (v.kind, v.outcome),
            "{}",
            v.line
        );
        assert_eq!(record.user.as_deref(), v.user, "{}", v.line);
        let from = record
            .source_ip
            .map(|ip| ip.to_string())
            .or(record.remote_host.clone());
        assert_eq!(from.as_deref(), v.from, "{}", v.line);
        assert_eq!(record.invalid_user, v.invalid_user, "{}", v.line);
    }
}

/// A small deterministic generator (xorshift), enough to mutate lines without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Pieces an attacker would put into a user name or a key comment to confuse a reader.
const PIECES: &[&str] = &[
    " from 192.0.2.250 port 22 ssh2",
    " from ",
    ": ",
    " port ",
    " [preauth]",
    "invalid user ",
    " not allowed because ",
    "[ID 1 a.b] ",
    "(",
    ")",
    "é",
    "\u{202e}",
    "::ffff:",
    "PAM: ",
    " via ",
];

#[test]
fn mutated_lines_never_panic_and_addresses_come_from_the_line() {
    let loghub = include_str!("../../../tests/data/loghub-openssh/OpenSSH_2k.log");
    let seeds: Vec<&str> = VARIANTS
        .iter()
        .map(|v| v.line)
        .chain(loghub.lines().step_by(40))
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..20_000 {
        let mut line = seeds[rng.below(seeds.len())].to_string();
        for _ in 0..=rng.below(3) {
            let boundaries: Vec<usize> = (0..=line.len())
                .filter(|&i| line.is_char_boundary(i))
                .collect();
            let at = boundaries[rng.below(boundaries.len())];
            match rng.below(3) {
                0 => line.insert_str(at, PIECES[rng.below(PIECES.len())]),
                1 => line.truncate(at),
                _ => {
                    let end = boundaries[rng.below(boundaries.len())].max(at);
                    line.replace_range(at..end, "");
                }
            }
        }
        let parsed = parse_line(&line);
        if let Some(ip) = parsed.record.and_then(|r| r.source_ip) {
            let named = line
                .split([' ', '(', ')', '[', ']', ',', '=', '\'', '<', '>'])
                .filter_map(|word| {
                    word.parse::<IpAddr>()
                        .or_else(|_| word.trim_end_matches(':').parse())
                        .ok()
                })
                .any(|named| named.to_canonical() == ip);
            assert!(named, "round {round}: {ip} is not in {line:?}");
        }
    }
}
