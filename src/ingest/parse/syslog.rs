//! Syslog framing: splits a line into its header (time, host, program, pid) and message.
//!
//! Understands RFC 3164 (`Mar  2 00:00:03 host sshd[123]: msg`, optionally after `<PRI>`), the
//! RFC 3339 timestamps rsyslog writes with its high-precision template
//! (`2026-03-02T00:00:03.123456+01:00 host sshd[123]: msg`), RFC 5424
//! (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`), and bare messages with no header at all.
//! Nothing here fails: what does not look like a header is message.

use super::LineTime;

/// A line split into its syslog header fields and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framed<'a> {
    pub time: Option<LineTime>,
    pub host: Option<&'a str>,
    pub program: Option<&'a str>,
    pub pid: Option<u32>,
    pub message: &'a str,
}

impl<'a> Framed<'a> {
    fn bare(message: &'a str) -> Self {
        Self {
            time: None,
            host: None,
            program: None,
            pid: None,
            message,
        }
    }
}

/// The months as syslog and written-out dates abbreviate them.
pub(in crate::ingest::parse) const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Splits `line` (without its line terminator).
#[must_use]
pub fn split(line: &str) -> Framed<'_> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (body, had_priority) = strip_priority(line);
    if let Some(framed) = body
        .strip_prefix("1 ")
        .filter(|_| had_priority)
        .and_then(rfc5424)
    {
        return framed;
    }
    if let Some((time, rest)) = rfc3164_time(body).or_else(|| rfc3339_time(body)) {
        // Some writers leave the host out (`sshd[7]: msg`) or bracket the program alone
        // (`[sshd]: msg`, `[sshd] msg`): a word ending in `:` or in brackets is no host name.
        let (host, after) = next_word(rest);
        let (host, framed) = match host {
            Some(word) if word.ends_with(':') || word.starts_with('[') => (None, tag(rest)),
            _ => (host, tag(after)),
        };
        return Framed {
            time: Some(time),
            host,
            ..framed
        };
    }
    if had_priority {
        // `<PRI>tag: msg`, as some devices send to a syslog port.
        return tag(body);
    }
    if let Some(framed) = application(line) {
        return framed;
    }
    let message = without_bracketed_time(line);
    if message.len() < line.len() {
        // `[10.30 16:49:06] chrome.exe - message`, `… svchost.exe *64 - message`: the
        // program (a word, and a note such as a 64-bit mark) before a dash.
        if let Some((program, rest)) = message.split_once(" - ").filter(|(program, _)| {
            !program.is_empty()
                && program.len() <= 64
                && program.matches(' ').count() <= 1
                && !program.contains(['[', '(', ':'])
        }) {
            return Framed {
                program: Some(program),
                ..Framed::bare(rest)
            };
        }
    }
    Framed::bare(message)
}

/// Words an application log writes for the severity of a line.
const LEVELS: [&str; 15] = [
    "TRACE", "DEBUG", "FINE", "INFO", "NOTICE", "WARN", "WARNING", "ERROR", "ERR", "SEVERE",
    "CRITICAL", "CRIT", "FATAL", "ALERT", "EMERG",
];

/// The header an application writes to its own log file, which is no syslog header: an
/// optional source name, a date and a clock, then optionally a process id (and a thread id),
/// dashes, a level, a bracketed context, and a logger with a colon or before a bracketed
/// context; the message follows. Python's logging and `OpenStack` write
/// `2017-05-16 00:00:00.008 25746 INFO nova.compute.manager [req-1] msg`, log4j writes
/// `2015-10-18 18:01:47,978 INFO [main] org.apache.App: msg` and
/// `2015-07-29 17:41:44,747 - INFO  [thread:Class@1] - msg`, Android's logcat writes
/// `03-17 16:13:38.811  1702  2395 D Tag: msg`. The logger is the program. The time is not
/// read: without a zone it cannot be placed reliably.
fn application(line: &str) -> Option<Framed<'_>> {
    let (first, after_first) = next_word(line);
    let first = first?;
    let (source, rest) = if is_date(first) {
        (None, line)
    } else if next_word(after_first).0.is_some_and(is_date) {
        (Some(first), after_first)
    } else {
        return None;
    };
    let (_, rest) = next_word(rest);
    let (clock, mut rest) = next_word(rest);
    if !clock.is_some_and(is_clock) {
        return None;
    }
    let mut pid = None;
    let mut level = false;
    let mut program = source;
    loop {
        let (word, after) = next_word(rest);
        let Some(word) = word else { break };
        let is_number = word.bytes().all(|b| b.is_ascii_digit());
        if is_number && !level && pid.is_none() {
            pid = word.parse().ok();
        } else if is_number && !level && pid.is_some() {
            // A thread id after the process id.
        } else if word == "-" {
        } else if !level
            && (LEVELS.contains(&word.trim_matches(['[', ']', ':']))
                || pid.is_some() && word.len() == 1 && "VDIWEFA".contains(word))
        {
            level = true;
        } else if word.starts_with('[') {
            let (_, after) = bracketed(rest)?;
            rest = after;
            continue;
        } else if let Some(logger) = word.strip_suffix(':').filter(|l| is_logger(l)) {
            program = Some(logger);
            rest = after;
            break;
        } else if is_logger(word) && next_word(after).0.is_some_and(|w| w.starts_with('[')) {
            program = Some(word);
            let (_, after_context) = bracketed(after.trim_start_matches(' '))?;
            rest = after_context;
            break;
        } else {
            break;
        }
        rest = after;
    }
    Some(Framed {
        time: None,
        host: None,
        program,
        pid,
        message: rest.trim_start_matches([' ', '-']).trim_start_matches(' '),
    })
}

/// `[…]` at the start of `text`, nested brackets included: the inside and what follows.
fn bracketed(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start_matches(' ');
    let mut depth = 0usize;
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'[' => depth += 1,
            b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some((&text[1..i], &text[i + 1..]));
                }
            }
            _ => {}
        }
    }
    None
}

/// A logger's name: `WindowManager`, `nova.compute.manager`, `org.apache.hadoop.App`.
fn is_logger(word: &str) -> bool {
    !word.is_empty()
        && word.len() <= 128
        && word.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'$' | b'-' | b'/'))
}

/// `2017-05-16`, `17/06/09`, `2017/07/02`, or logcat's `03-17`.
fn is_date(word: &str) -> bool {
    let parts: Vec<&str> = word.split(['-', '/']).collect();
    (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| matches!(p.len(), 2 | 4) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `16:13:38`, `16:13:38.811`, `18:01:47,978`.
fn is_clock(word: &str) -> bool {
    let hms = word.split([',', '.']).next().unwrap_or("");
    let parts: Vec<&str> = hms.split(':').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// A line of an application's own log, `[Sun Dec 04 04:47:44 2005] msg` (Apache) or
/// `[10.30 16:49:06] msg`, without its bracketed time: the time is no part of the message,
/// and left in, its day names and digits would split one message into many templates. (The
/// time itself is not read: without a zone or a year it cannot be placed reliably.)
fn without_bracketed_time(line: &str) -> &str {
    let Some((inside, rest)) = line
        .strip_prefix('[')
        .and_then(|after| after.split_once(']'))
    else {
        return line;
    };
    let has_clock = inside.split([' ', 'T']).any(|word| {
        let parts: Vec<&str> = word.split(':').collect();
        parts.len() >= 2
            && parts.len() <= 3
            && parts.iter().all(|p| {
                let digits = p.split('.').next().unwrap_or("");
                (1..=2).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
            })
    });
    if has_clock && inside.len() <= 40 {
        rest.trim_start()
    } else {
        line
    }
}

/// `<PRI>` at the start of a line; the priority itself is not used.
fn strip_priority(line: &str) -> (&str, bool) {
    let Some(rest) = line.strip_prefix('<') else {
        return (line, false);
    };
    match rest.find('>') {
        Some(end) if (1..=3).contains(&end) && rest[..end].bytes().all(|b| b.is_ascii_digit()) => {
            (&rest[end + 1..], true)
        }
        _ => (line, false),
    }
}

fn next_word(text: &str) -> (Option<&str>, &str) {
    let text = text.trim_start_matches(' ');
    match text.split_once(' ') {
        Some((word, rest)) if !word.is_empty() => (Some(word), rest),
        _ => (None, text),
    }
}

/// `Mmm dd hh:mm:ss` (day space-padded or not), optionally with a fraction of a second.
fn rfc3164_time(text: &str) -> Option<(LineTime, &str)> {
    let month = MONTHS.iter().position(|m| text.starts_with(m))? as u8 + 1;
    let rest = text.get(3..)?.strip_prefix(' ')?.trim_start_matches(' ');
    let (day, rest) = rest.split_once(' ')?;
    let day: u8 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let (clock, rest) = rest.split_once(' ')?;
    let (hms, fraction) = match clock.split_once('.') {
        Some((hms, fraction)) => (hms, Some(fraction)),
        None => (clock, None),
    };
    let mut parts = hms.split(':').map(|p| p.parse::<u8>().ok());
    let (hour, minute, second) = (parts.next()??, parts.next()??, parts.next()??);
    if parts.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let micros = match fraction {
        Some(f) => fraction_micros(f)?,
        None => 0,
    };
    Some((
        LineTime::WithoutYear {
            month,
            day,
            hour,
            minute,
            second,
            micros,
        },
        rest,
    ))
}

/// Up to six digits of a fraction of a second, as microseconds.
fn fraction_micros(digits: &str) -> Option<u32> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let kept = &digits[..digits.len().min(6)];
    let value: u32 = kept.parse().ok()?;
    Some(value * 10u32.pow(6 - kept.len() as u32))
}

/// An RFC 3339 timestamp as the first word.
fn rfc3339_time(text: &str) -> Option<(LineTime, &str)> {
    let (word, rest) = text.split_once(' ')?;
    if word.len() < 20 || !word.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    let micros = crate::event::parse_timestamp("timestamp", word).ok()?;
    Some((LineTime::Absolute(micros), rest))
}

/// `program[pid]: message` or `program: message`, or `[program]` with or without the colon.
fn tag(text: &str) -> Framed<'_> {
    let text = text.trim_start_matches(' ');
    if let Some((program, message)) = text
        .strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .filter(|(program, _)| !program.is_empty() && !program.contains(' '))
    {
        let message = message.strip_prefix(':').unwrap_or(message);
        return Framed {
            time: None,
            host: None,
            program: Some(program),
            pid: None,
            message: message.strip_prefix(' ').unwrap_or(message),
        };
    }
    let Some((head, message)) = text
        .split_once(": ")
        .or_else(|| text.strip_suffix(':').map(|head| (head, "")))
    else {
        return Framed::bare(text);
    };
    if head.is_empty() || head.contains(' ') || head.len() > 64 {
        return Framed::bare(text);
    }
    let (program, pid) = match head.strip_suffix(']').and_then(|h| h.split_once('[')) {
        Some((program, pid)) => (program, pid.parse().ok()),
        None => (head, None),
    };
    Framed {
        time: None,
        host: None,
        program: Some(program),
        pid,
        message,
    }
}

/// `TIMESTAMP HOST APP PROCID MSGID SD MSG` after `<PRI>1 `.
fn rfc5424(text: &str) -> Option<Framed<'_>> {
    let mut rest = text;
    let mut fields = [""; 5];
    for field in &mut fields {
        let (word, tail) = rest.split_once(' ')?;
        *field = word;
        rest = tail;
    }
    let [timestamp, host, app, procid, _msgid] = fields;
    let message = skip_structured_data(rest)?;
    let message = message.strip_prefix('\u{feff}').unwrap_or(message);
    let time = if timestamp == "-" {
        None
    } else {
        Some(LineTime::Absolute(
            crate::event::parse_timestamp("timestamp", timestamp).ok()?,
        ))
    };
    Some(Framed {
        time,
        host: present(host),
        program: present(app),
        pid: present(procid).and_then(|p| p.parse().ok()),
        message,
    })
}

/// An RFC 5424 header field, `-` meaning absent.
fn present(value: &str) -> Option<&str> {
    (value != "-").then_some(value)
}

/// The message after RFC 5424 structured data: `-` or `[id k="v" ...][...]`, then a space.
fn skip_structured_data(text: &str) -> Option<&str> {
    if let Some(rest) = text.strip_prefix('-') {
        return Some(rest.strip_prefix(' ').unwrap_or(rest));
    }
    let bytes = text.as_bytes();
    let mut i = 0;
    while bytes.get(i) == Some(&b'[') {
        let mut in_quotes = false;
        i += 1;
        loop {
            match bytes.get(i)? {
                b'\\' if in_quotes => i += 1,
                b'"' => in_quotes = !in_quotes,
                b']' if !in_quotes => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let rest = &text[i..];
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn without_year(month: u8, day: u8, hour: u8, minute: u8, second: u8) -> LineTime {
        LineTime::WithoutYear {
            month,
            day,
            hour,
            minute,
            second,
            micros: 0,
        }
    }

    #[test]
    fn rfc3164_lines() {
        let framed = split("Mar  2 00:00:03 srv01 sshd[108828]: Invalid user pi from 1.2.3.4");
        assert_eq!(
            framed,
            Framed {
                time: Some(without_year(3, 2, 0, 0, 3)),
                host: Some("srv01"),
                program: Some("sshd"),
                pid: Some(108_828),
                message: "Invalid user pi from 1.2.3.4",
            }
        );
        let framed = split("<86>Dec 10 06:55:46 LabSZ sudo:  alice : TTY=pts/0 ; COMMAND=/bin/ls");
        assert_eq!(framed.time, Some(without_year(12, 10, 6, 55, 46)));
        assert_eq!(framed.program, Some("sudo"));
        assert_eq!(framed.pid, None);
        assert_eq!(framed.message, " alice : TTY=pts/0 ; COMMAND=/bin/ls");
    }

    #[test]
    fn an_application_logs_bracketed_time_is_cut_from_the_message() {
        for (line, message) in [
            (
                "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok",
                "[notice] workerEnv.init() ok",
            ),
            ("[10.30 16:49:06] app.exe - close", "close"),
            ("[2026-04-03T10:00:01.5] started", "started"),
            ("[notice] no time here", "[notice] no time here"),
            ("[1:2:3:4] not a clock", "[1:2:3:4] not a clock"),
        ] {
            assert_eq!(split(line).message, message, "{line}");
        }
    }

    #[test]
    fn headers_without_a_host_or_with_a_bracketed_program() {
        for (line, program, pid) in [
            (
                "Apr  3 10:00:18 sshd[406]: Connection closed",
                "sshd",
                Some(406),
            ),
            ("Apr  3 10:00:16 [sshd]: Connection closed", "sshd", None),
            ("Apr  3 10:00:17 [sshd] Connection closed", "sshd", None),
            ("Apr  3 10:00:19 gw1 sshd: Connection closed", "sshd", None),
        ] {
            let framed = split(line);
            assert_eq!(
                framed.time,
                Some(without_year(4, 3, 10, 0, line[13..15].parse().unwrap()))
            );
            assert_eq!(
                (framed.program, framed.pid, framed.message),
                (Some(program), pid, "Connection closed"),
                "{line}"
            );
            let host = (line.contains(" gw1 ")).then_some("gw1");
            assert_eq!(framed.host, host, "{line}");
        }
    }

    #[test]
    fn rfc3339_and_rfc5424_lines() {
        let framed =
            split("2026-03-02T00:00:03.250000+01:00 srv01 sshd[7]: Accepted publickey for bob");
        assert_eq!(framed.time, Some(LineTime::Absolute(1_772_406_003_250_000)));
        assert_eq!(
            (framed.host, framed.program, framed.pid),
            (Some("srv01"), Some("sshd"), Some(7))
        );
        let framed = split(
            "<38>1 2026-03-01T23:00:03Z srv01 sshd 7 - [meta x=\"a]b\"] Failed password for root",
        );
        assert_eq!(framed.time, Some(LineTime::Absolute(1_772_406_003_000_000)));
        assert_eq!(framed.message, "Failed password for root");
        assert_eq!(split("<38>1 - - - - - - hello").message, "hello");
    }

    #[test]
    fn an_application_logs_own_header_is_cut_and_its_logger_is_the_program() {
        for (line, program, pid, message) in [
            (
                "nova-api.log.1 2017-05-16 00:00:00.008 25746 INFO nova.osapi_compute.wsgi.server [req-3 a b - - -] 10.11.10.1 \"GET /v2 HTTP/1.1\" status: 200",
                Some("nova.osapi_compute.wsgi.server"),
                Some(25746),
                "10.11.10.1 \"GET /v2 HTTP/1.1\" status: 200",
            ),
            (
                "2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.App: Created MRAppMaster",
                Some("org.apache.hadoop.App"),
                None,
                "Created MRAppMaster",
            ),
            (
                "2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:2181:Election@774] - Notification time out: 3200",
                None,
                None,
                "Notification time out: 3200",
            ),
            (
                "03-17 16:13:38.811  1702  2395 D WindowManager: printFreezingDisplayLogs",
                Some("WindowManager"),
                Some(1702),
                "printFreezingDisplayLogs",
            ),
            (
                "17/06/09 20:10:40 INFO executor.Backend: Registered signal handlers",
                Some("executor.Backend"),
                None,
                "Registered signal handlers",
            ),
            (
                "[10.30 16:49:06] chrome.exe - proxy.example.org:5070 open through proxy",
                Some("chrome.exe"),
                None,
                "proxy.example.org:5070 open through proxy",
            ),
            // A message that merely starts with a date keeps its words.
            (
                "2017-05-16 00:00:00 backup finished in 3 s",
                None,
                None,
                "backup finished in 3 s",
            ),
        ] {
            let framed = split(line);
            assert_eq!(
                (framed.program, framed.pid, framed.message),
                (program, pid, message),
                "{line}"
            );
        }
        // An unclosed context is message; a date without a clock is no header.
        assert_eq!(split("2017-05-16 12:00:00 INFO [oops").message, "[oops");
        assert_eq!(
            split("2017-05-16 12:00:00 INFO [a b").message,
            "2017-05-16 12:00:00 INFO [a b"
        );
        assert_eq!(
            split("2017-05-16 is the day").message,
            "2017-05-16 is the day"
        );
    }

    #[test]
    fn anything_else_is_a_bare_message() {
        for line in [
            "Failed password for root from 1.2.3.4 port 22 ssh2",
            "",
            "Mar 99 00:00:00 host x: y",
            "<999>oops",
        ] {
            let framed = split(line);
            assert_eq!((framed.time, framed.program), (None, None), "{line}");
        }
    }
}
