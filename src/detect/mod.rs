//! Detection: rules evaluated on every stored event, on event time. No IO: the caller feeds
//! events and stores what comes out.
//!
//! [`window`] holds the event-time windows the rules count in.

pub mod engine;
pub mod finding;
pub mod profile;
pub mod rules;
pub mod stuffing;
pub mod window;
