//! Text as phones type it: the one normalisation that validation and cleaning share.

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

/// NFKC (full-width digits and letters become ASCII, U+3000 becomes a space), then trimmed.
pub fn normalize(value: &str) -> String {
    // Most values are already clean: the quick check avoids rebuilding them character by character.
    if is_nfkc_quick(value.chars()) == IsNormalized::Yes {
        return value.trim().to_owned();
    }
    let normalized: String = value.nfkc().collect();
    normalized.trim().to_owned()
}
