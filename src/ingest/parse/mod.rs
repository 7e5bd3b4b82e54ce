//! Raw log lines: syslog framing ([`syslog`]) and the meaning of authentication messages
//! ([`auth`]). Pure functions, no IO; a line that nothing understands is still framed, so it
//! can be kept and mined for templates.

pub mod auth;
pub mod miner;
pub mod syslog;

use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};

pub use auth::{AuthRecord, Kind, Outcome};
pub use syslog::Framed;

/// The time a line carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineTime {
    /// A complete timestamp, µs since the Unix epoch.
    Absolute(i64),
    /// RFC 3164 time: no year, no zone. [`LineTime::resolve`] supplies both.
    WithoutYear {
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        micros: u32,
    },
}

impl LineTime {
    /// µs since the Unix epoch, reading a year-less time as in `year` at `offset` from UTC.
    /// `None` for a date that does not exist in that year (29 February).
    #[must_use]
    pub fn resolve(self, year: i32, offset: UtcOffset) -> Option<i64> {
        match self {
            Self::Absolute(micros) => Some(micros),
            Self::WithoutYear {
                month,
                day,
                hour,
                minute,
                second,
                micros,
            } => {
                let date =
                    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
                // A leap second is read as the last second of its minute.
                let time = Time::from_hms_micro(hour, minute, second.min(59), micros).ok()?;
                let at = PrimitiveDateTime::new(date, time).assume_offset(offset);
                Some((at.unix_timestamp_nanos() / 1_000) as i64)
            }
        }
    }
}

/// A raw line: its framing and, when a rule knows its message, what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLine<'a> {
    pub framed: Framed<'a>,
    pub record: Option<AuthRecord>,
}

/// Frames `line` and reads its message.
#[must_use]
pub fn parse_line(line: &str) -> ParsedLine<'_> {
    let framed = syslog::split(line);
    let record = auth::parse(framed.program, framed.message);
    ParsedLine { framed, record }
}

#[cfg(test)]
mod tests;
