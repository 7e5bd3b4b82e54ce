//! Getting events in: decoding request bodies ([`json`]) and storing them durably in batches
//! ([`pipeline`]). Nothing here knows about HTTP.

pub mod import;
pub mod json;
pub mod listener;
pub mod logs;
pub mod parse;
pub mod pipeline;
