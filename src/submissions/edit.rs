//! Corrections by reviewers: validated like any submission, saved as a new version, guarded by
//! `If-Match` so two supervisors cannot silently overwrite each other; and the history.

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::{find, find_in_scope};
use crate::audit::{self, AuditAction};
use crate::auth::{Permission, Principal};
use crate::clock::Timestamp;
use crate::error::AppError;
use crate::forms::FormRegistry;
use crate::store::{EditOutcome, Store, SubmissionRecord};

/// The entity tag of a submission's current version.
pub fn etag(record: &SubmissionRecord) -> String {
    format!("\"{}-v{}\"", record.id, record.meta.version)
}

/// Saves `data` as the next version of a submission in the editor's scope, durably. The
/// submission must be in that scope before and after the correction.
pub async fn edit(
    store: &Store,
    forms: &FormRegistry,
    id: Uuid,
    if_match: Option<&str>,
    data: Value,
    by: &Principal,
    accept_language: Option<&str>,
) -> Result<SubmissionRecord, AppError> {
    by.require(Permission::Review)?;
    let record = find_in_scope(store, id, by)?;
    if record.meta.deleted.is_some() {
        return Err(AppError::SubmissionNotFound);
    }
    let if_match = if_match.ok_or(AppError::IfMatchRequired)?;
    let current = etag(&record);
    if !if_match
        .split(',')
        .any(|tag| tag.trim().trim_start_matches("W/") == current)
    {
        return Err(AppError::VersionStale);
    }
    if !data.is_object() {
        return Err(AppError::invalid_field(
            "/data",
            "data must be an object with the answers",
        ));
    }
    let version = forms.resolve(record.meta.form.as_str(), Some(&record.meta.form_version))?;
    version.validate(&data, version.language(accept_language))?;
    let scope = version.scope_of(&data);
    if !by.covers(scope.as_deref()) {
        return Err(AppError::OutOfScope);
    }
    let event = audit::by(
        by,
        AuditAction::SubmissionEdited,
        audit::submission_target(id),
    );
    match store.save_version(
        id,
        record.meta.version,
        &data,
        scope.as_deref(),
        &by.username,
        &event,
    )? {
        EditOutcome::Saved(saved) => Ok(*saved.durable().await?),
        EditOutcome::Stale => Err(AppError::VersionStale),
        EditOutcome::NotFound => Err(AppError::SubmissionNotFound),
    }
}

/// One version of a submission, without its answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VersionInfo {
    /// 1 is the submission as received.
    pub version: u32,
    /// The field worker for version 1, the corrector for later ones.
    pub edited_by: String,
    pub edited_at: Timestamp,
}

/// Every version of a submission, without answers: who made it and when.
pub fn versions(store: &Store, id: Uuid, by: &Principal) -> Result<Vec<VersionInfo>, AppError> {
    let record = find(store, id, by)?;
    let mut all = vec![VersionInfo {
        version: 1,
        edited_by: record.meta.submitted_by,
        edited_at: record.meta.received_at,
    }];
    all.extend(store.versions(id)?.into_iter().map(|v| VersionInfo {
        version: v.version,
        edited_by: v.edited_by,
        edited_at: v.edited_at,
    }));
    Ok(all)
}

/// The answers of version `n` (1: as received).
pub fn version_data(store: &Store, id: Uuid, n: u32, by: &Principal) -> Result<Value, AppError> {
    let record = find(store, id, by)?;
    if n == 1 {
        let envelope: Value = serde_json::from_slice(&record.payload)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        return Ok(envelope.get("data").cloned().unwrap_or(Value::Null));
    }
    Ok(store.version(id, n)?.ok_or(AppError::VersionNotFound)?.data)
}

/// One difference between two versions, at a JSON Pointer into the answers.
#[derive(Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Change {
    /// `add`, `remove` or `replace`.
    pub op: &'static str,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Value>,
}

/// What changed from `a` to `b`, field by field (arrays item by item).
pub fn diff(a: &Value, b: &Value) -> Vec<Change> {
    let mut changes = Vec::new();
    walk(a, b, String::new(), &mut changes);
    changes
}

fn walk(a: &Value, b: &Value, path: String, out: &mut Vec<Change>) {
    let child = |key: &str| format!("{path}/{}", key.replace('~', "~0").replace('/', "~1"));
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (key, old) in x {
                match y.get(key) {
                    Some(new) => walk(old, new, child(key), out),
                    None => out.push(Change {
                        op: "remove",
                        path: child(key),
                        from: Some(old.clone()),
                        to: None,
                    }),
                }
            }
            for (key, new) in y.iter().filter(|(k, _)| !x.contains_key(*k)) {
                out.push(Change {
                    op: "add",
                    path: child(key),
                    from: None,
                    to: Some(new.clone()),
                });
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let here = child(&i.to_string());
                match (x.get(i), y.get(i)) {
                    (Some(old), Some(new)) => walk(old, new, here, out),
                    (Some(old), None) => out.push(Change {
                        op: "remove",
                        path: here,
                        from: Some(old.clone()),
                        to: None,
                    }),
                    (None, Some(new)) => out.push(Change {
                        op: "add",
                        path: here,
                        from: None,
                        to: Some(new.clone()),
                    }),
                    (None, None) => {}
                }
            }
        }
        _ if a != b => out.push(Change {
            op: "replace",
            path,
            from: Some(a.clone()),
            to: Some(b.clone()),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_diff_lists_each_changed_field_by_pointer() {
        let a =
            json!({"village": "定阳村", "members": [{"income": 2000}, {"income": 300}], "gone": 1});
        let b = json!({"village": "定阳村", "members": [{"income": 2500}], "new/key": true});
        let changes = diff(&a, &b);
        let summary: Vec<(&str, &str)> = changes.iter().map(|c| (c.op, c.path.as_str())).collect();
        assert_eq!(
            summary,
            [
                ("replace", "/members/0/income"),
                ("remove", "/members/1"),
                ("remove", "/gone"),
                ("add", "/new~1key")
            ]
        );
        assert_eq!(changes[0].from, Some(json!(2000)));
        assert!(diff(&a, &a).is_empty());
    }
}
