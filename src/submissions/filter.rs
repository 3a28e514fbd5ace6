//! Which submissions a list shows, beyond what its reader may see: review states, a place, a
//! field worker, a time window of arrival, and a household or ID number to find.

use serde_json::Value;
use time::OffsetDateTime;

use super::ReviewStatus;
use crate::error::AppError;
use crate::store::SubmissionRecord;
use crate::text::normalize;

/// The conditions of one list; the default lets everything through.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub statuses: Option<Vec<ReviewStatus>>,
    /// The form's place field (`x-scope`, e.g. the township) has exactly this value.
    pub place: Option<String>,
    pub submitted_by: Option<String>,
    /// Received at or after.
    pub since: Option<OffsetDateTime>,
    /// Received before.
    pub until: Option<OffsetDateTime>,
    pub search: Option<Search>,
}

impl ListFilter {
    /// Decided from the arrival index alone, before a record is read.
    pub fn admits_entry(&self, submitter: &str, place: Option<&str>) -> bool {
        self.place.as_deref().is_none_or(|p| place == Some(p))
            && self.submitted_by.as_deref().is_none_or(|u| submitter == u)
    }

    pub fn admits(&self, record: &SubmissionRecord) -> bool {
        let meta = &record.meta;
        let received = meta.received_at.instant();
        meta.deleted.is_none()
            && self
                .statuses
                .as_ref()
                .is_none_or(|s| s.contains(&meta.review_status))
            && self.since.is_none_or(|since| received >= since)
            && self.until.is_none_or(|until| received < until)
            && self.search.as_ref().is_none_or(|s| s.finds(record))
    }
}

/// `received,edited`: review states by name, comma-separated.
pub fn statuses(names: &str) -> Result<Vec<ReviewStatus>, AppError> {
    names
        .split(',')
        .map(|name| {
            ReviewStatus::parse(name.trim()).ok_or_else(|| {
                AppError::QueryInvalid(format!("status: each one of {}", ReviewStatus::names()))
            })
        })
        .collect()
}

/// A household or person to find by the keys that identify them (`x-unique`: the household
/// number at the root, the ID number of each labourer), compared as cleaning compares them.
#[derive(Debug)]
pub struct Search {
    wanted: String,
    /// JSON Pointers of identifying fields: at the root, or inside each item of an array.
    root: Vec<String>,
    in_items: Vec<(String, Vec<String>)>,
}

/// NFKC, trimmed, upper case (an ID number's `x` is `X`): how cleaning writes identifiers.
fn cleaned(text: &str) -> String {
    normalize(text).to_uppercase()
}

impl Search {
    /// A search for `text` through the identifying fields `schema` declares.
    pub fn new(schema: &Value, text: &str) -> Self {
        let unique = |schema: &Value| -> Vec<String> {
            schema
                .get("x-unique")
                .and_then(Value::as_array)
                .map(|keys| {
                    keys.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let in_items = schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(name, property)| {
                let keys = unique(property.get("items")?);
                (!keys.is_empty()).then(|| {
                    (
                        format!("/{}", name.replace('~', "~0").replace('/', "~1")),
                        keys,
                    )
                })
            })
            .collect();
        Search {
            wanted: cleaned(text),
            root: unique(schema),
            in_items,
        }
    }

    fn finds(&self, record: &SubmissionRecord) -> bool {
        let Some(data) = answers(record) else {
            return false;
        };
        let matches = |value: Option<&Value>| {
            value
                .and_then(Value::as_str)
                .is_some_and(|v| cleaned(v) == self.wanted)
        };
        self.root.iter().any(|key| matches(data.pointer(key)))
            || self.in_items.iter().any(|(array, keys)| {
                data.pointer(array)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|item| keys.iter().any(|key| matches(item.pointer(key))))
            })
    }
}

/// What the submission says now: the latest correction, or the answers as received.
fn answers(record: &SubmissionRecord) -> Option<Value> {
    match &record.current {
        Some(current) => serde_json::from_slice(current).ok(),
        None => serde_json::from_slice::<Value>(&record.payload)
            .ok()?
            .get_mut("data")
            .map(Value::take),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"x-unique": ["/household_id"], "properties": {
            "household_id": {"type": "string"},
            "members": {"items": {"x-unique": ["/id_number"]}}
        }})
    }

    #[test]
    fn identifiers_are_compared_as_cleaning_writes_them() {
        let search = Search::new(&schema(), " ４５２２２３１９８３０７０８０３９ｘ ");
        assert_eq!(search.wanted, "45222319830708039X");
        assert_eq!(search.root, ["/household_id"]);
        assert_eq!(
            search.in_items,
            [("/members".to_owned(), vec!["/id_number".to_owned()])]
        );
    }
}
