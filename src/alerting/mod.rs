//! Alerts around the pure detector: [`recorder`] runs it on committed events (threads, store
//! reads of account histories) and records what it finds; [`triage`] is what people do about
//! alerts (status changes, alerts raised by hand, the allow-list and the blocklist), one
//! implementation for the API and the pages.

pub mod recorder;
pub mod triage;
