//! Raw log lines: syslog framing ([`syslog`]) and the meaning of authentication messages
//! ([`auth`]). Pure functions, no IO; a line that nothing understands is still framed, so it
//! can be kept and mined for templates.

pub mod auth;
pub mod connections;
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

/// Resolves the year-less times of a file or stream read in order: starts in `year` and moves
/// to the next year when the month goes back by more than half a year (December → January).
#[derive(Debug, Clone, Copy)]
pub struct LineClock {
    year: i32,
    offset: UtcOffset,
    last_month: Option<u8>,
    /// Times later than this (µs) are read as last year's: a log does not come from the future.
    not_after: Option<i64>,
}

impl LineClock {
    #[must_use]
    pub fn new(year: i32, offset: UtcOffset) -> Self {
        Self {
            year,
            offset,
            last_month: None,
            not_after: None,
        }
    }

    /// In `year` if given; otherwise this year, except that a date that would lie more than a
    /// day ahead (beyond clock skew) is read as last year's.
    #[must_use]
    pub fn for_year(year: Option<i32>, offset: UtcOffset) -> Self {
        match year {
            Some(year) => Self::new(year, offset),
            None => Self::new(time::OffsetDateTime::now_utc().year(), offset)
                .not_after(crate::now_micros() + 86_400_000_000),
        }
    }

    /// The year the next year-less time is read in.
    #[must_use]
    pub fn year(&self) -> i32 {
        self.year
    }

    /// Reads a year-less time that would fall after `limit` (µs) as one of the year before.
    #[must_use]
    pub fn not_after(mut self, limit: i64) -> Self {
        self.not_after = Some(limit);
        self
    }

    /// µs since the Unix epoch for `time`, `None` for a date that does not exist.
    pub fn resolve(&mut self, time: LineTime) -> Option<i64> {
        if let LineTime::WithoutYear { month, .. } = time {
            if self.last_month.is_some_and(|last| month + 6 < last) {
                self.year += 1;
            }
            self.last_month = Some(month);
            let resolved = time.resolve(self.year, self.offset);
            if resolved
                .zip(self.not_after)
                .is_some_and(|(at, limit)| at > limit)
            {
                self.year -= 1;
                return time.resolve(self.year, self.offset);
            }
            return resolved;
        }
        time.resolve(self.year, self.offset)
    }
}

/// Parses a fixed offset from UTC: `UTC`, `Z`, `+02:00`, `-0530`.
#[must_use]
pub fn parse_utc_offset(text: &str) -> Option<UtcOffset> {
    if text.eq_ignore_ascii_case("utc") || text == "Z" {
        return Some(UtcOffset::UTC);
    }
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1i8, &text[1..]),
        b'-' => (-1i8, &text[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i8 = digits[..2].parse().ok()?;
    let minutes: i8 = digits[2..].parse().ok()?;
    UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()
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
mod miner_accuracy;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod variants;
