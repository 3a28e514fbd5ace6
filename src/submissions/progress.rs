//! How far the survey has got: a form's submissions counted by day, field worker, review state or
//! place, in one pass over what the reader may see (deleted ones left out).

use std::collections::HashMap;

use jiff::tz::TimeZone;
use serde::Serialize;
use serde_json::Value;

use super::{ReviewStatus, visible_to};
use crate::auth::{Permission, Principal};
use crate::error::AppError;
use crate::store::{Store, SubmissionRecord};

/// Records read from the store at a time.
const PAGE: usize = 1000;

/// What the counts are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// The day received, in the county's time zone (`2026-03-01`).
    Day,
    SubmittedBy,
    ReviewStatus,
    /// The form's place field (`x-scope`).
    Township,
}

impl GroupBy {
    pub const NAMES: &str = "day, submitted_by, review_status, township";

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "day" => Some(Self::Day),
            "submitted_by" => Some(Self::SubmittedBy),
            "review_status" => Some(Self::ReviewStatus),
            "township" => Some(Self::Township),
            _ => None,
        }
    }
}

/// One group: its key and how many submissions it has; field workers also by their names.
#[derive(Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Group {
    pub key: String,
    pub count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Progress {
    pub groups: Vec<Group>,
    pub total: u64,
}

/// The counts of `form` by `by`, over the submissions `reader` may see. Groups come in a fixed
/// order: days and usernames ascending, review states in their order, places in the form's order
/// (its scope field's `enum`). A submission without a place is counted under the key `""`.
pub fn progress(
    store: &Store,
    form: &str,
    schema: &Value,
    by: GroupBy,
    reader: &Principal,
    zone: &TimeZone,
) -> Result<Progress, AppError> {
    reader.require(Permission::ReadFigures)?;
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut total = 0;
    let mut after = None;
    loop {
        let page = store.submissions_page(
            form,
            after,
            PAGE,
            |submitter, scope| visible_to(reader, submitter, scope),
            |record| record.meta.deleted.is_none(),
        )?;
        for entry in &page {
            match entry {
                Ok(record) => {
                    after = Some(record.meta.seq);
                    *counts.entry(key_of(record, by, zone)).or_default() += 1;
                    total += 1;
                }
                Err(unreadable) => {
                    after = Some(unreadable.seq);
                    tracing::warn!(form, seq = unreadable.seq, reason = %unreadable.reason,
                        "left an unreadable submission out of the progress counts");
                }
            }
        }
        if page.len() < PAGE {
            break;
        }
    }
    let mut groups: Vec<Group> = counts
        .into_iter()
        .map(|(key, count)| Group {
            display_name: None,
            key,
            count,
        })
        .collect();
    sort(&mut groups, by, schema);
    if by == GroupBy::SubmittedBy {
        for group in &mut groups {
            group.display_name = store.user(&group.key)?.map(|user| user.display_name);
        }
    }
    Ok(Progress { groups, total })
}

fn key_of(record: &SubmissionRecord, by: GroupBy, zone: &TimeZone) -> String {
    let meta = &record.meta;
    match by {
        GroupBy::Day => {
            let at = meta.received_at.instant();
            jiff::Timestamp::new(at.unix_timestamp(), at.nanosecond() as i32)
                .map(|t| t.to_zoned(zone.clone()).date().to_string())
                .unwrap_or_default()
        }
        GroupBy::SubmittedBy => meta.submitted_by.clone(),
        GroupBy::ReviewStatus => meta.review_status.as_str().to_owned(),
        GroupBy::Township => meta.scope.clone().unwrap_or_default(),
    }
}

fn sort(groups: &mut [Group], by: GroupBy, schema: &Value) {
    match by {
        GroupBy::ReviewStatus => groups.sort_by_key(|g| {
            ReviewStatus::ALL
                .iter()
                .position(|s| s.as_str() == g.key)
                .unwrap_or(usize::MAX)
        }),
        GroupBy::Township => {
            let order: Vec<&str> = schema
                .get("x-scope")
                .and_then(Value::as_str)
                .and_then(|field| schema.pointer(&format!("/properties{field}/enum")))
                .and_then(Value::as_array)
                .map(|values| values.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            groups.sort_by(|a, b| {
                let place =
                    |g: &Group| order.iter().position(|p| *p == g.key).unwrap_or(usize::MAX);
                place(a).cmp(&place(b)).then_with(|| a.key.cmp(&b.key))
            });
        }
        GroupBy::Day | GroupBy::SubmittedBy => groups.sort_by(|a, b| a.key.cmp(&b.key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn groups(keys: &[&str]) -> Vec<Group> {
        keys.iter()
            .map(|k| Group {
                key: (*k).to_owned(),
                count: 1,
                display_name: None,
            })
            .collect()
    }

    #[test]
    fn places_come_in_the_forms_order_and_states_in_theirs() {
        let schema = json!({"x-scope": "/township",
            "properties": {"township": {"enum": ["平马镇", "祥周镇", "思林镇"]}}});
        let mut places = groups(&["思林镇", "", "平马镇"]);
        sort(&mut places, GroupBy::Township, &schema);
        let keys: Vec<&str> = places.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(keys, ["平马镇", "思林镇", ""]);
        let mut states = groups(&["rejected", "received", "approved"]);
        sort(&mut states, GroupBy::ReviewStatus, &schema);
        let keys: Vec<&str> = states.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(keys, ["received", "approved", "rejected"]);
    }
}
