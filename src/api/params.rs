//! Query parameters shared by the API's listings: times, page sizes and cursors, each parsed
//! once with the same error for the same mistake.

use super::dto;
use super::error::ApiError;
use crate::event;
use crate::storage::EventCursor;

/// Default and largest page size.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// A time parameter (RFC 3339) in µs.
pub fn time_param(key: &'static str, value: &str) -> Result<i64, ApiError> {
    event::parse_timestamp(key, value)
        .map_err(|e| ApiError::invalid_parameter(format!("`{key}`: {}", e.reason)))
}

/// A page size from 1 to [`MAX_LIMIT`].
pub fn limit_param(key: &str, value: &str) -> Result<usize, ApiError> {
    value
        .parse()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            ApiError::invalid_parameter(format!("`{key}`: expected a number from 1 to {MAX_LIMIT}"))
        })
}

/// A cursor from a previous page of events.
pub fn cursor_param(key: &str, value: &str) -> Result<EventCursor, ApiError> {
    dto::decode_cursor(value).ok_or_else(|| {
        ApiError::invalid_parameter(format!("`{key}`: not a cursor from a previous page"))
    })
}
