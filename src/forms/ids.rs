//! The syntax of form ids and version labels: they appear in URLs, file names and store keys.

/// `labour-survey`: lower-case ASCII letters, digits, `-` and `_`, starting with a letter or digit, 1–64 long.
pub fn is_valid_form_id(id: &str) -> bool {
    is_label(id, 64, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
    })
}

/// `1`, `2026-03`, `1.2.0`: ASCII letters, digits, `.`, `-` and `_`, starting with a letter or digit, 1–32 long.
pub fn is_valid_version(version: &str) -> bool {
    is_label(version, 32, |c| {
        c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_'
    })
}

fn is_label(s: &str, max_len: usize, allowed: impl Fn(char) -> bool) -> bool {
    let starts_well = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    starts_well && s.len() <= max_len && s.chars().all(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_ids_are_url_and_key_safe() {
        assert!(is_valid_form_id("labour-survey"));
        assert!(is_valid_form_id("a1_b"));
        for bad in [
            "",
            "-x",
            "Labour",
            "labour survey",
            "劳动力",
            "a/b",
            &"x".repeat(65),
        ] {
            assert!(!is_valid_form_id(bad), "{bad:?} should be refused");
        }
    }

    #[test]
    fn versions_allow_dotted_and_dated_labels() {
        for good in ["1", "2026-03", "1.2.0", "v2_beta"] {
            assert!(is_valid_version(good), "{good:?} should be allowed");
        }
        for bad in ["", ".1", "1 2", "1/2", &"9".repeat(33)] {
            assert!(!is_valid_version(bad), "{bad:?} should be refused");
        }
    }
}
