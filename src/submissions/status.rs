//! Where review of a submission has got to.

use serde::{Deserialize, Serialize};

/// A submission's review state. Its serde form is the name the API, the store and the exports'
/// `_review_status` column use.
/// Records written before review existed have no state: they read as `received` (the default).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    /// Stored as sent; nobody has reviewed it yet.
    #[default]
    Received,
    /// A reviewer saved a correction (a new version of the answers).
    Edited,
    Approved,
    /// Sent back to the field worker to check.
    HasIssues,
    /// Left out of cleaned datasets.
    Rejected,
}

impl ReviewStatus {
    pub const ALL: [ReviewStatus; 5] = [
        ReviewStatus::Received,
        ReviewStatus::Edited,
        ReviewStatus::Approved,
        ReviewStatus::HasIssues,
        ReviewStatus::Rejected,
    ];

    /// The states a reviewer may set; `received` comes on arrival, `edited` with a correction.
    pub const SETTABLE: [ReviewStatus; 3] = [
        ReviewStatus::Approved,
        ReviewStatus::Rejected,
        ReviewStatus::HasIssues,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Received => "received",
            ReviewStatus::Edited => "edited",
            ReviewStatus::Approved => "approved",
            ReviewStatus::HasIssues => "has_issues",
            ReviewStatus::Rejected => "rejected",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == name)
    }

    /// `received, edited, approved, has_issues, rejected`, for messages.
    pub fn names() -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|s| s.as_str()).collect();
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_keep_their_names_in_json() {
        for status in ReviewStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(ReviewStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(ReviewStatus::parse("deleted"), None);
    }
}
