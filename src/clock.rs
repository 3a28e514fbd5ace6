//! Server time as it is written into records and receipts.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Now, in UTC, as RFC 3339 with sub-second precision (e.g. `2026-03-01T00:31:12.345678Z`).
pub fn now_rfc3339() -> String {
    format_rfc3339(OffsetDateTime::now_utc())
}

/// An instant as RFC 3339; every instant we make is in range, so formatting cannot fail in practice.
pub fn format_rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// Now as Unix seconds, for token lifetimes.
pub fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}
