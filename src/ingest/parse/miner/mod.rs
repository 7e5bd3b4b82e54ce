//! The template miner: groups messages no parser knows into templates, online, in the manner
//! of Drain, with typed variables.
//!
//! A message is split into tokens, and tokens that are values are replaced by typed
//! placeholders before any comparison (`mask.rs`): addresses (`<ip>`, `<host>:<num>`, `<mac>`),
//! numbers (`<num>`, fractions too), quantities with their unit (`<size>` for `1066 bytes (1.04
//! KB)`, `<time>` for `<1 sec`), times and dates (`<time>`, also `Sun Jul  3` written out), host
//! names (`<host>`), hex strings and UUIDs (`<hex>`), paths (`<path>`, also after a label as in
//! `path:/var/x`), the values of `key=value` pairs, and user names where the words around them
//! say so (`user NAME`, `for NAME from`, `user=NAME`). Messages are then grouped by token count
//! and first token, and a message joins the most similar template of its group when they
//! differ only where the template already has a variable (with the same punctuation around it)
//! or where both tokens are one counter or id at different values (`blk_-16` and `blk_38`,
//! `eadmin1` and `badmin1`; not `AuthFail:sts:5` and `AssocFail:sts:2`, nor `awdl0` and
//! `en0`); the differing positions become `<*>`. Two different words never merge: Drain's plain
//! similarity threshold is what puts `Received disconnect …: Bye Bye [preauth]` and `…
//! disconnected by user` into one template, which typing makes unnecessary. Of two templates a
//! message fits as well, the one that matches it word for word rather than by `<*>` wins.

use serde::{Deserialize, Serialize};

pub use mask::{Token, mask_tokens};
use mask::{Values, has_digit, is_variable, mask_with};

mod mask;

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

/// The similarity of a message to a template, if it may join it: same length, at least
/// [`SIMILARITY`] of the positions equal, and every difference at a variable of the template
/// that [`wraps`] the token, or between two [`counters`].
fn mergeable(template: &[String], tokens: &[Token<'_>]) -> Option<f64> {
    if template.len() != tokens.len() {
        return None;
    }
    let (mut equal, mut wildcards) = (0usize, 0usize);
    for (slot, token) in template.iter().zip(tokens) {
        if token.is(slot) {
            equal += 1;
        } else if slot == "<*>" {
            equal += 1;
            wildcards += 1;
        } else if !(is_variable(slot) && wraps(slot, token) || counters(slot, token)) {
            return None;
        }
    }
    let similarity = if tokens.is_empty() {
        1.0
    } else {
        equal as f64 / tokens.len() as f64
    };
    // Of two templates as similar, the one that matches more positions word for word wins: a
    // message that a specific template already describes joins it rather than a looser one.
    (similarity >= SIMILARITY).then_some(similarity - wildcards as f64 * 1e-6)
}

/// Whether `token` may stand where a template has a variable: the variable's own punctuation
/// or key around it is there too (`(uid=<num>)` takes `(uid=0)`, not `LOGIN(uid=0)`).
fn wraps(slot: &str, token: &Token<'_>) -> bool {
    let bytes = slot.as_bytes();
    let start = (0..bytes.len())
        .find(|&i| bytes[i] == b'<' && is_variable(&slot[i..]))
        .unwrap_or(0);
    let end = slot.rfind('>').map_or(slot.len(), |i| i + 1);
    let (prefix, suffix) = (&bytes[..start], &bytes[end..]);
    let length = token.len();
    length >= prefix.len() + suffix.len()
        && token.bytes().take(prefix.len()).eq(prefix.iter().copied())
        && token
            .bytes()
            .skip(length - suffix.len())
            .eq(suffix.iter().copied())
}

/// Whether two different tokens that both carry digits are one counter or id at different
/// values: both mostly digits (`R33-M1-N3-C:J02-U01`, stamped file names), or split alike at
/// their punctuation with every part that differs a number in both: mostly digits (`246`, `C5`,
/// `tc19060`) or hex (`fe1a` in a UUID). A part with more letters is a word (`IPV4`, `awdl0`,
/// `AuthFail`), and different words never merge: `[Thunderbird_C5]` and `[Thunderbird_A8]`
/// merge, `AuthFail:sts:5` and `AssocFail:sts:2` do not.
fn counters(slot: &str, token: &Token<'_>) -> bool {
    if !(has_digit(slot) && token.has_digit()) {
        return false;
    }
    // The common case, a counter at another value in the same word (`pts/0`, `pts/3`), and the
    // checks below it need no copy of either token.
    let length = token.len();
    if length == slot.len()
        && slot
            .bytes()
            .zip(token.bytes())
            .all(|(a, b)| a == b || a.is_ascii_digit() && b.is_ascii_digit())
    {
        return true;
    }
    // Signs are no digits nor letters, so this needs no copy either.
    if mostly_digits(slot.bytes()) && mostly_digits(token.bytes()) {
        return true;
    }
    let (slot, token) = (unsigned(slot), unsigned(&token.to_string()));
    let separator = |c: char| !c.is_alphanumeric();
    let separators = |t: &str| t.chars().filter(|&c| separator(c)).collect::<String>();
    let number = |part: &str| {
        has_digit(part)
            && (mostly_digits(part.bytes())
                || part.len() >= 4 && part.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    separators(&slot) == separators(&token)
        && slot
            .split(separator)
            .zip(token.split(separator))
            .all(|(x, y)| x == y || number(x) && number(y) || one_letter_apart(x, y))
}

/// Whether the letters of two parts (digits aside) are the same or one edit apart: `eadmin1`
/// and `badmin1`, `DOBA` and `DOBB` are names in one series; `awdl0` and `en0`, `AuthFail` and
/// `AssocFail` are different words.
fn one_letter_apart(x: &str, y: &str) -> bool {
    let letters = |part: &str| {
        part.bytes()
            .filter(|b| !b.is_ascii_digit())
            .collect::<Vec<u8>>()
    };
    let (a, b) = (letters(x), letters(y));
    if a == b {
        return true;
    }
    let (short, long) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    if long.len() - short.len() > 1 || short.len() < 3 {
        return false;
    }
    // They differ, so the common start ends inside the longer one.
    let start = short
        .iter()
        .zip(long.iter())
        .take_while(|(p, q)| p == q)
        .count();
    if short.len() == long.len() {
        short.get(start + 1..) == long.get(start + 1..)
    } else {
        short.get(start..) == long.get(start + 1..)
    }
}

/// The text without the signs of its numbers (`blk_-16` as `blk_16`), so that a negative and
/// a positive id split alike.
fn unsigned(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut after_separator = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let sign = matches!(c, '-' | '+')
            && after_separator
            && chars.peek().is_some_and(char::is_ascii_digit);
        if !sign {
            out.push(c);
        }
        after_separator = !c.is_alphanumeric();
    }
    out
}

/// At least as many digits as letters.
fn mostly_digits(text: impl Iterator<Item = u8>) -> bool {
    let (mut digits, mut alphanumeric) = (0usize, 0usize);
    for b in text {
        digits += usize::from(b.is_ascii_digit());
        alphanumeric += usize::from(b.is_ascii_alphanumeric());
    }
    digits * 2 >= alphanumeric
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn ids_merge_but_words_with_digits_in_them_do_not() {
        let mut miner = Miner::default();
        let mut same = |a: &str, b: &str| {
            let x = miner.add(a).template_id;
            x == miner.add(b).template_id
        };
        assert!(same(
            "block blk_-1608 terminating",
            "block blk_7503 terminating"
        ));
        assert!(same(
            "no answer from [Thunderbird_C5] now",
            "no answer from [Thunderbird_A8] now"
        ));
        assert!(same(
            "qualify name (eadmin1) short",
            "qualify name (badmin1) short"
        ));
        assert!(!same(
            "reason = AuthFail:sts:5_rsn:0",
            "reason = AssocFail:sts:2_rsn:0"
        ));
        assert!(!same("link up on awdl0", "link up on en0"));
        // A variable keeps its own punctuation: `LOGIN(uid=0)` is not `(uid=<num>)`.
        assert!(!same(
            "opened for user root by (uid=0)",
            "opened for user root by LOGIN(uid=0)"
        ));
    }
}
