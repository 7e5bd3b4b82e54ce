//! Reading inputs into events: JSON bodies ([`json`]), raw log lines ([`logs`], with the
//! parsers and the template miner in [`parse`]) and batches of a file ([`batch`]); and the
//! group-commit writer that stores them durably ([`pipeline`]). The intake strings these
//! together; nothing here knows about HTTP or the server.

pub mod batch;
pub mod json;
pub mod logs;
pub mod parse;
pub mod pipeline;
