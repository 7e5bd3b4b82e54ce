//! The template miner: groups messages no parser knows into templates, online, in the manner
//! of Drain, with typed variables.
//!
//! A message is split into tokens, and tokens that are values are replaced by typed
//! placeholders before any comparison: addresses (`<ip>`), numbers (`<num>`), host names
//! (`<host>`), hex strings (`<hex>`), paths (`<path>`), the values of `key=value` pairs, and
//! user names where the words around them say so (`user NAME`, `for NAME from`, `user=NAME`).
//! Messages are then grouped by token count and first token, and a message joins the most
//! similar template of its group when they differ only where the template already has a
//! variable or where both tokens carry digits (counters, session ids); the differing positions
//! become `<*>`. Two different words never merge: Drain's plain similarity threshold is what
//! puts `Received disconnect …: Bye Bye [preauth]` and `… disconnected by user` into one
//! template, which typing makes unnecessary.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// A template's stable id: it keeps its id as it generalises.
pub type TemplateId = u32;

/// A template and how many messages it has taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub id: TemplateId,
    pub tokens: Vec<String>,
    pub count: u64,
}

impl Template {
    /// The template as text, placeholders included.
    #[must_use]
    pub fn text(&self) -> String {
        self.tokens.join(" ")
    }
}

/// A value a placeholder stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub kind: &'static str,
    pub value: String,
}

/// What the miner made of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mined {
    pub template_id: TemplateId,
    /// True when this message created the template.
    pub new_template: bool,
    pub variables: Vec<Variable>,
}

/// Most similar fraction of positions a message must share with a template to join it.
const SIMILARITY: f64 = 0.5;
/// Messages longer than this many tokens are grouped on their first tokens only.
const MAX_TOKENS: usize = 64;

/// The miner's state: every template, grouped for lookup.
#[derive(Debug, Default, Clone)]
pub struct Miner {
    templates: Vec<Template>,
    /// First token → token count → indices into `templates`.
    groups: rustc_hash::FxHashMap<String, rustc_hash::FxHashMap<usize, Vec<usize>>>,
}

impl Miner {
    /// A miner that already knows `templates` (as persisted).
    #[must_use]
    pub fn with_templates(mut templates: Vec<Template>) -> Self {
        templates.sort_by_key(|t| t.id);
        let mut miner = Self::default();
        for template in templates {
            let tokens: Vec<Token<'_>> = template.tokens.iter().map(|t| Token::word(t)).collect();
            let (count, first) = group_key(&tokens);
            miner
                .groups
                .entry(first.to_string())
                .or_default()
                .entry(count)
                .or_default()
                .push(miner.templates.len());
            miner.templates.push(template);
        }
        miner
    }

    /// Every template, in creation order.
    #[must_use]
    pub fn templates(&self) -> &[Template] {
        &self.templates
    }

    /// The template with this id. Ids are given in creation order from 1, so this is an index,
    /// with a search as the fallback for templates loaded with gaps between their ids.
    #[must_use]
    pub fn template(&self, id: TemplateId) -> Option<&Template> {
        let index = (id as usize).checked_sub(1)?;
        self.templates
            .get(index)
            .filter(|t| t.id == id)
            .or_else(|| self.templates.iter().find(|t| t.id == id))
    }

    /// Places `message` in a template, creating or generalising one as needed.
    pub fn add(&mut self, message: &str) -> Mined {
        let mut variables = Vec::new();
        let tokens = mask_with(message, &mut Values(Some(&mut variables)));
        let (template_id, new_template) = self.place(&tokens);
        Mined {
            template_id,
            new_template,
            variables,
        }
    }

    /// As [`Miner::add`], for a message already masked by [`mask_tokens`]: masking, the costly
    /// part, needs no access to the miner, so a shared miner is locked for the placing only.
    /// Returns the template's id and whether this message created it.
    pub fn place(&mut self, tokens: &[Token<'_>]) -> (TemplateId, bool) {
        let (count, first) = group_key(tokens);
        let candidates = match self.groups.get_mut(first) {
            Some(by_count) => by_count.entry(count).or_default(),
            None => self
                .groups
                .entry(first.to_string())
                .or_default()
                .entry(count)
                .or_default(),
        };
        let best = candidates
            .iter()
            .filter_map(|&i| {
                let template = &self.templates[i];
                mergeable(&template.tokens, tokens).map(|similarity| (similarity, i))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((_, index)) = best {
            let template = &mut self.templates[index];
            for (slot, token) in template.tokens.iter_mut().zip(tokens) {
                if !token.is(slot) && !is_variable(slot) {
                    *slot = "<*>".to_string();
                }
            }
            template.count += 1;
            return (template.id, false);
        }
        // Templates are kept in id order, so the last has the highest id.
        let next = self.templates.last().map_or(0, |t| t.id);
        let id = next.saturating_add(1);
        candidates.push(self.templates.len());
        self.templates.push(Template {
            id,
            tokens: tokens.iter().map(ToString::to_string).collect(),
            count: 1,
        });
        (id, true)
    }
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// A token of a masked message, borrowed from it: a word as it stands, or the placeholder of a
/// value with the punctuation or key around it (`[<ip>]`, `user=<user>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    head: &'a str,
    placeholder: &'static str,
    tail: &'a str,
}

impl<'a> Token<'a> {
    fn word(word: &'a str) -> Self {
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
    fn is(&self, text: &str) -> bool {
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

    fn has_digit(&self) -> bool {
        has_digit(self.head) || has_digit(self.tail)
    }

    fn is_variable(&self) -> bool {
        !self.placeholder.is_empty() || is_variable(self.head)
    }
}

impl std::fmt::Display for Token<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{}", self.head, self.placeholder, self.tail)
    }
}

/// Messages are compared only within a group: same token count and same first token, unless
/// that token carries digits or a placeholder (a counter or a name such as `alice42` first, as
/// in sudo's lines), when they share one group.
fn group_key<'a>(tokens: &[Token<'a>]) -> (usize, &'a str) {
    let first = match tokens.first() {
        Some(token) if token.has_digit() || token.is_variable() => "<*>",
        Some(token) => token.head,
        None => "",
    };
    (tokens.len().min(MAX_TOKENS), first)
}

fn is_variable(token: &str) -> bool {
    const NAMES: [&[u8]; 8] = [
        b"*>", b"ip>", b"num>", b"host>", b"hex>", b"path>", b"user>", b"ip:num>",
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

/// The similarity of a message to a template, if it may join it: same length, at least
/// [`SIMILARITY`] of the positions equal, and every difference at a variable of the template
/// or between two tokens that both carry digits.
fn mergeable(template: &[String], tokens: &[Token<'_>]) -> Option<f64> {
    if template.len() != tokens.len() {
        return None;
    }
    let mut equal = 0usize;
    for (slot, token) in template.iter().zip(tokens) {
        if token.is(slot) || slot == "<*>" {
            equal += 1;
        } else if !(is_variable(slot) || has_digit(slot) && token.has_digit()) {
            return None;
        }
    }
    let similarity = if tokens.is_empty() {
        1.0
    } else {
        equal as f64 / tokens.len() as f64
    };
    (similarity >= SIMILARITY).then_some(similarity)
}

fn has_digit(token: &str) -> bool {
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
struct Values<'v>(Option<&'v mut Vec<Variable>>);

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

fn mask_with<'a>(message: &'a str, variables: &mut Values<'_>) -> Vec<Token<'a>> {
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
        tokens.push(mask_word(words[i], variables));
        if let Some(end) = user_after(&words, i) {
            variables.push("user", || words[i + 1..end].join(" "));
            tokens.push(Token::masked("", "<user>", ""));
            i = end;
        } else {
            i += 1;
        }
    }
    tokens
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
    let prose = name.is_empty()
        || name.len() > 4
        || (name.len() == 1 && NOT_NAMES.contains(&name[0]))
        || name
            .iter()
            .any(|w| w.ends_with(['.', ',', ';', ':']) || w.contains('='));
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
        return Token::word(word);
    }
    if let Some((key, value)) = core.split_once('=').filter(|(key, _)| {
        !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    }) {
        // `head`, `key` and `=` are the start of the word.
        let before = &word[..=head.len() + key.len()];
        return mask_pair(before, key, value, tail, variables).unwrap_or(Token::word(word));
    }
    match value_kind(core) {
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
    if core.starts_with('-') && core.len() > 1 && core[1..].bytes().all(|b| b.is_ascii_digit()) {
        return Some("num");
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

fn is_hex(core: &str) -> bool {
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
    fn digits_generalise_but_different_words_never_merge() {
        let mut miner = Miner::default();
        let a = miner.add("Started session c12 for job backup");
        let b = miner.add("Started session c13 for job backup");
        assert_eq!(a.template_id, b.template_id);
        assert!(a.new_template && !b.new_template);
        assert_eq!(
            miner.template(a.template_id).unwrap().text(),
            "Started session <*> for job backup"
        );
        let c = miner.add("Started session c14 for job restore");
        assert_ne!(c.template_id, a.template_id);
        // Persisted templates come back with their ids and keep taking their messages.
        let mut again = Miner::with_templates(miner.templates().to_vec());
        assert_eq!(
            again.add("Started session c99 for job backup").template_id,
            a.template_id
        );
    }
}
