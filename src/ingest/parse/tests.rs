//! Parser tests: every line of the loghub OpenSSH sample against its ground-truth template, and
//! tables of real line shapes from sshd, PAM, sudo, su, account tools, logind and dropbear.

use std::net::IpAddr;

use super::*;

const LOGHUB: &str = include_str!("../../../tests/data/loghub-openssh/OpenSSH_2k.log");
const LABELS: &str = include_str!("../../../tests/data/loghub-openssh/OpenSSH_2k.log_labels.txt");

/// What each loghub template must be read as.
fn expected_kind(template: &str) -> Kind {
    match template {
        "E1" => Kind::LoginSuccess,
        "E2" | "E6" | "E7" | "E24" | "E25" => Kind::PreauthDisconnect,
        "E3" => Kind::NoIdentification,
        "E4" | "E5" | "E15" | "E16" | "E17" => Kind::MaxAttempts,
        "E8" | "E9" | "E10" | "E14" => Kind::LoginFailed,
        "E19" | "E20" => Kind::PamFailure,
        "E11" | "E18" | "E21" => Kind::Info,
        "E12" | "E13" => Kind::InvalidUser,
        "E22" => Kind::SessionClosed,
        "E23" => Kind::SessionOpened,
        "E26" => Kind::Disconnect,
        "E27" => Kind::BreakInAttempt,
        other => panic!("unknown template {other}"),
    }
}

#[test]
fn every_loghub_line_is_read_as_its_template_says() {
    let lines: Vec<&str> = LOGHUB.lines().collect();
    let labels: Vec<&str> = LABELS.lines().collect();
    assert_eq!(lines.len(), 2000);
    assert_eq!(labels.len(), lines.len());
    for (line, &label) in lines.iter().zip(&labels) {
        let parsed = parse_line(line);
        assert_eq!(parsed.framed.host, Some("LabSZ"), "{line}");
        assert_eq!(parsed.framed.program, Some("sshd"), "{line}");
        assert!(parsed.framed.pid.is_some(), "{line}");
        assert!(
            matches!(
                parsed.framed.time,
                Some(LineTime::WithoutYear { month: 12, .. })
            ),
            "{line}"
        );
        let record = parsed
            .record
            .unwrap_or_else(|| panic!("not understood ({label}): {line}"));
        assert_eq!(record.kind, expected_kind(label), "{line}");
        // Every address in the line is the one extracted, and every template that names a
        // user yields one.
        let address = line
            .split([' ', '[', ']', '='])
            .map(|w| w.trim_end_matches(':'))
            .find_map(|w| w.parse::<IpAddr>().ok());
        if label != "E6" && label != "E7" && label != "E24" && label != "E25" {
            assert_eq!(record.source_ip, address, "{line}");
        }
        if [
            "E1", "E8", "E9", "E10", "E12", "E13", "E14", "E20", "E22", "E23",
        ]
        .contains(&label)
        {
            assert!(record.user.is_some(), "{line}");
        }
        if label == "E14" {
            assert!(record.count > 1, "{line}");
        }
    }
}

struct Case {
    line: &'static str,
    kind: Kind,
    user: Option<&'static str>,
    ip: Option<&'static str>,
    port: Option<u16>,
}

const fn case(
    line: &'static str,
    kind: Kind,
    user: Option<&'static str>,
    ip: Option<&'static str>,
    port: Option<u16>,
) -> Case {
    Case {
        line,
        kind,
        user,
        ip,
        port,
    }
}

/// sshd and PAM lines in the shapes Debian writes them, including user names with spaces and
/// IPv6 addresses.
const SSHD_CASES: &[Case] = &[
    case(
        "Mar  2 00:00:03 srv01 sshd[108828]: Invalid user pi3296 from 135.6.3.179 port 36287",
        Kind::InvalidUser,
        Some("pi3296"),
        Some("135.6.3.179"),
        Some(36287),
    ),
    case(
        "Mar  2 00:00:05 srv01 sshd[108828]: Failed password for invalid user admin-user foo from 10.9.8.7 port 5022 ssh2",
        Kind::LoginFailed,
        Some("admin-user foo"),
        Some("10.9.8.7"),
        Some(5022),
    ),
    case(
        "Mar  2 00:00:05 srv01 sshd[1]: Failed password for weird from 1.2.3.4 from 10.9.8.7 port 22 ssh2",
        Kind::LoginFailed,
        Some("weird from 1.2.3.4"),
        Some("10.9.8.7"),
        Some(22),
    ),
    case(
        "Mar  2 00:01:00 srv01 sshd[2]: Accepted publickey for alice from 2001:db8::7 port 50022 ssh2: ED25519 SHA256:abc",
        Kind::LoginSuccess,
        Some("alice"),
        Some("2001:db8::7"),
        Some(50022),
    ),
    case(
        "Mar  2 00:01:00 srv01 sshd[2]: Accepted keyboard-interactive/pam for bob from 192.0.2.1 port 22 ssh2",
        Kind::LoginSuccess,
        Some("bob"),
        Some("192.0.2.1"),
        Some(22),
    ),
    case(
        "Mar  2 00:02:00 srv01 sshd[3]: error: maximum authentication attempts exceeded for root from 203.0.113.9 port 4444 ssh2 [preauth]",
        Kind::MaxAttempts,
        Some("root"),
        Some("203.0.113.9"),
        Some(4444),
    ),
    case(
        "Mar  2 00:02:00 srv01 sshd[3]: Disconnecting authenticating user root 203.0.113.9 port 4444: Too many authentication failures [preauth]",
        Kind::MaxAttempts,
        Some("root"),
        Some("203.0.113.9"),
        Some(4444),
    ),
    case(
        "Mar  2 00:03:00 srv01 sshd[4]: Connection closed by invalid user a b 198.51.100.4 port 61000 [preauth]",
        Kind::PreauthDisconnect,
        Some("a b"),
        Some("198.51.100.4"),
        Some(61000),
    ),
    case(
        "Mar  2 00:03:00 srv01 sshd[4]: Disconnected from user alice 192.0.2.1 port 22",
        Kind::Disconnect,
        Some("alice"),
        Some("192.0.2.1"),
        Some(22),
    ),
    case(
        "Mar  2 00:03:00 srv01 sshd[4]: Received disconnect from 192.0.2.1 port 22:11: disconnected by user",
        Kind::Disconnect,
        None,
        Some("192.0.2.1"),
        Some(22),
    ),
    case(
        "Mar  2 00:04:00 srv01 sshd[5]: Unable to negotiate with 192.0.2.50 port 1234: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1",
        Kind::NegotiationFailed,
        None,
        Some("192.0.2.50"),
        Some(1234),
    ),
    case(
        "Mar  2 00:04:00 srv01 sshd[5]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=2001:db8::5  user=root",
        Kind::PamFailure,
        Some("root"),
        Some("2001:db8::5"),
        None,
    ),
    case(
        "Mar  2 00:04:00 srv01 sshd[5]: PAM 5 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root",
        Kind::MaxAttempts,
        Some("root"),
        Some("203.0.113.9"),
        None,
    ),
    case(
        "Mar  2 00:05:00 srv01 sshd[6]: pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
        Kind::SessionOpened,
        Some("alice"),
        None,
        None,
    ),
    case(
        "Failed password for root from 192.0.2.77 port 22 ssh2",
        Kind::LoginFailed,
        Some("root"),
        Some("192.0.2.77"),
        Some(22),
    ),
];

/// sudo, su, account tools, logind and dropbear.
const PRIVILEGE_CASES: &[Case] = &[
    case(
        "Mar  2 00:07:08 srv01 sudo: aarol205 : TTY=pts/6 ; PWD=/home/aarol205 ; USER=root ; COMMAND=/usr/bin/tail -f /var/log/syslog",
        Kind::SudoCommand,
        Some("aarol205"),
        None,
        None,
    ),
    case(
        "Mar  2 00:07:08 srv01 sudo:     mallory : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/home/mallory ; USER=root ; COMMAND=/bin/bash",
        Kind::SudoFailed,
        Some("mallory"),
        None,
        None,
    ),
    case(
        "Mar  2 00:07:08 srv01 sudo:  eve : user NOT in sudoers ; TTY=pts/1 ; PWD=/home/eve ; USER=root ; COMMAND=/bin/sh",
        Kind::SudoFailed,
        Some("eve"),
        None,
        None,
    ),
    case(
        "Mar  2 00:07:08 srv01 sudo: pam_unix(sudo:auth): authentication failure; logname=mallory uid=1001 euid=0 tty=/dev/pts/1 ruser=mallory rhost=  user=mallory",
        Kind::PamFailure,
        Some("mallory"),
        None,
        None,
    ),
    case(
        "Mar  2 00:08:00 srv01 su[900]: FAILED su for root by alice",
        Kind::SuFailed,
        Some("alice"),
        None,
        None,
    ),
    case(
        "Mar  2 00:08:00 srv01 su[900]: (to root) alice on pts/2",
        Kind::SuSuccess,
        Some("alice"),
        None,
        None,
    ),
    case(
        "Mar  2 00:09:00 srv01 useradd[1000]: new user: name=backdoor, UID=1002, GID=1002, home=/home/backdoor, shell=/bin/bash, from=/dev/pts/0",
        Kind::UserCreated,
        Some("backdoor"),
        None,
        None,
    ),
    case(
        "Mar  2 00:09:01 srv01 usermod[1001]: add 'backdoor' to group 'sudo'",
        Kind::GroupMemberAdded,
        Some("backdoor"),
        None,
        None,
    ),
    case(
        "Mar  2 00:09:01 srv01 gpasswd[1003]: user backdoor added by root to group adm",
        Kind::GroupMemberAdded,
        Some("backdoor"),
        None,
        None,
    ),
    case(
        "Mar  2 00:09:02 srv01 userdel[1004]: delete user 'backdoor'",
        Kind::UserDeleted,
        Some("backdoor"),
        None,
        None,
    ),
    case(
        "Mar  2 00:09:02 srv01 passwd[1005]: pam_unix(passwd:chauthtok): password changed for alice",
        Kind::PasswordChanged,
        Some("alice"),
        None,
        None,
    ),
    case(
        "Mar  2 00:10:00 srv01 systemd-logind[500]: New session 42 of user alice.",
        Kind::LogindSessionNew,
        Some("alice"),
        None,
        None,
    ),
    case(
        "Mar  2 00:11:00 srv01 dropbear[77]: Bad password attempt for 'root' from 192.0.2.9:40022",
        Kind::LoginFailed,
        Some("root"),
        Some("192.0.2.9"),
        Some(40022),
    ),
    case(
        "Mar  2 00:11:00 srv01 dropbear[77]: Password auth succeeded for 'admin' from 192.0.2.9:40022",
        Kind::LoginSuccess,
        Some("admin"),
        Some("192.0.2.9"),
        Some(40022),
    ),
    case(
        "Mar  2 00:11:00 srv01 dropbear[77]: Login attempt for nonexistent user from 192.0.2.9:40022",
        Kind::InvalidUser,
        None,
        Some("192.0.2.9"),
        Some(40022),
    ),
];

#[test]
fn sshd_and_pam_lines_as_debian_writes_them() {
    check(SSHD_CASES);
}

#[test]
fn privilege_account_and_session_lines() {
    check(PRIVILEGE_CASES);
}

fn check(cases: &[Case]) {
    for case in cases {
        let record = parse_line(case.line)
            .record
            .unwrap_or_else(|| panic!("not understood: {}", case.line));
        assert_eq!(record.kind, case.kind, "{}", case.line);
        assert_eq!(record.user.as_deref(), case.user, "{}", case.line);
        assert_eq!(
            record.source_ip,
            case.ip.map(|ip| ip.parse().unwrap()),
            "{}",
            case.line
        );
        assert_eq!(record.port, case.port, "{}", case.line);
    }
}

#[test]
fn counts_and_targets() {
    let record = parse_line(
        "Dec 10 07:02:47 LabSZ sshd[24239]: message repeated 5 times: [ Failed password for root from 5.36.59.76 port 42393 ssh2]",
    )
    .record
    .unwrap();
    assert_eq!((record.kind, record.count), (Kind::LoginFailed, 5));
    let sudo = parse_line("Mar  2 00:07:08 srv01 sudo: bob : 2 incorrect password attempts ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/id")
        .record
        .unwrap();
    assert_eq!(sudo.count, 2);
    assert_eq!(sudo.target.as_deref(), Some("root"));
    assert_eq!(sudo.command.as_deref(), Some("/bin/id"));
    let invalid = parse_line("Mar  2 00:00:05 srv01 sshd[1]: Failed password for invalid user x from 10.0.0.1 port 1 ssh2")
        .record
        .unwrap();
    assert!(invalid.invalid_user);
    let group = parse_line("Mar  2 00:09:01 srv01 usermod[1001]: add 'backdoor' to group 'sudo'")
        .record
        .unwrap();
    assert_eq!(group.target.as_deref(), Some("sudo"));
}

#[test]
fn unknown_messages_are_framed_but_not_understood() {
    let parsed = parse_line("Mar  2 00:00:00 srv01 kernel: [ 0.000000] Linux version 6.1.0");
    assert_eq!(parsed.framed.program, Some("kernel"));
    assert_eq!(parsed.record, None);
    assert_eq!(parse_line("Failed password for root").record, None);
    assert_eq!(parse_line("").record, None);
}

#[test]
fn year_less_times_resolve_in_the_given_year_and_zone() {
    let parsed = parse_line("Feb 29 23:59:60 h sshd[1]: x");
    let time = parsed.framed.time.unwrap();
    assert_eq!(
        time.resolve(2025, UtcOffset::UTC),
        None,
        "no 29 February in 2025"
    );
    let leap = time.resolve(2024, UtcOffset::UTC).unwrap();
    assert_eq!(leap, 1_709_251_199_000_000);
    let east = time
        .resolve(2024, UtcOffset::from_hms(2, 0, 0).unwrap())
        .unwrap();
    assert_eq!(leap - east, 2 * 3600 * 1_000_000);
}

#[test]
fn a_clock_follows_a_file_across_new_year() {
    let mut clock = LineClock::new(2025, UtcOffset::UTC);
    let times: Vec<i64> = [
        "Dec 31 23:59:59 h x: a",
        "Jan  1 00:00:01 h x: b",
        "Mar  1 00:00:00 h x: c",
    ]
    .iter()
    .map(|line| {
        clock
            .resolve(parse_line(line).framed.time.unwrap())
            .unwrap()
    })
    .collect();
    assert_eq!(times[1] - times[0], 2_000_000);
    assert!(times[2] > times[1]);
}

#[test]
fn utc_offsets() {
    assert_eq!(parse_utc_offset("UTC"), Some(UtcOffset::UTC));
    assert_eq!(
        parse_utc_offset("+02:00"),
        UtcOffset::from_hms(2, 0, 0).ok()
    );
    assert_eq!(
        parse_utc_offset("-0530"),
        UtcOffset::from_hms(-5, -30, 0).ok()
    );
    for bad in ["", "2", "+2", "+02:0x", "Europe/Paris"] {
        assert_eq!(parse_utc_offset(bad), None, "{bad}");
    }
}

#[test]
fn a_clock_with_a_limit_reads_future_dates_as_last_year() {
    let now = LineTime::WithoutYear {
        month: 3,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        micros: 0,
    }
    .resolve(2026, UtcOffset::UTC)
    .unwrap();
    let mut clock = LineClock::new(2026, UtcOffset::UTC).not_after(now);
    let december = clock
        .resolve(parse_line("Dec 10 06:55:46 h x: a").framed.time.unwrap())
        .unwrap();
    let february = clock
        .resolve(parse_line("Feb 10 06:55:46 h x: b").framed.time.unwrap())
        .unwrap();
    assert_eq!(
        crate::event::format_timestamp(december),
        "2025-12-10T06:55:46Z"
    );
    assert_eq!(
        crate::event::format_timestamp(february),
        "2026-02-10T06:55:46Z"
    );
}
