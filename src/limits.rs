//! How long every stored text may be, and the checks that hold requests to it.
//!
//! Whatever a client sends and the server keeps has a bound here, so no request can grow the
//! database, the audit log or every user's form list by megabytes. The README's table of limits
//! lists these same numbers. Lengths count characters, not bytes; text is trimmed first.

use crate::error::AppError;

/// Usernames: 2 to 32 of a–z, 0–9, `.`, `_`, `-` (`auth::users::normalize_username`).
pub const USERNAME: (usize, usize) = (2, 32);
/// The name shown for a person.
pub const DISPLAY_NAME: usize = 100;
/// Passwords (`auth::password`): at least 8, at most 256.
pub const PASSWORD: (usize, usize) = (8, 256);
/// A comment on a submission, also the one a review may carry.
pub const COMMENT: usize = 2000;
/// A form version's title.
pub const FORM_TITLE: usize = 200;
/// Why a submission was deleted.
pub const REASON: usize = 500;
/// Places in one user's scope, and the length of each.
pub const SCOPE_ENTRIES: usize = 100;
pub const SCOPE_ENTRY: usize = 50;

/// A trimmed text of 1 to `max` characters, or a 422 naming `path`.
fn bounded(text: &str, max: usize, path: &str, what: &str) -> Result<String, AppError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > max {
        return Err(AppError::invalid_field(
            path,
            &format!("{what}: 1 to {max} characters"),
        ));
    }
    Ok(text.to_owned())
}

/// A comment at `path`: `None` when blank (a review without a comment), else 1 to 2,000 characters.
pub fn comment(text: &str, path: &str) -> Result<Option<String>, AppError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    bounded(text, COMMENT, path, "a comment has").map(Some)
}

/// Why a submission is deleted: 1 to 500 characters.
pub fn reason(text: &str) -> Result<String, AppError> {
    bounded(
        text,
        REASON,
        "/reason",
        "say why the submission is deleted in",
    )
}

/// A person's display name: 1 to 100 characters.
pub fn display_name(text: &str) -> Result<String, AppError> {
    bounded(text, DISPLAY_NAME, "/display_name", "display_name")
}

/// A form title: 1 to 200 characters, trimmed (so padding cannot carry it past the limit).
pub fn form_title(title: &str) -> Result<String, AppError> {
    bounded(title, FORM_TITLE, "/title", "title")
}

/// A user's places: at least one, at most 100, each 1 to 50 characters; `None` is everywhere.
pub fn scope(scope: Option<Vec<String>>) -> Result<Option<Vec<String>>, AppError> {
    let Some(scope) = scope else {
        return Ok(None);
    };
    let invalid = || {
        AppError::invalid_field(
            "/scope",
            &format!(
                "scope lists 1 to {SCOPE_ENTRIES} places (e.g. townships) of 1 to {SCOPE_ENTRY} \
                 characters, or is null for everywhere"
            ),
        )
    };
    if scope.is_empty() || scope.len() > SCOPE_ENTRIES {
        return Err(invalid());
    }
    scope
        .iter()
        .map(|place| bounded(place, SCOPE_ENTRY, "/scope", "place").map_err(|_| invalid()))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The first `USERNAME.1` characters of a name that broke the rules: what a failed login's
/// audit entry may hold of it.
pub fn cut_username(name: &str) -> String {
    name.chars().take(USERNAME.1).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_trimmed_and_held_to_their_bounds() {
        assert_eq!(
            comment("  请核对 ", "/text").unwrap().as_deref(),
            Some("请核对")
        );
        assert_eq!(comment("   ", "/text").unwrap(), None);
        assert!(comment(&"字".repeat(COMMENT), "/text").is_ok());
        assert!(comment(&"字".repeat(COMMENT + 1), "/text").is_err());
        assert!(reason(&"x".repeat(REASON + 1)).is_err());
        assert!(reason(" ").is_err());
        assert!(form_title(&"题".repeat(FORM_TITLE + 1)).is_err());
        assert_eq!(form_title(" 调查 ").unwrap(), "调查");
        let padded = format!("{}Evil{}", " ".repeat(500_000), " ".repeat(500_000));
        assert_eq!(form_title(&padded).unwrap(), "Evil");
    }

    #[test]
    fn an_empty_or_oversized_scope_is_refused_rather_than_read_as_nowhere() {
        assert!(scope(Some(vec![])).is_err());
        assert!(scope(Some(vec![" ".into()])).is_err());
        assert!(scope(Some(vec!["镇".repeat(SCOPE_ENTRY + 1)])).is_err());
        assert!(scope(Some(vec!["思林镇".into(); SCOPE_ENTRIES + 1])).is_err());
        assert_eq!(
            scope(Some(vec![" 思林镇".into()])).unwrap(),
            Some(vec!["思林镇".into()])
        );
        assert_eq!(scope(None).unwrap(), None);
    }

    #[test]
    fn a_long_name_is_cut_at_a_character_boundary() {
        assert_eq!(cut_username(&"韦".repeat(900)).chars().count(), USERNAME.1);
        assert_eq!(cut_username("wei"), "wei");
    }
}
