//! Every byte layout the store writes, in one place.
//!
//! Composite keys join their parts with `0xFF`, a byte that never occurs in UTF-8 text, so
//! a form id can never run into the part after it. Numbers are big-endian so that sled's
//! byte order is numeric order, which is what makes prefix scans come out in arrival order.

use uuid::Uuid;

/// Separates the parts of a composite key.
pub const SEP: u8 = 0xFF;

/// `formversion_definition`: FormId + 0xFF + Version.
pub fn form_version(form: &str, version: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(form.len() + 1 + version.len());
    key.extend_from_slice(form.as_bytes());
    key.push(SEP);
    key.extend_from_slice(version.as_bytes());
    key
}

/// The prefix that every key of one form shares in the form-scoped trees.
pub fn form_prefix(form: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(form.len() + 1);
    key.extend_from_slice(form.as_bytes());
    key.push(SEP);
    key
}

/// `formseq_submissionid`: FormId + 0xFF + Seq (u64, big-endian).
pub fn form_seq(form: &str, seq: u64) -> Vec<u8> {
    let mut key = form_prefix(form);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The arrival sequence number at the end of a `formseq_submissionid` key.
pub fn seq_of_form_seq(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

/// `submissionid_*` trees: the UUID's 16 bytes.
pub fn submission(id: Uuid) -> [u8; 16] {
    *id.as_bytes()
}

/// A value of `formseq_submissionid`: SubmissionId (16 bytes) + submitter + 0xFF + scope value
/// (empty when the form has none). Carrying who and where lets a page be filtered for a field
/// worker or a township without reading every record.
pub fn form_seq_value(id: Uuid, submitter: &str, scope: Option<&str>) -> Vec<u8> {
    let scope = scope.unwrap_or_default();
    let mut value = Vec::with_capacity(16 + submitter.len() + 1 + scope.len());
    value.extend_from_slice(id.as_bytes());
    value.extend_from_slice(submitter.as_bytes());
    value.push(SEP);
    value.extend_from_slice(scope.as_bytes());
    value
}

/// The parts of a `formseq_submissionid` value.
pub struct IndexEntry<'a> {
    pub id: Uuid,
    pub submitter: &'a str,
    pub scope: Option<&'a str>,
}

/// Decodes a `formseq_submissionid` value; `None` if it is not one.
pub fn index_entry(value: &[u8]) -> Option<IndexEntry<'_>> {
    let (id, rest) = value.split_at_checked(16)?;
    let separator = rest.iter().position(|&b| b == SEP)?;
    let submitter = std::str::from_utf8(&rest[..separator]).ok()?;
    let scope = std::str::from_utf8(&rest[separator + 1..]).ok()?;
    Some(IndexEntry {
        id: Uuid::from_slice(id).ok()?,
        submitter,
        scope: (!scope.is_empty()).then_some(scope),
    })
}

/// `uploadid_upload`: the upload's UUID, 16 bytes.
pub fn upload(id: Uuid) -> [u8; 16] {
    *id.as_bytes()
}

/// The prefix of a register version's entries: FormId + 0xFF + version (u64 BE).
pub fn registry_version(form: &str, version: u64) -> Vec<u8> {
    let mut key = form_prefix(form);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

/// The form and version a register key belongs to.
pub fn registry_version_of(key: &[u8]) -> Option<(&str, u64)> {
    let split = key.iter().position(|&b| b == SEP)?;
    let form = std::str::from_utf8(&key[..split]).ok()?;
    let version = key.get(split + 1..split + 9)?.try_into().ok()?;
    Some((form, u64::from_be_bytes(version)))
}

/// `formversionhousehold_registryhousehold` (and the removed households'
/// `formversionhousehold_none`): the version's prefix + the household's id (UTF-8).
pub fn registry_household(form: &str, version: u64, household: &str) -> Vec<u8> {
    let mut key = registry_version(form, version);
    key.extend_from_slice(household.as_bytes());
    key
}

/// The prefix of one household's people: its key + 0xFF (no id is a prefix of another's then).
pub fn registry_members(form: &str, version: u64, household: &str) -> Vec<u8> {
    let mut key = registry_household(form, version, household);
    key.push(SEP);
    key
}

/// `formversionhouseholdline_registrymember`: the household's people prefix + the CSV line (u32 BE).
pub fn registry_member(form: &str, version: u64, household: &str, line: u32) -> Vec<u8> {
    let mut key = registry_members(form, version, household);
    key.extend_from_slice(&line.to_be_bytes());
    key
}

/// `submissionidname_attachment`: SubmissionId (16 bytes) + the file's name (UTF-8); a name
/// never holds a NUL, a slash or a backslash, and the id is fixed-length, so no name runs into another.
pub fn attachment(submission: Uuid, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(16 + name.len());
    key.extend_from_slice(submission.as_bytes());
    key.extend_from_slice(name.as_bytes());
    key
}

/// `submissionidseq_comment`: SubmissionId (16 bytes) + comment number (u64 BE).
pub fn submission_seq(id: Uuid, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(24);
    key.extend_from_slice(id.as_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// `submissionidversion_version`: SubmissionId (16 bytes) + version (u32 BE).
pub fn submission_version(id: Uuid, version: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(20);
    key.extend_from_slice(id.as_bytes());
    key.extend_from_slice(&version.to_be_bytes());
    key
}

/// `seq_audit`: audit number (u64 BE), so the log reads in order.
pub fn audit(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// `targetseq_none`: Target + 0xFF + audit number (u64 BE); the per-target index of the audit log.
pub fn target_seq(target: &str, seq: u64) -> Vec<u8> {
    form_seq(target, seq)
}

/// The prefix of one target's entries in `targetseq_none`.
pub fn target_prefix(target: &str) -> Vec<u8> {
    form_prefix(target)
}

/// `meta`: the time of the last readiness check (RFC 3339 text).
pub const READY_PROBE: &[u8] = b"ready_probe";

/// `meta`: the storage format version, a u32 big-endian.
pub const STORAGE_VERSION: &[u8] = b"storage_version";

/// `meta`: every number drawn here is at least this (u64 BE); set by a restore, above every
/// number the backup holds, because a new database's own counter starts again from zero.
pub const NUMBER_FLOOR: &[u8] = b"number_floor";

/// The prefix of every `meta` key holding a dictionary.
pub const DICTIONARY: &[u8] = b"dictionary\xFF";

/// `meta`: a zstd dictionary (`compression.rs`) by its number (u64 BE); never changed once written.
pub fn dictionary(number: u64) -> Vec<u8> {
    let mut key = DICTIONARY.to_vec();
    key.extend_from_slice(&number.to_be_bytes());
    key
}

/// The prefix of every `meta` key naming the dictionary a form's new submissions use.
pub const DICTIONARY_OF: &[u8] = b"dictionary_of\xFF";

/// `meta`: the number (u64 BE) of the dictionary `form`'s new submissions are compressed with.
pub fn dictionary_of(form: &str) -> Vec<u8> {
    let mut key = DICTIONARY_OF.to_vec();
    key.extend_from_slice(form.as_bytes());
    key
}

/// `meta`: a register import under way, when it last wrote a batch (unix seconds, u64 BE), so a
/// node starting beside it (several nodes on one database) leaves its unpublished version alone.
pub fn registry_import(form: &str, version: u64) -> Vec<u8> {
    let mut key = b"registry_import".to_vec();
    key.push(SEP);
    key.extend_from_slice(&registry_version(form, version));
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_version_key_is_form_then_separator_then_version() {
        assert_eq!(form_version("ab", "1"), vec![b'a', b'b', 0xFF, b'1']);
    }

    #[test]
    fn form_seq_key_is_big_endian_so_byte_order_is_arrival_order() {
        assert_eq!(form_seq("f", 258), vec![b'f', 0xFF, 0, 0, 0, 0, 0, 0, 1, 2]);
        assert!(form_seq("f", 255) < form_seq("f", 256));
        assert!(form_seq("f", u64::MAX) < form_prefix("g"));
    }

    #[test]
    fn a_form_prefix_never_matches_a_longer_form_id() {
        // "ab" must not see the keys of form "ab-2".
        assert!(!form_seq("ab-2", 1).starts_with(&form_prefix("ab")));
    }

    #[test]
    fn seq_round_trips_through_the_key() {
        assert_eq!(seq_of_form_seq(&form_seq("labour-survey", 42)), Some(42));
        assert_eq!(seq_of_form_seq(b"short"), None);
    }

    #[test]
    fn submission_key_is_the_uuid_bytes() {
        let id = Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        assert_eq!(
            submission(id),
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
        );
    }

    #[test]
    fn comment_keys_group_by_submission_in_number_order() {
        let id = Uuid::from_u128(9);
        let key = submission_seq(id, 258);
        assert_eq!(key[..16], submission(id));
        assert_eq!(key[16..], [0, 0, 0, 0, 0, 0, 1, 2]);
        assert!(submission_seq(id, 255) < submission_seq(id, 256));
    }

    #[test]
    fn version_keys_group_by_submission_in_version_order() {
        let id = Uuid::from_u128(3);
        assert_eq!(submission_version(id, 2)[16..], [0, 0, 0, 2]);
        assert!(submission_version(id, 9) < submission_version(id, 10));
    }

    #[test]
    fn audit_keys_read_in_number_order_and_group_by_target() {
        assert_eq!(audit(258), [0, 0, 0, 0, 0, 0, 1, 2]);
        let key = target_seq("submission:ab", 7);
        assert!(key.starts_with(&target_prefix("submission:ab")));
        assert!(!key.starts_with(&target_prefix("submission:a")));
        assert_eq!(seq_of_form_seq(&key), Some(7));
    }

    #[test]
    fn an_index_value_is_id_then_submitter_then_scope() {
        let id = Uuid::from_u128(1);
        let value = form_seq_value(id, "wei", Some("思林镇"));
        let mut expected = id.as_bytes().to_vec();
        expected.extend_from_slice(b"wei\xFF");
        expected.extend_from_slice("思林镇".as_bytes());
        assert_eq!(value, expected);
        let entry = index_entry(&value).unwrap();
        assert_eq!(
            (entry.id, entry.submitter, entry.scope),
            (id, "wei", Some("思林镇"))
        );
    }

    #[test]
    fn an_index_value_without_scope_or_truncated_decodes_sensibly() {
        let value = form_seq_value(Uuid::nil(), "li", None);
        assert_eq!(index_entry(&value).unwrap().scope, None);
        assert!(index_entry(&value[..10]).is_none());
        assert!(index_entry(&value[..17]).is_none(), "no separator");
    }
}
