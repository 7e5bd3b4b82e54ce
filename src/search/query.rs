//! Queries: the query language (words, phrases, `AND`/`OR`/`NOT`, fields, ranges) checked for
//! the errors the parser would not place, exact look-ups of an address or an account, newest
//! first within a time range and after a page's cursor, and the highlighting of matches.

use tantivy::collector::TopDocs;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::snippet::SnippetGenerator;
use tantivy::{DocAddress, Order, Term};

use super::schema::FIELDS;
use super::{Hit, MAX_LIMIT, SearchError, SearchIndex};
use crate::storage::EventCursor;

/// The recent spans of event time a search looks in before the whole range: an hour, a day,
/// a week, thirty days.
const RECENT_SPANS: [i64; 4] = [
    3_600_000_000,
    86_400_000_000,
    7 * 86_400_000_000,
    30 * 86_400_000_000,
];

impl SearchIndex {
    /// Events matching `query` (the query language of [`parse_query`]) between `from` and `to`
    /// (µs, inclusive), newest first, strictly before `before` when continuing a page.
    pub fn search(
        &self,
        query: &str,
        from: Option<i64>,
        to: Option<i64>,
        before: Option<EventCursor>,
        limit: usize,
    ) -> Result<Vec<Hit>, SearchError> {
        self.find(&Find::Text(query), from, to, before, limit)
    }

    /// As [`SearchIndex::search`], for a query given as text or as exact values.
    pub fn find(
        &self,
        find: &Find<'_>,
        from: Option<i64>,
        to: Option<i64>,
        before: Option<EventCursor>,
        limit: usize,
    ) -> Result<Vec<Hit>, SearchError> {
        let parsed = self.query_of(find)?;
        let upper = match (to, before) {
            (Some(to), Some(b)) => Some(to.min(b.timestamp)),
            (to, b) => to.or(b.map(|b| b.timestamp)),
        };
        let limit = limit.min(MAX_LIMIT);
        let searcher = self.reader.searcher();
        // Newest first: the most recent spans are tried before the whole range, so that a
        // common word is not ranked over all time when the last hour holds a page of it. When
        // a span holds `limit` hits, every hit outside it is older, so the page is the same.
        if let Some(anchor) = upper.or_else(|| newest_time(&searcher)) {
            for span in RECENT_SPANS {
                let lower = anchor.saturating_sub(span);
                if from.is_some_and(|from| from >= lower) {
                    break;
                }
                let hits = self.top(&searcher, &*parsed, Some(lower), upper, before, limit)?;
                if hits.len() >= limit {
                    return Ok(hits);
                }
            }
        }
        self.top(&searcher, &*parsed, from, upper, before, limit)
    }

    /// The newest `limit` hits of `parsed` between `from` and `upper` (µs, inclusive),
    /// strictly before `before`.
    fn top(
        &self,
        searcher: &tantivy::Searcher,
        parsed: &dyn Query,
        from: Option<i64>,
        upper: Option<i64>,
        before: Option<EventCursor>,
        limit: usize,
    ) -> Result<Vec<Hit>, SearchError> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, parsed.box_clone())];
        if from.is_some() || upper.is_some() {
            let bound = |v: Option<i64>| {
                v.map_or(std::ops::Bound::Unbounded, |v| {
                    std::ops::Bound::Included(Term::from_field_i64(self.fields.time, v))
                })
            };
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(bound(from), bound(upper))),
            ));
        }
        let query = BooleanQuery::new(clauses);
        // Events at the cursor's own microsecond that come at or after it are skipped, so a
        // few more are fetched than asked for.
        let wanted = limit + 1;
        let mut fetch = wanted;
        loop {
            let top = searcher.search(
                &query,
                &TopDocs::with_limit(fetch).order_by_fast_field::<i64>("time", Order::Desc),
            )?;
            let exhausted = top.len() < fetch;
            let mut hits: Vec<Hit> = top
                .into_iter()
                .map(|(time, address)| Self::key_of(searcher, time.unwrap_or_default(), address))
                .collect::<Result<_, _>>()?;
            hits.sort_by(|a, b| b.cmp(a));
            if let Some(before) = before {
                hits.retain(|hit| *hit < before);
            }
            if hits.len() >= wanted || exhausted {
                hits.truncate(limit);
                return Ok(hits);
            }
            fetch *= 4;
        }
    }

    fn key_of(
        searcher: &tantivy::Searcher,
        timestamp: i64,
        address: DocAddress,
    ) -> Result<Hit, SearchError> {
        let seqs = searcher
            .segment_reader(address.segment_ord)
            .fast_fields()
            .u64("seq")?;
        let seq = seqs.first(address.doc_id).unwrap_or(0);
        Ok(EventCursor { timestamp, seq })
    }

    /// Marks the words and phrases of `query` in the texts of its hits.
    pub fn highlighter(&self, query: &str) -> Result<Highlighter, SearchError> {
        if query.trim().is_empty() {
            return Ok(Highlighter(None));
        }
        let parsed = self.parse_query(query)?;
        let searcher = self.reader.searcher();
        let mut generator = SnippetGenerator::create(&searcher, &*parsed, self.fields.message)?;
        generator.set_max_num_chars(usize::MAX / 2);
        Ok(Highlighter(Some(generator)))
    }

    pub(super) fn query_of(&self, find: &Find<'_>) -> Result<Box<dyn Query>, SearchError> {
        let (field, value, outcome) = match find {
            Find::Text(text) => return self.parse_query(text),
            Find::Exact {
                field,
                value,
                outcome,
            } => (field, value, outcome),
        };
        let term = |field: Field, text: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, text),
                IndexRecordOption::Basic,
            ))
        };
        let matched = match *field {
            Exact::Address => term(self.fields.ip, &value.to_ascii_lowercase()),
            Exact::Account => term(self.fields.user, value),
        };
        Ok(match outcome {
            None => matched,
            Some(outcome) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, matched),
                (Occur::Must, term(self.fields.outcome, outcome)),
            ])),
        })
    }

    fn parse_query(&self, text: &str) -> Result<Box<dyn Query>, SearchError> {
        if text.trim().is_empty() {
            return Ok(Box::new(AllQuery));
        }
        check_syntax(text)?;
        let mut parser = QueryParser::for_index(&self.index, vec![self.fields.message]);
        parser.set_conjunction_by_default();
        let text = excluding_prefixes(text);
        let parsed = match parser.parse_query(&text) {
            // `NOT root` alone: every event but those.
            Err(tantivy::query::QueryParserError::AllButQueryForbidden) => {
                parser.parse_query(&format!("* {text}"))
            }
            other => other,
        };
        parsed.map_err(|e| SearchError::Query {
            message: format!("invalid query: {e}"),
            position: 0,
        })
    }
}

/// What to find: a query in the query language, or the events of one address or account
/// (given as values, so that no quoting is needed), optionally of one outcome.
#[derive(Debug, Clone, Copy)]
pub enum Find<'a> {
    Text(&'a str),
    Exact {
        field: Exact,
        value: &'a str,
        /// `success` or `failure`.
        outcome: Option<&'static str>,
    },
}

/// The fields [`Find::Exact`] matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exact {
    Address,
    Account,
}

/// Marks what a query matched in a text.
pub struct Highlighter(Option<SnippetGenerator>);

impl Highlighter {
    /// The byte ranges of `text` that the query's words and phrases match, in order and
    /// without overlaps.
    #[must_use]
    pub fn ranges(&self, text: &str) -> Vec<std::ops::Range<usize>> {
        let Some(generator) = &self.0 else {
            return Vec::new();
        };
        let snippet = generator.snippet(text);
        let start = snippet.fragment_range().start;
        let ranges: Vec<_> = snippet
            .highlighted()
            .iter()
            .map(|r| r.start + start..r.end + start)
            .collect();
        tantivy::snippet::collapse_overlapped_ranges(&ranges)
    }
}

/// The newest event time in the index, from each segment's column bounds (no document is read).
fn newest_time(searcher: &tantivy::Searcher) -> Option<i64> {
    searcher
        .segment_readers()
        .iter()
        .filter(|segment| segment.num_docs() > 0)
        .filter_map(|segment| segment.fast_fields().i64("time").ok())
        .map(|column| column.max_value())
        .max()
}

/// `NOT x` as `-x`, outside phrases: the query parser reads `a AND NOT b` as `a` and a clause
/// matching nothing, while `a AND -b` means what is meant.
fn excluding_prefixes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_phrase = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let at_word_start = out
            .chars()
            .last()
            .is_none_or(|p| p.is_whitespace() || p == '(');
        if !in_phrase
            && at_word_start
            && rest.starts_with("NOT")
            && rest[3..].starts_with(char::is_whitespace)
        {
            out.push('-');
            rest = rest[3..].trim_start();
            continue;
        }
        if c == '"' {
            in_phrase = !in_phrase;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 1_000;
/// Deepest nesting of groups: the query parser and the queries it builds recurse once per level.
pub const MAX_QUERY_DEPTH: usize = 16;
/// Most words (terms and operators) in a query: each is a clause to evaluate.
pub const MAX_QUERY_WORDS: usize = 64;

/// Finds what the query parser would only call a syntax error, with its position (a character
/// offset): an unterminated phrase, an unbalanced parenthesis or range bracket, a field name
/// the index does not have, a field with `*` for its value, or an operator with nothing after
/// it; and bounds the work a query asks for (length, nesting, words), so that no query can
/// exhaust a thread's stack or the server's time.
pub fn check_syntax(text: &str) -> Result<(), SearchError> {
    let error = |message: String, position: usize| Err(SearchError::Query { message, position });
    let chars: Vec<char> = text.chars().collect();
    if chars.len() > MAX_QUERY_CHARS {
        return error(
            format!("the query is longer than {MAX_QUERY_CHARS} characters"),
            MAX_QUERY_CHARS,
        );
    }
    if text.split_whitespace().count() > MAX_QUERY_WORDS {
        return error(
            format!("the query has more than {MAX_QUERY_WORDS} words"),
            0,
        );
    }
    let mut depth: Vec<usize> = Vec::new();
    let mut range_open: Option<usize> = None;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '"' => match chars[i + 1..].iter().position(|&c| c == '"') {
                Some(end) => i += end + 1,
                None => return error("a phrase is not closed: missing '\"'".into(), i),
            },
            '\\' => i += 1,
            '(' if depth.len() == MAX_QUERY_DEPTH => {
                return error(
                    format!("groups nest deeper than {MAX_QUERY_DEPTH} levels"),
                    i,
                );
            }
            '(' => depth.push(i),
            ')' if depth.pop().is_none() => return error("')' closes nothing".into(), i),
            '[' | '{' if range_open.is_none() => range_open = Some(i),
            ']' | '}' if range_open.take().is_none() => {
                return error(format!("'{}' closes no range", chars[i]), i);
            }
            ':' => {
                let start = chars[..i]
                    .iter()
                    .rposition(|c| c.is_whitespace() || matches!(c, '(' | '+' | '-'))
                    .map_or(0, |p| p + 1);
                let name: String = chars[start..i].iter().collect();
                if range_open.is_none() && !name.is_empty() && !FIELDS.contains(&name.as_str()) {
                    return error(
                        format!("unknown field '{name}' (fields: {})", FIELDS.join(", ")),
                        start,
                    );
                }
                // An address with colons after a field name (`ip:2001:db8::1`) must be quoted.
                // Phrases, ranges and groups after the name are read by the loop itself.
                let opens = matches!(chars.get(i + 1), Some('"' | '[' | '{' | '('));
                if FIELDS.contains(&name.as_str()) && !opens {
                    let value_end = chars[i + 1..]
                        .iter()
                        .position(|c| c.is_whitespace() || *c == ')')
                        .map_or(chars.len(), |p| i + 1 + p);
                    if chars[i + 1..value_end].contains(&':') {
                        return error(
                            format!("a value with ':' must be quoted: {name}:\"…\""),
                            i + 1,
                        );
                    }
                    if chars[i + 1..value_end] == ['*'] {
                        return error(
                            format!(
                                "'{name}:*' would match any value: give a value, or leave the field out"
                            ),
                            start,
                        );
                    }
                    i = value_end.max(i + 1) - 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    if let Some(open) = depth.pop() {
        return error("'(' is not closed".into(), open);
    }
    if let Some(open) = range_open {
        return error("a range is not closed".into(), open);
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    if let Some(last) = words.last().filter(|w| matches!(**w, "AND" | "OR" | "NOT")) {
        let position = text.trim_end().chars().count() - last.chars().count();
        return error(format!("'{last}' needs something after it"), position);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(query: &str) -> Option<usize> {
        match check_syntax(query) {
            Err(SearchError::Query { position, .. }) => Some(position),
            _ => None,
        }
    }

    #[test]
    fn not_becomes_a_prefix_outside_phrases() {
        assert_eq!(excluding_prefixes("a AND NOT b"), "a AND -b");
        assert_eq!(excluding_prefixes("NOT (a OR b)"), "-(a OR b)");
        assert_eq!(
            excluding_prefixes(r#""do NOT touch" NOTE"#),
            r#""do NOT touch" NOTE"#
        );
        assert_eq!(excluding_prefixes("(NOT  a)"), "(-a)");
    }

    #[test]
    fn syntax_errors_point_at_their_position() {
        assert_eq!(position(r#""invalid user" AND ip:203.0.113.7"#), None);
        assert_eq!(position(r#"ip:"2001:db8::1" OR user:root"#), None);
        assert_eq!(position("time:[1 TO 2] AND (failed OR invalid)"), None);
        assert_eq!(position(r#"failed "invalid user"#), Some(7));
        assert_eq!(position("(failed OR invalid"), Some(0));
        assert_eq!(position("failed)"), Some(6));
        assert_eq!(position("failed AND bogus:x"), Some(11));
        assert_eq!(position("ip:2001:db8::1"), Some(3));
        assert_eq!(position("failed AND"), Some(7));
        assert_eq!(position("time:[1 TO 2"), Some(5));
        assert_eq!(position("root AND -user:*"), Some(10));
        assert_eq!(position("user:adm*"), None);
    }

    #[test]
    fn the_work_a_query_asks_for_is_bounded() {
        let nested = |depth: usize| format!("{}a{}", "(".repeat(depth), ")".repeat(depth));
        assert_eq!(position(&nested(MAX_QUERY_DEPTH)), None);
        assert_eq!(
            position(&nested(MAX_QUERY_DEPTH + 1)),
            Some(MAX_QUERY_DEPTH)
        );
        assert_eq!(position(&nested(3_000)), Some(MAX_QUERY_CHARS));
        assert_eq!(position(&"a ".repeat(MAX_QUERY_WORDS)), None);
        assert_eq!(position(&"a ".repeat(MAX_QUERY_WORDS + 1)), Some(0));
        // Parentheses inside a phrase are words, not groups.
        assert_eq!(position(&format!("\"{}\"", "(".repeat(40))), None);
    }
}
