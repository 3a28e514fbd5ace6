//! Cleaning rules for single values. Pure functions: every change they make is reported by the
//! caller in the cleaning log, and storage is never touched.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A resident ID number in canonical form: the check character `x` upper-case.
pub fn id_number(value: &str) -> String {
    value.to_uppercase()
}

/// A date as ISO 8601 `YYYY-MM-DD`, accepting `2026-3-1` and `2026/03/01`; unchanged if not a date.
pub fn date(value: &str) -> String {
    let parts: Vec<&str> = value.split(['-', '/', '.']).collect();
    let [year, month, day] = parts[..] else {
        return value.to_owned();
    };
    let number = |s: &str, max: u32| s.parse::<u32>().ok().filter(|n| (1..=max).contains(n));
    match (
        year.len() == 4,
        year.parse::<u32>(),
        number(month, 12),
        number(day, 31),
    ) {
        (true, Ok(y), Some(m), Some(d)) => format!("{y:04}-{m:02}-{d:02}"),
        _ => value.to_owned(),
    }
}

/// Makes a text cell inert in spreadsheets: a leading `=`, `+`, `-`, `@`, tab, CR, LF or NUL
/// would start a formula, also after leading spaces (some importers trim them; raw exports keep
/// them), so such cells get a leading `'` (OWASP CSV injection). Only for text cells.
pub fn neutralize_formula(cell: &str) -> std::borrow::Cow<'_, str> {
    let starts_formula = matches!(cell.chars().next(), Some('\t' | '\r' | '\n' | '\0'))
        || matches!(
            cell.trim_start().chars().next(),
            Some('=' | '+' | '-' | '@')
        );
    if starts_formula {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// Why a phone's completion time cannot be trusted, if it cannot.
pub fn clock_problem(
    completed_at: OffsetDateTime,
    received_at: OffsetDateTime,
    published_at: OffsetDateTime,
) -> Option<&'static str> {
    if completed_at > received_at + time::Duration::days(1) {
        Some("completed more than a day after the server received it (phone clock ahead)")
    } else if completed_at < published_at {
        Some("completed before this form version was published (phone clock behind)")
    } else {
        None
    }
}

/// Parses an RFC 3339 time.
pub fn instant(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::normalize as text;

    #[test]
    fn full_width_characters_and_ideographic_spaces_are_normalised() {
        assert_eq!(text("\u{3000}４５１０２２０００１ "), "4510220001");
        assert_eq!(text("ＡＢｃ"), "ABc");
        assert_eq!(text("思林镇"), "思林镇");
        assert_eq!(text("45222319830708001ｘ"), "45222319830708001x");
    }

    #[test]
    fn id_numbers_get_an_upper_case_check_character() {
        assert_eq!(
            id_number(&text("45222319830708001ｘ")),
            "45222319830708001X"
        );
    }

    #[test]
    fn dates_become_iso_8601() {
        assert_eq!(date("2026-3-1"), "2026-03-01");
        assert_eq!(date("2026/03/01"), "2026-03-01");
        assert_eq!(date("2026-03-01"), "2026-03-01");
        assert_eq!(date("March 1"), "March 1");
        assert_eq!(date("2026-13-01"), "2026-13-01");
    }

    #[test]
    fn cells_that_would_run_as_formulas_are_made_inert() {
        for dangerous in [
            "=1+1",
            "+86",
            "-2",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "\nx",
            "\0x",
            " =1+1",
            "\u{3000}=HYPERLINK(\"x\")",
        ] {
            assert!(
                neutralize_formula(dangerous).starts_with('\''),
                "{dangerous:?}"
            );
        }
        for harmless in ["思林镇", "1+1", "", "a=b"] {
            assert_eq!(neutralize_formula(harmless), harmless);
        }
    }

    #[test]
    fn implausible_phone_clocks_are_recognised() {
        let at = |s: &str| instant(s).unwrap();
        let published = at("2026-01-01T00:00:00Z");
        let received = at("2026-03-01T10:00:00Z");
        assert_eq!(
            clock_problem(at("2026-03-01T09:00:00+00:00"), received, published),
            None
        );
        assert_eq!(
            clock_problem(at("2026-03-02T09:00:00Z"), received, published),
            None
        );
        assert!(clock_problem(at("2026-03-03T10:00:00Z"), received, published).is_some());
        assert!(clock_problem(at("1970-01-01T00:00:00Z"), received, published).is_some());
    }
}
