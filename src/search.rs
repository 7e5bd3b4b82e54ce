//! Full-text search: a tantivy index derived from the event store, and the thread that keeps
//! it following the store.
//!
//! The index is never the source of truth. Every event commit of the store logs the keys of the
//! events it stored ([`Store::committed_since`]); the indexer reads that log from a checkpoint,
//! adds the events, and commits the index with the next commit number to read as the commit's
//! payload. A crash loses only documents not yet committed to the index, and the checkpoint in
//! the same index commit makes the indexer read exactly those commits again: nothing is lost or
//! indexed twice. An index that is missing, unreadable or of another layout is rebuilt from the
//! store ([`SearchIndex::rebuild`], `securify reindex`).
//!
//! Documents hold the searchable fields and the event's key (time, sequence) as fast fields;
//! hits are read back from the store, so the index stores no text.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::indexer::LogMergePolicy;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TEXT, TextFieldIndexing, TextOptions,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::{LowerCaser, RawTokenizer, TextAnalyzer};
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term,
};

use crate::event::Event;
use crate::storage::{EventCursor, StorageError, Store};

/// Layout of the index this binary writes; an index of another layout is rebuilt.
const LAYOUT: u32 = 3;
/// Events read from the store per round of the indexer.
const ROUND_EVENTS: usize = 5_000;
/// Longest time indexed events wait for an index commit (they are searchable after it).
const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// How often the indexer looks for new commits when it has caught up.
const POLL: Duration = Duration::from_millis(100);
/// Segments of more than this many documents are not merged any further, so no merge makes a
/// segment much larger than a level of them (eight by default, about a million documents):
/// merging larger ones held memory and mapped files in proportion to their size (a merge of
/// millions of documents took the server from 200 to 400–600 MiB), while a search visits a
/// few more segments.
const MERGED_DOCS: usize = 150_000;
/// Smallest writer budget tantivy accepts.
pub const MIN_MEMORY_BYTES: usize = 15 << 20;
/// The recent spans of event time a search looks in before the whole range: an hour, a day,
/// a week, thirty days.
const RECENT_SPANS: [i64; 4] = [
    3_600_000_000,
    86_400_000_000,
    7 * 86_400_000_000,
    30 * 86_400_000_000,
];
/// Most hits one search returns.
pub const MAX_LIMIT: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("search index directory {0}: {1}")]
    Directory(PathBuf, String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{message}")]
    Query { message: String, position: usize },
}

/// What the index commit records: the next store commit to read.
#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    layout: u32,
    next_commit: u64,
}

/// The fields of a document. Query names are in [`FIELDS`].
#[derive(Debug, Clone, Copy)]
struct Fields {
    message: Field,
    time: Field,
    seq: Field,
    host: Field,
    ip: Field,
    user: Field,
    event_type: Field,
    outcome: Field,
    parser: Field,
    service: Field,
    template: Field,
}

/// The names a query may use for fields, as the query language documents them.
pub const FIELDS: [&str; 10] = [
    "message", "time", "host", "ip", "user", "type", "outcome", "parser", "service", "template",
];

/// The tokenizer of exact values that ignore case (hosts, types, addresses): the whole value,
/// lower-cased, when indexed and when queried.
const EXACT_ANY_CASE: &str = "exact_any_case";

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let any_case = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(EXACT_ANY_CASE)
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false),
    );
    let fields = Fields {
        message: builder.add_text_field("message", TEXT),
        time: builder.add_i64_field("time", FAST),
        seq: builder.add_u64_field("seq", FAST),
        host: builder.add_text_field("host", any_case.clone()),
        ip: builder.add_text_field("ip", any_case.clone()),
        // Account names are case-sensitive on the systems that log them.
        user: builder.add_text_field("user", STRING),
        event_type: builder.add_text_field("type", any_case.clone()),
        outcome: builder.add_text_field("outcome", any_case.clone()),
        parser: builder.add_text_field("parser", any_case.clone()),
        service: builder.add_text_field("service", any_case),
        template: builder.add_u64_field("template", INDEXED),
    };
    (builder.build(), fields)
}

fn register_tokenizers(index: &Index) {
    index.tokenizers().register(
        EXACT_ANY_CASE,
        TextAnalyzer::builder(RawTokenizer::default())
            .filter(LowerCaser)
            .build(),
    );
}

/// One hit: the event's key in the store.
pub type Hit = EventCursor;

/// The search index of a data directory.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    dir: PathBuf,
    /// True while the index is being rebuilt from the store. (How far it is searchable is the
    /// store's [`Store::indexed_below`].)
    rebuilding: AtomicBool,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The index directory of a data directory.
#[must_use]
pub fn index_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("index")
}

impl SearchIndex {
    /// Opens the index in `dir`, creating an empty one (which the indexer then fills from the
    /// store) when there is none or it cannot be used as it is.
    pub fn open(dir: &Path) -> Result<(Self, Option<u64>), SearchError> {
        let (schema, fields) = schema();
        std::fs::create_dir_all(dir)
            .map_err(|e| SearchError::Directory(dir.to_path_buf(), e.to_string()))?;
        let directory = || {
            tantivy::directory::MmapDirectory::open(dir)
                .map_err(|e| SearchError::Directory(dir.to_path_buf(), e.to_string()))
        };
        let existing = Index::open(directory()?)
            .ok()
            .filter(|index| index.schema() == schema);
        let (index, checkpoint) = if let Some(index) = existing {
            let checkpoint = index
                .load_metas()?
                .payload
                .and_then(|p| serde_json::from_str::<Checkpoint>(&p).ok())
                .filter(|c| c.layout == LAYOUT)
                .map(|c| c.next_commit);
            (index, checkpoint)
        } else {
            clear_dir(dir)?;
            let index = Index::create(directory()?, schema, tantivy::IndexSettings::default())?;
            (index, None)
        };
        register_tokenizers(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let search = Self {
            index,
            reader,
            fields,
            dir: dir.to_path_buf(),
            rebuilding: AtomicBool::new(false),
        };
        Ok((search, checkpoint))
    }

    fn writer(&self, memory_bytes: usize) -> Result<IndexWriter, SearchError> {
        let writer = self
            .index
            .writer_with_num_threads(1, memory_bytes.max(MIN_MEMORY_BYTES))?;
        let mut merges = LogMergePolicy::default();
        merges.set_max_docs_before_merge(MERGED_DOCS);
        writer.set_merge_policy(Box::new(merges));
        Ok(writer)
    }

    fn document(&self, key: EventCursor, event: &Event) -> TantivyDocument {
        let f = &self.fields;
        let mut doc = TantivyDocument::default();
        // A log line without its syslog header: its time, host and program are fields of
        // their own, and indexing them as words would double the work of every line.
        let text = match (&event.raw, &event.message) {
            (Some(raw), _) => crate::ingest::parse::syslog::split(raw).message,
            (None, Some(message)) => message,
            (None, None) => &event.event_type,
        };
        doc.add_text(f.message, text);
        doc.add_i64(f.time, key.timestamp);
        doc.add_u64(f.seq, key.seq);
        doc.add_text(f.event_type, &event.event_type);
        if let Some(host) = &event.host {
            doc.add_text(f.host, host);
        }
        if let Some(ip) = event.source_ip {
            doc.add_text(f.ip, ip.to_string());
        }
        if let Some(user) = &event.username {
            doc.add_text(f.user, user);
        }
        if let Some(success) = event.success {
            doc.add_text(f.outcome, if success { "success" } else { "failure" });
        }
        if let Some(parser) = parser_of(event) {
            doc.add_text(f.parser, parser);
        }
        if let Some(service) = &event.service {
            doc.add_text(f.service, service);
        }
        if let Some(template) = event.template_id {
            doc.add_u64(f.template, u64::from(template));
        }
        doc
    }

    /// Whether the index is being rebuilt from the store.
    #[must_use]
    pub fn is_rebuilding(&self) -> bool {
        self.rebuilding.load(Ordering::Relaxed)
    }

    /// Commits the index with its checkpoint, and tells the store how far it is indexed.
    fn commit(
        &self,
        writer: &mut IndexWriter,
        store: &Store,
        next_commit: u64,
    ) -> Result<(), SearchError> {
        let payload = serde_json::to_string(&Checkpoint {
            layout: LAYOUT,
            next_commit,
        })
        .unwrap_or_default();
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        self.reader.reload()?;
        store.set_indexed_below(next_commit);
        Ok(())
    }

    /// Empties the index and adds every stored event, calling `progress(done, total)` now and
    /// then; returns the next store commit to follow from.
    pub fn rebuild(
        &self,
        store: &Store,
        memory_bytes: usize,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<u64, SearchError> {
        self.rebuilding.store(true, Ordering::Relaxed);
        let mut writer = self.writer(memory_bytes)?;
        writer.delete_all_documents()?;
        let total = std::cell::Cell::new(0);
        let mut done = 0u64;
        let next = store.walk_events::<SearchError>(
            |count| total.set(count),
            |key, event| {
                writer.add_document(self.document(key, &event))?;
                done += 1;
                if done.is_multiple_of(10_000) {
                    progress(done, total.get());
                }
                Ok(())
            },
        )?;
        progress(done, total.get());
        self.commit(&mut writer, store, next)?;
        writer.wait_merging_threads()?;
        self.rebuilding.store(false, Ordering::Relaxed);
        Ok(next)
    }

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

    /// How the events matching `find` between `from` and `to` (µs, inclusive) spread over
    /// buckets of `bucket_us` and over the hours of the day (UTC).
    pub fn histogram(
        &self,
        find: &Find<'_>,
        from: Option<i64>,
        to: Option<i64>,
        bucket_us: i64,
    ) -> Result<Histogram, SearchError> {
        let parsed = self.query_of(find)?;
        let bound = |v: Option<i64>| {
            v.map_or(std::ops::Bound::Unbounded, |v| {
                std::ops::Bound::Included(Term::from_field_i64(self.fields.time, v))
            })
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, parsed)];
        // A range query needs a bound (tantivy refuses one without).
        if from.is_some() || to.is_some() {
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(bound(from), bound(to))),
            ));
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        Ok(searcher.search(
            &query,
            &HistogramCollector {
                bucket_us: bucket_us.max(1),
            },
        )?)
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

    /// Documents in the index.
    #[must_use]
    pub fn document_count(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    fn query_of(&self, find: &Find<'_>) -> Result<Box<dyn Query>, SearchError> {
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

/// Events per bucket of time and per hour of the day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    pub total: u64,
    /// Per hour of the day (UTC).
    pub hours: [u64; 24],
    /// Per bucket, by its start (µs).
    pub buckets: std::collections::BTreeMap<i64, u64>,
}

impl Histogram {
    fn add_run(&mut self, (start, count): (i64, u64)) {
        if count > 0 {
            *self.buckets.entry(start).or_default() += count;
        }
    }

    fn merge(&mut self, other: Self) {
        self.total += other.total;
        for (mine, theirs) in self.hours.iter_mut().zip(other.hours) {
            *mine += theirs;
        }
        for (start, count) in other.buckets {
            *self.buckets.entry(start).or_default() += count;
        }
    }
}

/// Collects a [`Histogram`] from the time column.
struct HistogramCollector {
    bucket_us: i64,
}

struct HistogramSegment {
    times: tantivy::columnar::Column<i64>,
    bucket_us: i64,
    found: Histogram,
    /// The bucket being counted and its count so far: documents arrive in about time order,
    /// so most of them add to the same bucket as the one before (no map lookup each).
    run: (i64, u64),
}

impl tantivy::collector::Collector for HistogramCollector {
    type Fruit = Histogram;
    type Child = HistogramSegment;

    fn for_segment(
        &self,
        _segment: tantivy::SegmentOrdinal,
        reader: &tantivy::SegmentReader,
    ) -> tantivy::Result<HistogramSegment> {
        Ok(HistogramSegment {
            times: reader.fast_fields().i64("time")?,
            bucket_us: self.bucket_us,
            found: Histogram::default(),
            run: (0, 0),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Histogram>) -> tantivy::Result<Histogram> {
        let mut all = Histogram::default();
        for fruit in fruits {
            all.merge(fruit);
        }
        Ok(all)
    }
}

impl tantivy::collector::SegmentCollector for HistogramSegment {
    type Fruit = Histogram;

    fn collect(&mut self, doc: tantivy::DocId, _score: tantivy::Score) {
        if let Some(time) = self.times.first(doc) {
            self.found.total += 1;
            self.found.hours[time.div_euclid(3_600_000_000).rem_euclid(24) as usize] += 1;
            let bucket = time.div_euclid(self.bucket_us) * self.bucket_us;
            if bucket == self.run.0 {
                self.run.1 += 1;
            } else {
                self.found
                    .add_run(std::mem::replace(&mut self.run, (bucket, 1)));
            }
        }
    }

    fn harvest(mut self) -> Histogram {
        self.found.add_run(self.run);
        self.found
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

/// The parser that read a log line, from the event's details (read for that key only).
fn parser_of(event: &Event) -> Option<String> {
    #[derive(Deserialize)]
    struct Details {
        parser: Option<String>,
    }
    let details = event.details.as_deref()?;
    serde_json::from_str::<Details>(details).ok()?.parser
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

fn clear_dir(dir: &Path) -> Result<(), SearchError> {
    let failed = |e: std::io::Error| SearchError::Directory(dir.to_path_buf(), e.to_string());
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(failed)?;
    }
    std::fs::create_dir_all(dir).map_err(failed)
}

/// Finds what the query parser would only call a syntax error, with its position (a character
/// offset): an unterminated phrase, an unbalanced parenthesis or range bracket, a field name
/// the index does not have, or an operator with nothing after it.
pub fn check_syntax(text: &str) -> Result<(), SearchError> {
    let error = |message: String, position: usize| Err(SearchError::Query { message, position });
    let chars: Vec<char> = text.chars().collect();
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

/// The indexer thread's handle: wakes it, and stops it (committing what it holds).
#[derive(Debug, Clone)]
pub struct Indexer {
    stop: Arc<(Mutex<bool>, Condvar)>,
}

impl Indexer {
    /// Starts following `store` into `search`: first a rebuild when the index has no usable
    /// checkpoint, then every new commit.
    pub fn start(
        search: Arc<SearchIndex>,
        store: Arc<Store>,
        checkpoint: Option<u64>,
        memory_bytes: usize,
    ) -> std::io::Result<(Self, JoinHandle<()>)> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let indexer = Self {
            stop: Arc::clone(&stop),
        };
        if checkpoint.is_none() {
            search.rebuilding.store(true, Ordering::Relaxed);
        }
        let thread = std::thread::Builder::new()
            .name("indexer".into())
            .spawn(move || {
                if let Err(e) = follow(&search, &store, checkpoint, memory_bytes, &stop) {
                    tracing::error!(error = %e, "the search indexer stopped");
                }
            })?;
        Ok((indexer, thread))
    }

    /// Asks the thread to commit what it holds and end.
    pub fn stop(&self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
    }
}

fn follow(
    search: &SearchIndex,
    store: &Store,
    checkpoint: Option<u64>,
    memory_bytes: usize,
    stop: &(Mutex<bool>, Condvar),
) -> Result<(), SearchError> {
    let mut next = if let Some(next) = checkpoint {
        next
    } else {
        tracing::info!("building the search index from the event store");
        let started = Instant::now();
        let next = search.rebuild(store, memory_bytes, |done, total| {
            tracing::info!(done, total, "indexing stored events");
        })?;
        tracing::info!(
            documents = search.document_count(),
            seconds = started.elapsed().as_secs_f64(),
            "search index built"
        );
        next
    };
    store.set_indexed_below(next);
    let mut writer = search.writer(memory_bytes)?;
    // The checkpoint of the last index commit, and since when documents have waited for one.
    let mut committed_next = next;
    let mut waiting_since = Instant::now();
    loop {
        let stopping = *stop.0.lock().unwrap_or_else(PoisonError::into_inner);
        let committed = store.committed_since(next, ROUND_EVENTS)?;
        let read = committed.next_commit != next;
        if read && next == committed_next {
            waiting_since = Instant::now();
        }
        for (key, event) in &committed.events {
            writer.add_document(search.document(*key, event))?;
        }
        next = committed.next_commit;
        if next != committed_next && (stopping || waiting_since.elapsed() >= COMMIT_EVERY) {
            search.commit(&mut writer, store, next)?;
            committed_next = next;
        }
        if stopping && !read {
            return Ok(());
        }
        if !read {
            let guard = stop.0.lock().unwrap_or_else(PoisonError::into_inner);
            if !*guard {
                let _ = stop.1.wait_timeout(guard, POLL);
            }
        }
    }
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
    }

    #[test]
    fn histograms_count_every_match_per_bucket_and_hour() {
        let (dir, store) = Store::temporary();
        let hour = 3_600_000_000;
        let events: Vec<Event> = (0..400i64)
            .map(|i| Event {
                username: Some(if i % 3 == 0 { "bob" } else { "alice" }.to_string()),
                success: Some(i % 4 == 0),
                // Out of time order across commits, and spread over six days.
                ..Event::sample(&format!("e{i}"), ((i * 7919) % 400) * hour / 3 + i)
            })
            .collect();
        for chunk in events.chunks(90) {
            store
                .append_batches(&[crate::storage::EncodedEvent::all(chunk)])
                .unwrap();
        }
        let (search, _) = SearchIndex::open(&dir.path().join("index")).unwrap();
        search.rebuild(&store, MIN_MEMORY_BYTES, |_, _| {}).unwrap();
        let day = 24 * hour;
        let found = search
            .histogram(
                &Find::Exact {
                    field: Exact::Account,
                    value: "alice",
                    outcome: Some("failure"),
                },
                None,
                None,
                day,
            )
            .unwrap();
        let mut expected = Histogram::default();
        for e in events
            .iter()
            .filter(|e| e.username.as_deref() == Some("alice") && e.success == Some(false))
        {
            expected.total += 1;
            expected.hours[(e.timestamp / hour % 24) as usize] += 1;
            *expected.buckets.entry(e.timestamp / day * day).or_default() += 1;
        }
        assert!(expected.buckets.len() > 3);
        assert_eq!(found.total, expected.total);
        assert_eq!(found.hours, expected.hours);
        assert_eq!(found.buckets, expected.buckets);
    }
}
