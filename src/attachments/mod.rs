//! Attachments: the photos, signatures, voice notes and documents a submission's answers name.
//!
//! A form marks an attachment question with `contentMediaType` (`media.rs`); the answer is the
//! file's name, and the file itself follows the submission over tus (`uploads.rs`), stored
//! content-addressed on disk, never in the database (`store::Blobs`). This module reads which
//! files a submission's answers name, and the rules for those names.

pub mod media;
pub mod uploads;

use serde::Serialize;
use serde_json::Value;

use crate::error::AppError;
use crate::export::layout::{Kind, Layout, pointer_segments};
use crate::forms::FormRegistry;
use crate::store::{Blobs, Store, SubmissionRecord};
pub use media::{Allowed, MediaType};

/// Longest file name, in characters.
pub const MAX_NAME: usize = 100;

/// One attachment question of a form version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// Where its answers are, as a JSON Pointer with `*` for every item of an array.
    pub source: String,
    pub media_type: MediaType,
}

/// A file a submission's answers name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// The JSON Pointer of the answer in `data`.
    pub path: String,
    pub name: String,
    pub media_type: MediaType,
}

/// A file a submission's answers name, as the API shows it: supervisors see what is missing.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct AttachmentView {
    pub name: String,
    /// The type its question declares (`image/jpeg`, ...).
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub media_type: MediaType,
    /// Bytes, once the file is here.
    pub size: Option<u64>,
    /// Hex SHA-256, once the file is here.
    pub sha256: Option<String>,
    /// Whether the file has arrived (uploaded and on disk).
    pub present: bool,
}

/// The files `record`'s current answers name, each with whether it has arrived.
pub fn listed(
    store: &Store,
    blobs: &Blobs,
    forms: &FormRegistry,
    record: &SubmissionRecord,
) -> Result<Vec<AttachmentView>, AppError> {
    let Ok(version) = forms.resolve(record.meta.form.as_str(), Some(&record.meta.form_version))
    else {
        return Ok(Vec::new());
    };
    let expected = version.attachments(&crate::submissions::current_data(record)?);
    let mut views = Vec::with_capacity(expected.len());
    for file in expected {
        let kept = store
            .attachment(record.id, &file.name)?
            .filter(|kept| blobs.has(&kept.sha256));
        views.push(AttachmentView {
            present: kept.is_some(),
            size: kept.as_ref().map(|k| k.size),
            sha256: kept.map(|k| k.sha256),
            name: file.name,
            media_type: file.media_type,
        });
    }
    Ok(views)
}

/// Every attachment question of a form, in the order of its export's columns.
pub fn fields(layout: &Layout) -> Vec<Field> {
    layout
        .tables
        .iter()
        .flat_map(|table| &table.columns)
        .filter_map(|column| match column.kind {
            Kind::Attachment(media_type) => Some(Field {
                source: column.source.clone(),
                media_type,
            }),
            _ => None,
        })
        .collect()
}

/// Every file `data` names, in the order of `fields` (answers that are not text are left to
/// the schema's own checks).
pub fn expected(fields: &[Field], data: &Value) -> Vec<Expected> {
    let mut found = Vec::new();
    for field in fields {
        let mut at = Vec::new();
        values_at(
            data,
            &pointer_segments(&field.source),
            String::new(),
            &mut at,
        );
        for (path, value) in at {
            if let Some(name) = value.as_str() {
                found.push(Expected {
                    path,
                    name: name.to_owned(),
                    media_type: field.media_type,
                });
            }
        }
    }
    found
}

/// The values at a pointer whose `*` segments stand for every item of an array.
fn values_at<'v>(
    value: &'v Value,
    segments: &[String],
    path: String,
    out: &mut Vec<(String, &'v Value)>,
) {
    let Some((first, rest)) = segments.split_first() else {
        out.push((path, value));
        return;
    };
    if first == "*" {
        for (i, item) in value.as_array().into_iter().flatten().enumerate() {
            values_at(item, rest, format!("{path}/{i}"), out);
        }
    } else if let Some(member) = value.get(first) {
        let escaped = first.replace('~', "~0").replace('/', "~1");
        values_at(member, rest, format!("{path}/{escaped}"), out);
    }
}

/// Whether `name` may name a file: 1 to 100 characters, no `/`, `\` or NUL (it must not be
/// read as a path anywhere, in a zip or on a phone), no leading `.` (no hidden files, no `..`),
/// and no control or invisible formatting characters (a right-to-left override can make
/// `gpj.exe` read as `exe.jpg`).
pub fn is_valid_name(name: &str) -> bool {
    let length = name.chars().count();
    (1..=MAX_NAME).contains(&length)
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && !name
            .chars()
            .any(|c| c.is_control() || is_invisible_format(c))
}

/// Bidirectional controls, zero-width characters and the byte-order mark.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// Names Windows gives to devices, not files.
const RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// The name a file is saved under on an analyst's computer (in an export, or from the
/// browser): what Windows cannot hold (`:` and `*?"<>|`, trailing dots and spaces, device names)
/// becomes `_`, and it always ends in its type's extension, so `run.bat` that is a JPEG is saved
/// as `run.bat.jpg` and opens as a picture, never runs.
pub fn saved_name(name: &str, media_type: MediaType) -> String {
    let mut safe: String = name
        .chars()
        .map(|c| {
            if matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let kept = safe.trim_end_matches(['.', ' ']).len();
    safe.truncate(kept);
    let stem = safe.split('.').next().unwrap_or_default();
    if RESERVED
        .iter()
        .any(|r| r.eq_ignore_ascii_case(stem.trim_end()))
    {
        safe.insert(0, '_');
    }
    let extension = safe.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    if !extension.is_some_and(|e| media_type.extensions().contains(&e.as_str())) {
        safe.push('.');
        safe.push_str(media_type.extensions()[0]);
    }
    safe
}

/// Each answer that breaks the naming rules, with the catalogue key that says why: a bad name,
/// or a name another answer of the same submission already gave.
pub fn name_problems(expected: &[Expected]) -> Vec<(String, &'static str)> {
    let mut seen = std::collections::HashSet::new();
    let mut problems = Vec::new();
    for file in expected {
        if !is_valid_name(&file.name) {
            problems.push((file.path.clone(), "attachment.name"));
        } else if !seen.insert(file.name.as_str()) {
            problems.push((file.path.clone(), "attachment.duplicate"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_saved_file_always_opens_as_what_it_is_and_windows_can_hold_its_name() {
        let jpeg = MediaType::Jpeg;
        assert_eq!(saved_name("house.jpg", jpeg), "house.jpg");
        assert_eq!(saved_name("House.JPEG", jpeg), "House.JPEG");
        assert_eq!(saved_name("户主签名", MediaType::Png), "户主签名.png");
        assert_eq!(saved_name("run.bat", jpeg), "run.bat.jpg");
        assert_eq!(saved_name("view.html", MediaType::Png), "view.html.png");
        assert_eq!(saved_name("C:x.jpg", jpeg), "C_x.jpg");
        assert_eq!(saved_name("CON.jpg", jpeg), "_CON.jpg");
        assert_eq!(saved_name("lpt1", jpeg), "_lpt1.jpg");
        assert_eq!(saved_name("trail. ", jpeg), "trail.jpg");
        assert_eq!(saved_name("a?b<c>.pdf", MediaType::Pdf), "a_b_c_.pdf");
    }

    fn layout() -> Layout {
        Layout::of(&json!({"type": "object", "properties": {
            "house_photo": {"type": "string", "contentMediaType": "image/jpeg"},
            "note": {"type": "string", "contentMediaType": "application/json"},
            "members": {"type": "array", "items": {"type": "object", "properties": {
                "signature": {"type": "string", "contentMediaType": "image/png"}
            }}}
        }}))
    }

    #[test]
    fn attachment_questions_are_found_at_any_depth_and_only_for_file_types() {
        let fields = fields(&layout());
        assert_eq!(
            fields,
            [
                Field {
                    source: "/house_photo".into(),
                    media_type: MediaType::Jpeg
                },
                Field {
                    source: "/members/*/signature".into(),
                    media_type: MediaType::Png
                },
            ]
        );
        let data = json!({"house_photo": "house.jpg", "note": "{}", "members": [
            {"signature": "s1.png"}, {}, {"signature": "s3.png"}
        ]});
        let names: Vec<(String, String)> = expected(&fields, &data)
            .into_iter()
            .map(|e| (e.path, e.name))
            .collect();
        assert_eq!(
            names,
            [
                ("/house_photo".into(), "house.jpg".into()),
                ("/members/0/signature".into(), "s1.png".into()),
                ("/members/2/signature".into(), "s3.png".into()),
            ]
        );
    }

    #[test]
    fn names_cannot_be_paths_hidden_files_or_repeats() {
        for good in ["house.jpg", "户主签名.png", &"名".repeat(MAX_NAME), "a..b"] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in [
            "",
            ".hidden",
            "..",
            "a/b.jpg",
            "a\\b.jpg",
            "nul\0.jpg",
            &"名".repeat(MAX_NAME + 1),
            "two\nlines.jpg",
            "tab\t.jpg",
            "\u{202E}gpj.exe",
            "zero\u{200B}width.jpg",
        ] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
        let file = |path: &str, name: &str| Expected {
            path: path.into(),
            name: name.into(),
            media_type: MediaType::Jpeg,
        };
        let problems = name_problems(&[
            file("/a", "x.jpg"),
            file("/b", "x.jpg"),
            file("/c", "../x.jpg"),
        ]);
        assert_eq!(
            problems,
            [
                ("/b".to_owned(), "attachment.duplicate"),
                ("/c".to_owned(), "attachment.name")
            ]
        );
    }
}
