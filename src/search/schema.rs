//! The index's layout: its fields (the line without its syslog header as words; host,
//! address, account, type, outcome, parser, program and template as exact values; event time
//! and sequence as fast fields; nothing stored), their tokenizers, and an event as a document.

use serde::Deserialize;
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TEXT, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{LowerCaser, RawTokenizer, TextAnalyzer};
use tantivy::{Index, TantivyDocument};

use super::SearchIndex;
use crate::event::Event;
use crate::storage::EventCursor;

/// The fields of a document. Query names are in [`FIELDS`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Fields {
    pub(super) message: Field,
    pub(super) time: Field,
    pub(super) seq: Field,
    pub(super) host: Field,
    pub(super) ip: Field,
    pub(super) user: Field,
    pub(super) event_type: Field,
    pub(super) outcome: Field,
    pub(super) parser: Field,
    pub(super) service: Field,
    pub(super) template: Field,
}

/// The names a query may use for fields, as the query language documents them.
pub const FIELDS: [&str; 10] = [
    "message", "time", "host", "ip", "user", "type", "outcome", "parser", "service", "template",
];

/// The tokenizer of exact values that ignore case (hosts, types, addresses): the whole value,
/// lower-cased, when indexed and when queried.
const EXACT_ANY_CASE: &str = "exact_any_case";

pub(super) fn schema() -> (Schema, Fields) {
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

pub(super) fn register_tokenizers(index: &Index) {
    index.tokenizers().register(
        EXACT_ANY_CASE,
        TextAnalyzer::builder(RawTokenizer::default())
            .filter(LowerCaser)
            .build(),
    );
}

impl SearchIndex {
    pub(super) fn document(&self, key: EventCursor, event: &Event) -> TantivyDocument {
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
