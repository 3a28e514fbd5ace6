//! One row per natural key: the first pass of an export decides, for every key, which row wins.
//!
//! The first pass collects one small candidate per keyed row (32 bytes: a 128-bit digest of the
//! cleaned key, its completion time, arrival number and row number) in a flat vector, never the
//! rows themselves; sorting it leaves one winner per key, found later (near where its digest
//! says it sits) while a second pass streams the rows. 600,000 labourers cost about 20 MB.

use sha2::{Digest as _, Sha256};

use super::json::Json;
use super::layout::{Column, Kind, Table};
use super::rows;

/// A 128-bit digest of a cleaned natural key.
pub type KeyDigest = [u8; 16];

/// The row that currently wins a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Winner {
    /// When it was completed, Unix seconds (phone time when plausible, else server time); u32
    /// keeps a candidate at 32 bytes and lasts until 2106.
    pub order: u32,
    /// Arrival number of its submission: the later arrival wins a tie.
    pub seq: u64,
    /// Its position among the table's rows of that submission: the first wins inside one submission.
    pub row: u32,
}

impl Winner {
    fn beats(&self, other: &Winner) -> bool {
        (self.order, self.seq, std::cmp::Reverse(self.row))
            > (other.order, other.seq, std::cmp::Reverse(other.row))
    }
}

/// The candidates of one table, then (after `settle`) its winners, sorted by key.
#[derive(Default)]
pub struct KeyIndex {
    entries: Vec<(KeyDigest, Winner)>,
}

impl KeyIndex {
    pub fn offer(&mut self, key: KeyDigest, candidate: Winner) {
        self.entries.push((key, candidate));
    }

    /// Keeps only the best candidate of each key.
    pub fn settle(&mut self) {
        // Best first within a key, so `dedup_by_key` keeps it.
        self.entries.sort_unstable_by(|(ka, a), (kb, b)| {
            ka.cmp(kb).then_with(|| {
                if a.beats(b) {
                    std::cmp::Ordering::Less
                } else if b.beats(a) {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
        });
        self.entries.dedup_by_key(|(key, _)| *key);
        self.entries.shrink_to_fit();
    }

    /// Drops candidates for which `keep(seq)` is false (rows of submissions that lost their own key).
    pub fn retain_submissions(&mut self, keep: impl Fn(u64) -> bool) {
        self.entries.retain(|(_, w)| keep(w.seq));
    }

    /// The winner of `key` (after `settle`).
    ///
    /// A plain binary search over hundreds of thousands of entries misses the cache on nearly
    /// every step (it was a tenth of an export's time). Digests are spread evenly, so the key's
    /// first bytes say about where it sits: search a window around there, widened until it
    /// brackets the key (a few hundred entries for a million keys).
    pub fn winner(&self, key: &KeyDigest) -> Option<Winner> {
        let entries = &self.entries;
        let n = entries.len();
        let mut prefix = [0; 8];
        prefix.copy_from_slice(&key[..8]);
        let guess = ((u128::from(u64::from_be_bytes(prefix)) * n as u128) >> 64) as usize;
        let mut reach = 32;
        let (mut lo, mut hi) = (guess.saturating_sub(reach), (guess + reach).min(n));
        loop {
            let from_below = lo == 0 || entries[lo].0 <= *key;
            let from_above = hi == n || entries[hi - 1].0 >= *key;
            if from_below && from_above {
                break;
            }
            reach *= 2;
            if !from_below {
                lo = lo.saturating_sub(reach);
            }
            if !from_above {
                hi = (hi + reach).min(n);
            }
        }
        entries[lo..hi]
            .binary_search_by(|(k, _)| k.cmp(key))
            .ok()
            .map(|i| entries[lo + i].1)
    }
}

/// The natural key of a row after cleaning, or `None` when the table has none or a part is missing.
pub fn natural_key(table: &Table, row: &Json<'_>) -> Option<KeyDigest> {
    if table.unique.is_empty() {
        return None;
    }
    let mut hasher = Sha256::new();
    for path in &table.unique {
        let value = row.at(path)?;
        let part = match value {
            Json::Null => return None,
            Json::String(s) => {
                let column = table.columns.iter().find(|c| &c.path == path);
                match column {
                    Some(column) => rows::cleaned(column, s, &mut Vec::new()),
                    None => rows::cleaned(&plain_text(path), s, &mut Vec::new()),
                }
            }
            other => other.to_json_string(),
        };
        hasher.update(part.as_bytes());
        hasher.update([0x1F]);
    }
    let digest = hasher.finalize();
    let mut key = [0; 16];
    key.copy_from_slice(&digest[..16]);
    Some(key)
}

/// A key part that is not one of the table's columns is cleaned as plain text.
fn plain_text(path: &[String]) -> Column {
    Column {
        name: path.join("."),
        label: String::new(),
        kind: Kind::Text,
        path: path.to_vec(),
        source: String::new(),
        description: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::layout::Layout;
    use serde_json::{Value, json};

    fn members() -> Table {
        let schema = json!({"properties": {"members": {"type": "array", "items": {
            "type": "object", "x-unique": ["/id_number"],
            "properties": {"id_number": {"type": "string", "format": "cn-resident-id"}}}}}});
        Layout::of(&schema).tables.remove(1)
    }

    fn key(table: &Table, row: Value) -> Option<KeyDigest> {
        let text = row.to_string();
        natural_key(table, &Json::parse(text.as_bytes()).unwrap())
    }

    #[test]
    fn keys_are_compared_after_cleaning() {
        let table = members();
        let plain = key(&table, json!({"id_number": "45222319830708001X"}));
        let messy = key(
            &table,
            json!({"id_number": " ４５２２２３１９８３０７０８００１ｘ"}),
        );
        assert!(plain.is_some());
        assert_eq!(plain, messy);
        assert_ne!(
            plain,
            key(&table, json!({"id_number": "452223198307080029"}))
        );
        assert_eq!(key(&table, json!({"name": "no id"})), None);
    }

    fn settled(candidates: &[(KeyDigest, Winner)]) -> KeyIndex {
        let mut index = KeyIndex::default();
        for (key, candidate) in candidates {
            index.offer(*key, *candidate);
        }
        index.settle();
        index
    }

    #[test]
    fn the_latest_completed_wins_then_the_later_arrival_then_the_first_row() {
        let at = |order, seq, row| Winner { order, seq, row };
        let (a, b) = ([7; 16], [1; 16]);
        let index = settled(&[(a, at(100, 1, 0)), (a, at(50, 2, 0)), (b, at(1, 9, 0))]);
        assert_eq!(
            index.winner(&a),
            Some(at(100, 1, 0)),
            "a later arrival completed earlier loses"
        );
        assert_eq!(index.winner(&b), Some(at(1, 9, 0)));
        assert_eq!(index.winner(&[0; 16]), None);
        let index = settled(&[(a, at(100, 3, 2)), (a, at(100, 3, 1)), (a, at(100, 2, 0))]);
        assert_eq!(index.winner(&a), Some(at(100, 3, 1)));
    }

    #[test]
    fn every_key_is_found_wherever_it_sits_and_no_other() {
        let digest = |i: u32| {
            let d = Sha256::digest(i.to_be_bytes());
            let mut key = [0; 16];
            key.copy_from_slice(&d[..16]);
            key
        };
        let at = |seq| Winner {
            order: 0,
            seq,
            row: 0,
        };
        // Evenly spread digests, and keys bunched at both ends, where the guess is far off.
        let mut keys: Vec<KeyDigest> = (0..20_000).map(digest).collect();
        keys.extend((0..300u16).map(|i| {
            let mut key = [0; 16];
            key[14..].copy_from_slice(&i.to_be_bytes());
            key
        }));
        keys.extend((0..300u16).map(|i| {
            let mut key = [0xFF; 16];
            key[14..].copy_from_slice(&i.to_be_bytes());
            key
        }));
        let index = settled(
            &keys
                .iter()
                .enumerate()
                .map(|(i, key)| (*key, at(i as u64)))
                .collect::<Vec<_>>(),
        );
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(index.winner(key), Some(at(i as u64)), "key {i}");
        }
        for i in 20_000..21_000 {
            assert_eq!(index.winner(&digest(i)), None);
        }
        assert_eq!(KeyIndex::default().winner(&[3; 16]), None);
    }

    #[test]
    fn candidates_of_dropped_submissions_can_be_removed_before_settling() {
        let at = |seq| Winner {
            order: 0,
            seq,
            row: 0,
        };
        let mut index = KeyIndex::default();
        index.offer([1; 16], at(5));
        index.offer([1; 16], at(4));
        index.retain_submissions(|seq| seq != 5);
        index.settle();
        assert_eq!(index.winner(&[1; 16]), Some(at(4)));
    }
}
