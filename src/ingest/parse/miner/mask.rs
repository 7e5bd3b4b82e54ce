//! Masking: a message split into tokens, with the values in it replaced by typed placeholders
//! (`<ip>`, `<num>`, `<host>`, `<hex>`, `<path>`, `<user>`, `<time>`, `<size>`, `<mac>`).

use std::net::{IpAddr, SocketAddr};

use super::Variable;
use crate::ingest::parse::syslog::MONTHS;

fn same(a: &[u8], b: &[u8]) -> bool {
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// A token of a masked message, borrowed from it: a word as it stands, or the placeholder of a
/// value with the punctuation or key around it (`[<ip>]`, `user=<user>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    pub(super) head: &'a str,
    placeholder: &'static str,
    tail: &'a str,
}

impl<'a> Token<'a> {
    pub(super) fn word(word: &'a str) -> Self {
        Self {
            head: word,
            placeholder: "",
            tail: "",
        }
    }

    fn masked(head: &'a str, placeholder: &'static str, tail: &'a str) -> Self {
        Self {
            head,
            placeholder,
            tail,
        }
    }

    /// Whether the token reads `text`.
    pub(super) fn is(&self, text: &str) -> bool {
        let text = text.as_bytes();
        if text.len() != self.head.len() + self.placeholder.len() + self.tail.len() {
            return false;
        }
        let (head, rest) = text.split_at(self.head.len());
        let (placeholder, tail) = rest.split_at(self.placeholder.len());
        same(head, self.head.as_bytes())
            && same(placeholder, self.placeholder.as_bytes())
            && same(tail, self.tail.as_bytes())
    }

    pub(super) fn has_digit(&self) -> bool {
        has_digit(self.head) || has_digit(self.tail)
    }

    /// The length of the token's text.
    pub(super) fn len(&self) -> usize {
        self.head.len() + self.placeholder.len() + self.tail.len()
    }

    /// The token's text, byte by byte.
    pub(super) fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.head
            .bytes()
            .chain(self.placeholder.bytes())
            .chain(self.tail.bytes())
    }

    /// The kind of value the placeholder stands for (`time` for `<time>`).
    fn placeholder_kind(&self) -> &'static str {
        self.placeholder
            .strip_prefix('<')
            .and_then(|p| p.strip_suffix('>'))
            .unwrap_or("")
    }

    pub(super) fn is_variable(&self) -> bool {
        !self.placeholder.is_empty() || is_variable(self.head)
    }
}

impl std::fmt::Display for Token<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{}", self.head, self.placeholder, self.tail)
    }
}

pub(super) fn is_variable(token: &str) -> bool {
    const NAMES: [&[u8]; 11] = [
        b"*>", b"ip>", b"num>", b"host>", b"hex>", b"path>", b"user>", b"ip:num>", b"time>",
        b"size>", b"mac>",
    ];
    let bytes = token.as_bytes();
    // A byte scan rather than a substring search per placeholder: this runs for every token
    // of every line.
    bytes.iter().enumerate().any(|(i, &b)| {
        b == b'<' && {
            let rest = &bytes[i + 1..];
            NAMES.iter().any(|name| rest.starts_with(name))
        }
    })
}

pub(super) fn has_digit(token: &str) -> bool {
    token.bytes().any(|b| b.is_ascii_digit())
}

/// A message split into tokens with typed placeholders, without the values they replaced
/// (ingest keeps the raw line, which holds them; [`Miner::add`] keeps them), and with the
/// tokens borrowed from `message`.
#[must_use]
pub fn mask_tokens(message: &str) -> Vec<Token<'_>> {
    mask_with(message, &mut Values(None))
}

/// Where the values a mask replaces go, if anywhere: a value is only made when it is kept.
pub(super) struct Values<'v>(pub(super) Option<&'v mut Vec<Variable>>);

impl Values<'_> {
    fn push(&mut self, kind: &'static str, value: impl FnOnce() -> String) {
        if let Some(values) = self.0.as_mut() {
            values.push(Variable {
                kind,
                value: value(),
            });
        }
    }
}

pub(super) fn mask_with<'a>(message: &'a str, variables: &mut Values<'_>) -> Vec<Token<'a>> {
    // Split on single spaces: a doubled space is where a program printed an empty value or a
    // value with a leading space (`Invalid user  0101 from …`), which the user rule below
    // takes whole.
    let message = message.trim_matches(|c: char| c.is_whitespace());
    let words: Vec<&str> = if message.is_empty() {
        Vec::new()
    } else {
        message.split([' ', '\t']).collect()
    };
    let mut tokens = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        if let Some((end, token)) = quantity(&words, i) {
            variables.push(token.placeholder_kind(), || words[i..end].join(" "));
            tokens.push(token);
            i = end;
            continue;
        }
        if let Some(end) = calendar_word(&words, i) {
            variables.push("time", || words[i].to_string());
            tokens.push(Token::masked("", "<time>", ""));
            i = end;
            continue;
        }
        tokens.push(mask_word(words[i], variables));
        if let Some(end) = user_after(&words, i) {
            let name = &words[i + 1..end];
            let stop = match name {
                [only] if end == words.len() && only.len() > 1 && only.ends_with('.') => ".",
                _ => "",
            };
            variables.push("user", || {
                let name = name.join(" ");
                name[..name.len() - stop.len()].to_string()
            });
            tokens.push(Token::masked("", "<user>", stop));
            i = end;
        } else {
            i += 1;
        }
    }
    tokens
}

/// Units a number may carry as a separate word, and the kind of quantity they make.
const UNITS: &[(&str, &str)] = &[
    ("ns", "time"),
    ("us", "time"),
    ("µs", "time"),
    ("ms", "time"),
    ("msec", "time"),
    ("msecs", "time"),
    ("s", "time"),
    ("sec", "time"),
    ("secs", "time"),
    ("second", "time"),
    ("seconds", "time"),
    ("min", "time"),
    ("mins", "time"),
    ("minute", "time"),
    ("minutes", "time"),
    ("hour", "time"),
    ("hours", "time"),
    ("day", "time"),
    ("days", "time"),
    ("B", "size"),
    ("byte", "size"),
    ("bytes", "size"),
    ("KB", "size"),
    ("kB", "size"),
    ("KiB", "size"),
    ("MB", "size"),
    ("MiB", "size"),
    ("GB", "size"),
    ("GiB", "size"),
    ("TB", "size"),
    ("TiB", "size"),
];

/// A number written with an optional sign, comparison or fraction: `12`, `-3`, `<1`, `1.04`.
fn is_number(word: &str) -> bool {
    if !word
        .as_bytes()
        .first()
        .is_some_and(|b| b.is_ascii_digit() || matches!(b, b'<' | b'>' | b'~' | b'-' | b'+'))
    {
        return false;
    }
    let digits = word.trim_start_matches(['<', '>', '~', '-', '+']);
    let mut parts = digits.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let fraction = parts.next().unwrap_or("0");
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && !fraction.is_empty()
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

/// When `words[at]` starts a quantity (`12 ms`, `<1 sec`, `1066 bytes (1.04 KB),`), the index
/// just past it and its token. A restatement in other units in brackets is part of the value:
/// `0 bytes sent` and `1066 bytes (1.04 KB) sent` are one message with another value.
fn quantity<'a>(words: &[&'a str], at: usize) -> Option<(usize, Token<'a>)> {
    let unit_kind = |word: &str| {
        UNITS
            .iter()
            .find(|(unit, _)| *unit == word)
            .map(|(_, kind)| *kind)
    };
    if !is_number(words[at]) {
        return None;
    }
    let unit_word = words.get(at + 1)?;
    let unit = unit_word.trim_end_matches(CLOSE);
    let kind = unit_kind(unit)?;
    let placeholder = if kind == "time" { "<time>" } else { "<size>" };
    let tail = &unit_word[unit.len()..];
    if tail.is_empty() {
        // `(1.04 KB)` after the unit.
        let restated = words.get(at + 2).and_then(|w| w.strip_prefix('('));
        let closing = words.get(at + 3).and_then(|w| w.split_once(')'));
        if let (Some(number), Some((unit, rest))) = (restated, closing)
            && is_number(number)
            && unit_kind(unit).is_some()
        {
            return Some((at + 4, Token::masked("", placeholder, rest)));
        }
    }
    Some((at + 2, Token::masked("", placeholder, tail)))
}

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// When `words[at]` is the name of a day or a month inside a date written out in a message
/// (`at Sun Jul  3 23:16:09 2005`): a day name before a month name, or a month name before the
/// day of the month, the index just past it (and past the padding before a one-digit day).
fn calendar_word(words: &[&str], at: usize) -> Option<usize> {
    let word = words[at];
    if !(3..=4).contains(&word.len()) || !word.as_bytes()[0].is_ascii_uppercase() {
        return None;
    }
    let next = |i: usize| words.get(i).map_or("", |w| w.trim_end_matches(CLOSE));
    if DAY_NAMES.contains(&word.trim_end_matches(',')) {
        return MONTHS.contains(&next(at + 1)).then_some(at + 1);
    }
    if !MONTHS.contains(&word) {
        return None;
    }
    let padded = next(at + 1).is_empty();
    let day = next(if padded { at + 2 } else { at + 1 });
    day.parse::<u8>()
        .is_ok_and(|day| (1..=31).contains(&day))
        .then_some(if padded { at + 2 } else { at + 1 })
}

/// Words that follow `user` in prose or end the name after it.
const NOT_NAMES: &[&str] = &["unknown", "authentication", "request.", "NOT"];
const AFTER_NAME: &[&str] = &["from", "by", "on", "port", "to"];

/// When `words[at]` introduces a user name (`user NAME`, `for NAME from`), the index just past
/// the name. A name may be empty or hold spaces, so it runs to the next word that ends it.
fn user_after(words: &[&str], at: usize) -> Option<usize> {
    let word = words[at];
    let introduces = word.eq_ignore_ascii_case("user")
        || (word == "for" && words[at + 1..].iter().take(5).any(|w| *w == "from"));
    if !introduces {
        return None;
    }
    let start = at + 1;
    let end = (start..words.len())
        .find(|&j| {
            let w = words[j];
            AFTER_NAME.contains(&w)
                || w.starts_with('[')
                || (j > start && w.starts_with('('))
                || w.trim_end_matches(CLOSE).parse::<IpAddr>().is_ok()
        })
        .unwrap_or(words.len());
    let name = &words[start..end];
    // `for invalid user NAME from`: the name comes after `user`.
    if word == "for" && name.iter().any(|w| w.eq_ignore_ascii_case("user")) {
        return None;
    }
    // `New session 7 of user alice.`: one word that ends the message may end its sentence.
    let sentence_end = end == words.len() && name.len() == 1 && name[0].len() > 1;
    let prose = name.is_empty()
        || name.len() > 4
        || (name.len() == 1 && NOT_NAMES.contains(&name[0]))
        || name.iter().any(|w| {
            let w = if sentence_end {
                w.strip_suffix('.').unwrap_or(w)
            } else {
                w
            };
            w.ends_with(['.', ',', ';', ':']) || w.contains('=')
        });
    (!prose).then_some(end)
}

/// Punctuation that may wrap a value: `[1.2.3.4]`, `(uid=0)`, `port 22:`, `'name'`.
const OPEN: &[char] = &['[', '(', '<', '"', '\''];
const CLOSE: &[char] = &[']', ')', '>', '"', '\'', ',', ';', ':', '.'];

fn mask_word<'a>(word: &'a str, variables: &mut Values<'_>) -> Token<'a> {
    let start = word.len() - word.trim_start_matches(OPEN).len();
    let core_with_tail = &word[start..];
    let end = core_with_tail.trim_end_matches(CLOSE).len();
    let (head, core, tail) = (
        &word[..start],
        &core_with_tail[..end],
        &core_with_tail[end..],
    );
    if core.is_empty() {
        // `()`, `''`: a value printed empty, as `(<host>)` elsewhere prints one.
        return match word {
            "()" | "[]" | "''" | "\"\"" => Token::masked(&word[..1], "<*>", &word[1..]),
            _ => Token::word(word),
        };
    }
    // Every word comes here: out on its last byte before any search.
    if let Some((name, port)) = core
        .as_bytes()
        .last()
        .filter(|b| b.is_ascii_digit())
        .and_then(|_| core.rsplit_once(':'))
        .filter(|(name, port)| port.parse::<u16>().is_ok() && is_host(name))
    {
        variables.push("host", || name.to_string());
        variables.push("num", || port.to_string());
        return Token::masked(head, "<host>:<num>", tail);
    }
    if let Some((key, value)) = core.split_once('=').filter(|(key, _)| {
        !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    }) {
        // `head`, `key` and `=` are the start of the word.
        let before = &word[..=head.len() + key.len()];
        return mask_pair(before, key, value, tail, variables).unwrap_or(Token::word(word));
    }
    let kind = value_kind(core);
    if kind.is_none() {
        // `path:/var/log/x`, `event:<uuid>`: a label and a value with no space between.
        let key = core
            .bytes()
            .take_while(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            .count();
        if core.as_bytes().get(key) == Some(&b':')
            && core[..key].bytes().any(|b| b.is_ascii_alphabetic())
            && let (key, value) = (&core[..key], &core[key + 1..])
            && let Some(kind) = value_kind(value).filter(|kind| *kind != "ip:num")
        {
            variables.push(kind, || value.to_string());
            let before = &word[..=head.len() + key.len()];
            return Token::masked(before, placeholder(kind), tail);
        }
    }
    match kind {
        Some("ip:num") => {
            if let Ok(socket) = core.parse::<SocketAddr>() {
                variables.push("ip", || socket.ip().to_string());
                variables.push("num", || socket.port().to_string());
            }
            Token::masked(head, "<ip>:<num>", tail)
        }
        Some(kind) => {
            variables.push(kind, || core.to_string());
            Token::masked(head, placeholder(kind), tail)
        }
        None => Token::word(word),
    }
}

/// `key=value` with the value replaced by its placeholder, if it is a value; `before` is the
/// word up to the value.
fn mask_pair<'a>(
    before: &'a str,
    key: &str,
    value: &str,
    tail: &'a str,
    variables: &mut Values<'_>,
) -> Option<Token<'a>> {
    if value.is_empty() {
        return None;
    }
    let (kind, shown) = match key {
        "user" | "ruser" | "logname" | "acct" => ("user", "user"),
        // An address or a name; one placeholder keeps both in one template.
        "rhost" | "host" | "hostname" | "addr" => {
            let kind = if value.parse::<IpAddr>().is_ok() {
                "ip"
            } else {
                "host"
            };
            (kind, "host")
        }
        _ => match value_kind(value)? {
            "ip:num" => ("ip", "ip:num"),
            kind => (kind, kind),
        },
    };
    variables.push(kind, || value.to_string());
    Some(Token::masked(before, placeholder(shown), tail))
}

/// The placeholder of a kind of value.
fn placeholder(kind: &str) -> &'static str {
    match kind {
        "ip" => "<ip>",
        "ip:num" => "<ip:num>",
        "num" => "<num>",
        "path" => "<path>",
        "hex" => "<hex>",
        "host" => "<host>",
        "user" => "<user>",
        "time" => "<time>",
        "size" => "<size>",
        "mac" => "<mac>",
        _ => "<*>",
    }
}

/// The type of a value that needs no context to be recognised.
fn value_kind(core: &str) -> Option<&'static str> {
    if core.bytes().all(|b| b.is_ascii_digit()) {
        return Some("num");
    }
    // An address holds a digit or a colon, and starts with a hex digit, `:` or `[`.
    let may_be_address = core
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_hexdigit() || b == b':' || b == b'[')
        && core.bytes().any(|b| b.is_ascii_digit() || b == b':');
    if may_be_address && core.parse::<IpAddr>().is_ok() {
        return Some("ip");
    }
    if may_be_address && core.parse::<SocketAddr>().is_ok() {
        return Some("ip:num");
    }
    if is_number(core) {
        return Some("num");
    }
    if is_clock(core) || is_date(core) {
        return Some("time");
    }
    if is_mac(core) {
        return Some("mac");
    }
    if core.starts_with('/') && core.len() > 1 {
        return Some("path");
    }
    if is_hex(core) {
        return Some("hex");
    }
    if is_host(core) {
        return Some("host");
    }
    None
}

/// A digest or token in base64 (`9HOrSLVAOaKalwu8bSx3RYmAzNjvQNtCSXw0zFi/EgV` of a key's
/// `SHA256:` fingerprint): at least 20 characters of the base64 alphabet, with digits and
/// letters of both cases mixed.
fn is_digest(core: &str) -> bool {
    let (mut digit, mut upper, mut lower) = (false, false, false);
    core.len() >= 20
        && core.bytes().all(|b| {
            digit |= b.is_ascii_digit();
            upper |= b.is_ascii_uppercase();
            lower |= b.is_ascii_lowercase();
            b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_')
        })
        && digit
        && upper
        && lower
}

/// `e3871ffd-5cd5-4287-bddd-3529f7b59515`.
fn is_uuid(core: &str) -> bool {
    core.len() == 36
        && core.bytes().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        })
}

/// A hardware address, `5c:50:15:36:bc:03` or `5C-50-15-36-BC-03`.
fn is_mac(core: &str) -> bool {
    core.len() == 17
        && [':', '-'].iter().any(|&separator| {
            core.split(separator)
                .filter(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
                .count()
                == 6
        })
}

/// `23:16:09`, `16:49:06.811`, `17:41:44,747`, or minutes and seconds `00:01`.
fn is_clock(core: &str) -> bool {
    // Runs for every word that is no plain number: no allocation, and out at the first byte.
    if !core.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        return false;
    }
    let (clock, fraction) = core.split_once(['.', ',']).unwrap_or((core, "0"));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    let mut count = 0;
    for (i, part) in clock.split(':').enumerate() {
        let fits = if i == 0 {
            (1..=2).contains(&part.len())
        } else {
            part.len() == 2
        };
        if !fits || !digits(part) {
            return false;
        }
        count += 1;
    }
    let first_two = clock.len() >= 2 && clock.as_bytes()[1] != b':';
    (count == 3 || count == 2 && first_two) && !fraction.is_empty() && digits(fraction)
}

/// `2017-05-16`, `2017/07/02`, `17/06/09`, `2005.06.03`: three groups of at least two digits,
/// one separator.
fn is_date(core: &str) -> bool {
    if !core.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        return false;
    }
    let Some(separator) = core.bytes().find(|b| matches!(b, b'-' | b'/' | b'.')) else {
        return false;
    };
    let mut count = 0;
    for part in core.split(char::from(separator)) {
        if !(2..=4).contains(&part.len()) || !part.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        count += 1;
    }
    count == 3
}

fn is_hex(core: &str) -> bool {
    if is_uuid(core) || is_digest(core) {
        return true;
    }
    let digits = core.strip_prefix("0x").unwrap_or(core);
    let all_hex = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit());
    all_hex && (core.starts_with("0x") || digits.len() >= 8 && has_digit(digits))
}

/// `name.example.com`: dot-separated labels of letters, digits and hyphens, ending in a
/// label of letters.
fn is_host(core: &str) -> bool {
    let label =
        |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    core.rsplit_once('.').is_some_and(|(rest, last)| {
        last.len() >= 2
            && last.bytes().all(|b| b.is_ascii_alphabetic())
            && rest.split('.').all(label)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message's tokens as text, and the values they replaced.
    fn mask(message: &str) -> (Vec<String>, Vec<Variable>) {
        let mut variables = Vec::new();
        let tokens = mask_with(message, &mut Values(Some(&mut variables)));
        (tokens.iter().map(ToString::to_string).collect(), variables)
    }

    #[test]
    fn values_become_typed_placeholders() {
        let (tokens, variables) = mask(
            "Failed password for invalid user admin from [2001:db8::1] port 22: uid=0 rhost=gw.example.net user=bob /etc/passwd 0xdeadbeef",
        );
        assert_eq!(
            tokens.join(" "),
            "Failed password for invalid user <user> from [<ip>] port <num>: uid=<num> rhost=<host> user=<user> <path> <hex>"
        );
        let kinds: Vec<&str> = variables.iter().map(|v| v.kind).collect();
        assert_eq!(
            kinds,
            ["user", "ip", "num", "num", "host", "user", "path", "hex"]
        );
        assert_eq!(variables[1].value, "2001:db8::1");
    }

    #[test]
    fn user_names_may_be_empty_or_hold_spaces_and_end_before_an_address() {
        for (message, name) in [
            ("Invalid user  0101 from 5.188.10.180", " 0101"),
            ("Invalid user  from 5.188.10.180", ""),
            (
                "Connection closed by invalid user a b 192.0.2.1 port 22 [preauth]",
                "a b",
            ),
            (
                "Failed password for root from 192.0.2.1 port 22 ssh2",
                "root",
            ),
            ("Session of user paul358.", "paul358"),
        ] {
            let (_, variables) = mask(message);
            assert_eq!(variables[0].kind, "user", "{message}");
            assert_eq!(variables[0].value, name, "{message}");
        }
        for prose in [
            "Received disconnect from 192.0.2.1 port 22:11: disconnected by user",
            "Closed due to user request. [preauth]",
            "pam_unix(sshd:auth): check pass; user unknown",
        ] {
            let (_, variables) = mask(prose);
            assert!(variables.iter().all(|v| v.kind != "user"), "{prose}");
        }
    }

    #[test]
    fn quantities_times_and_names_with_values_are_typed() {
        for (message, masked) in [
            (
                "close, 0 bytes sent, 1066 bytes (1.04 KB) received, lifetime <1 sec",
                "close, <size> sent, <size> received, lifetime <time>",
            ),
            (
                "connection from 192.0.2.1 () at Sun Jul  3 23:16:09 2005",
                "connection from <ip> (<*>) at <time> <time> <num> <time> <num>",
            ),
            (
                "proxy.example.org:5070 open, took 0.25 ms on 2017-05-16",
                "<host>:<num> open, took <time> on <time>",
            ),
            (
                "copy source path:/var/log/x event:e3871ffd-5cd5-4287-bddd-3529f7b59515 to 5c:50:15:36:bc:03",
                "copy source path:<path> event:<hex> to <mac>",
            ),
            (
                "Accepted publickey for bob from 192.0.2.1 port 22 ssh2: ED25519 SHA256:9HOrSLVAOaKalwu8bSx3RYmAzNjvQNtCSXw0zFi/EgV",
                "Accepted publickey for <user> from <ip> port <num> ssh2: ED25519 SHA256:<hex>",
            ),
        ] {
            assert_eq!(mask(message).0.join(" "), masked, "{message}");
        }
    }
}
