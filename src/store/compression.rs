//! Submission records, compressed with zstd and a dictionary per form trained on the form's own
//! submissions. A household's answers are a kilobyte or so of JSON that says much what every
//! other household's says: compressed alone they shrink by half, with a dictionary by seven
//! (`docs/performance.md`). Smaller records also mean less for sled to write per submission.
//!
//! A `submissionid_record` value is one of:
//! - format 1 of the store (uncompressed): meta length (u32 BE) + meta JSON + payload. Its first
//!   byte is always 0: a meta is far below 16 MiB.
//! - [`PLAIN`]: compressed meta length (u32 BE) + zstd(meta JSON) + zstd(payload).
//! - [`WITH_DICTIONARY`]: dictionary number (u64 BE) + the same, both with that dictionary.
//!
//! The meta and the payload are compressed apart: the payload, most of the work, before the
//! write lock is taken; the meta under it (it holds numbers drawn there); and a review, which
//! changes only the meta, leaves the payload's bytes as they are.
//!
//! Dictionaries live in `meta` (`keys::dictionary`), are never changed once written, and are
//! written before any record that uses them, in an earlier transaction: whatever survives a
//! crash can be read. Backups and `copy-store` carry them like any other entry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use zstd::zstd_safe::{self, CCtx, CDict, DCtx, DDict};

use super::engine::{IVec, Tree, TxError, TxTree};
use super::{StoreError, keys};

/// The format byte of a record compressed without a dictionary.
const PLAIN: u8 = 1;
/// The format byte of a record compressed with a dictionary.
const WITH_DICTIONARY: u8 = 2;
/// zstd's level: its default, fast enough to run on every submission.
const LEVEL: i32 = 3;
/// A form's submissions stored without a dictionary (in this process) before one is trained.
pub const TRAIN_AFTER: u64 = 1_000;
/// How many of a form's submissions a dictionary is trained on.
pub const TRAINING_SAMPLES: usize = 2_000;
/// The largest dictionary: zstd's guidance for records of about a kilobyte.
const DICTIONARY_BYTES: usize = 32 * 1024;
/// Nothing the server stores decompresses to more: a request body is far smaller.
const MAX_DECOMPRESSED: u64 = 256 * 1024 * 1024;
/// At most this much of a form's records is read to train on: plenty for a 32 KiB dictionary,
/// and bounded whatever size its submissions are.
const TRAINING_BYTES: usize = 8 * 1024 * 1024;
/// zstd contexts kept for reuse; more threads than this at once make their own.
const POOLED_CONTEXTS: usize = 16;

const TREE: &str = "submissionid_record";

/// A trained dictionary, ready for both directions.
struct Dictionary {
    number: u64,
    encoder: CDict<'static>,
    decoder: DDict<'static>,
}

/// How a dictionary not yet cached is read from `meta`: by key, from the tree or a transaction.
type ReadEntry<'r, E> = dyn Fn(&[u8]) -> Result<Option<IVec>, E> + 'r;

/// A payload compressed for one form, waiting to be written with its meta.
pub(super) struct PackedPayload {
    dictionary: Option<Arc<Dictionary>>,
    bytes: Vec<u8>,
}

/// A stored record taken apart.
pub(super) struct Unpacked {
    pub meta: Vec<u8>,
    pub payload: Vec<u8>,
}

/// Per form, how many submissions went without a dictionary and whether one is being trained.
#[derive(Default)]
struct Untrained {
    stored: u64,
    training: bool,
    /// Doubled after a training that failed, so a form whose submissions zstd cannot learn
    /// from is not trained on every submission.
    next_attempt: u64,
}

pub(super) struct Compression {
    meta: Tree,
    /// Per form: the dictionary its new submissions are compressed with.
    current: RwLock<HashMap<String, Arc<Dictionary>>>,
    /// Every dictionary read so far, by number.
    known: RwLock<HashMap<u64, Arc<Dictionary>>>,
    /// zstd's contexts are costly to make and used one thread at a time: kept for reuse.
    compressors: Mutex<Vec<CCtx<'static>>>,
    decompressors: Mutex<Vec<DCtx<'static>>>,
    untrained: Mutex<HashMap<String, Untrained>>,
}

fn corrupt(reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        tree: TREE,
        reason: reason.into(),
    }
}

fn zstd_failed(what: &str, code: usize) -> StoreError {
    StoreError::Io(std::io::Error::other(format!(
        "zstd could not {what}: {}",
        zstd_safe::get_error_name(code)
    )))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Puts a context back for the next user, unless enough are kept already (each holds the
/// working memory of the largest record it handled).
fn keep<C>(pool: &Mutex<Vec<C>>, context: C) {
    let mut pool = lock(pool);
    if pool.len() < POOLED_CONTEXTS {
        pool.push(context);
    }
}

impl Compression {
    /// Reads which dictionary each form uses from `meta`.
    pub fn load(meta: Tree) -> Result<Self, StoreError> {
        let compression = Self {
            meta,
            current: RwLock::default(),
            known: RwLock::default(),
            compressors: Mutex::default(),
            decompressors: Mutex::default(),
            untrained: Mutex::default(),
        };
        let pointers: Vec<(IVec, IVec)> = compression
            .meta
            .scan_prefix(keys::DICTIONARY_OF)
            .collect::<Result<_, _>>()?;
        for (key, value) in pointers {
            let form = String::from_utf8_lossy(&key[keys::DICTIONARY_OF.len()..]).into_owned();
            let dictionary = compression.dictionary(number_of(&value)?)?;
            compression.use_for(&form, dictionary);
        }
        Ok(compression)
    }

    fn use_for(&self, form: &str, dictionary: Arc<Dictionary>) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        current.insert(form.to_owned(), dictionary);
    }

    /// The dictionary numbered `number`, read from `meta` the first time.
    fn dictionary(&self, number: u64) -> Result<Arc<Dictionary>, StoreError> {
        self.dictionary_from(number, &|key| self.meta.get(key))
    }

    /// [`Compression::dictionary`], read with `read` the first time: inside a write, the
    /// transaction's own view of `meta` (sled cannot read a tree while a transaction holds its
    /// lock on the same thread; PostgreSQL would take a second connection under the write lock).
    fn dictionary_from<E: From<StoreError>>(
        &self,
        number: u64,
        read: &ReadEntry<'_, E>,
    ) -> Result<Arc<Dictionary>, E> {
        let known = self.known.read().unwrap_or_else(|p| p.into_inner());
        if let Some(dictionary) = known.get(&number) {
            return Ok(Arc::clone(dictionary));
        }
        drop(known);
        let bytes = read(&keys::dictionary(number))?
            .ok_or_else(|| corrupt(format!("dictionary {number} is not stored")))?;
        let dictionary = Arc::new(prepare(number, &bytes)?);
        let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
        Ok(Arc::clone(known.entry(number).or_insert(dictionary)))
    }

    /// `payload` compressed for `form`: with its dictionary if it has one.
    pub fn pack_payload(&self, form: &str, payload: &[u8]) -> Result<PackedPayload, StoreError> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        let dictionary = current.get(form).cloned();
        drop(current);
        let bytes = self.compress(payload, dictionary.as_deref())?;
        Ok(PackedPayload { dictionary, bytes })
    }

    /// The stored value: `meta` compressed like `payload` was, then the payload.
    pub fn pack(&self, meta: &[u8], payload: &PackedPayload) -> Result<Vec<u8>, StoreError> {
        let meta = self.compress(meta, payload.dictionary.as_deref())?;
        Ok(assemble(
            payload.dictionary.as_ref().map(|d| d.number),
            &meta,
            &payload.bytes,
        ))
    }

    /// A record's meta and payload, decompressed.
    pub fn unpack(&self, bytes: &[u8]) -> Result<Unpacked, StoreError> {
        self.unpack_from(bytes, &|key| self.meta.get(key))
    }

    /// [`Compression::unpack`] inside a write, whose view of `meta` is `meta`.
    pub fn unpack_in(&self, bytes: &[u8], meta: &TxTree<'_>) -> Result<Unpacked, TxError> {
        self.unpack_from(bytes, &|key| meta.get(key))
    }

    fn unpack_from<E: From<StoreError>>(
        &self,
        bytes: &[u8],
        read: &ReadEntry<'_, E>,
    ) -> Result<Unpacked, E> {
        let parts = Parts::of(bytes)?;
        let Some(format) = parts.format else {
            return Ok(Unpacked {
                meta: parts.meta.to_vec(),
                payload: parts.payload.to_vec(),
            });
        };
        let dictionary = match format {
            Format::Plain => None,
            Format::WithDictionary(number) => Some(self.dictionary_from(number, read)?),
        };
        Ok(Unpacked {
            meta: self.decompress(parts.meta, dictionary.as_deref())?,
            payload: self.decompress(parts.payload, dictionary.as_deref())?,
        })
    }

    /// The stored record `bytes` with `meta` instead of its own, inside a write whose view of
    /// `meta` is `tx_meta`; the payload's bytes stay as they are (in the record's own format
    /// and dictionary).
    pub fn with_meta(
        &self,
        bytes: &[u8],
        meta: &[u8],
        tx_meta: &TxTree<'_>,
    ) -> Result<Vec<u8>, TxError> {
        let parts = Parts::of(bytes)?;
        match parts.format {
            None => Ok(super::submissions::encode_record(meta, parts.payload)),
            Some(Format::Plain) => Ok(assemble(None, &self.compress(meta, None)?, parts.payload)),
            Some(Format::WithDictionary(number)) => {
                let dictionary = self.dictionary_from(number, &|key| tx_meta.get(key))?;
                let meta = self.compress(meta, Some(&dictionary))?;
                Ok(assemble(Some(number), &meta, parts.payload))
            }
        }
    }

    fn compress(
        &self,
        data: &[u8],
        dictionary: Option<&Dictionary>,
    ) -> Result<Vec<u8>, StoreError> {
        let mut context = lock(&self.compressors).pop().unwrap_or_else(CCtx::create);
        let mut out = Vec::with_capacity(zstd_safe::compress_bound(data.len()));
        let written = match dictionary {
            Some(dictionary) => context.compress_using_cdict(&mut out, data, &dictionary.encoder),
            None => context.compress(&mut out, data, LEVEL),
        };
        keep(&self.compressors, context);
        written.map_err(|code| zstd_failed("compress a record", code))?;
        Ok(out)
    }

    fn decompress(
        &self,
        data: &[u8],
        dictionary: Option<&Dictionary>,
    ) -> Result<Vec<u8>, StoreError> {
        let size = match zstd_safe::get_frame_content_size(data) {
            Ok(Some(size)) if size <= MAX_DECOMPRESSED => size as usize,
            _ => return Err(corrupt("a compressed part without a plausible size")),
        };
        let mut context = lock(&self.decompressors).pop().unwrap_or_else(DCtx::create);
        let mut out = Vec::with_capacity(size);
        let read = match dictionary {
            Some(dictionary) => context.decompress_using_ddict(&mut out, data, &dictionary.decoder),
            None => context.decompress(&mut out, data),
        };
        keep(&self.decompressors, context);
        match read {
            Ok(n) if n == size => Ok(out),
            Ok(_) => Err(corrupt("a compressed part shorter than it says")),
            Err(code) => Err(corrupt(format!(
                "a compressed part: {}",
                zstd_safe::get_error_name(code)
            ))),
        }
    }

    /// Counts a submission stored for `form`.
    pub fn note_stored(&self, form: &str, payload: &PackedPayload) {
        if payload.dictionary.is_none() {
            lock(&self.untrained)
                .entry(form.to_owned())
                .or_default()
                .stored += 1;
        }
    }

    /// Whether a dictionary should be trained for `form` now; true once, until
    /// [`Compression::trained`] says how that training ended.
    pub fn claim_training(&self, form: &str) -> bool {
        let mut untrained = lock(&self.untrained);
        let Some(entry) = untrained.get_mut(form) else {
            return false;
        };
        let due = !entry.training && entry.stored >= entry.next_attempt.max(TRAIN_AFTER);
        entry.training |= due;
        due
    }

    /// A training for `form` ended: with the number of the dictionary to use from now on, or
    /// without one.
    pub fn trained(&self, form: &str, number: Option<u64>) -> Result<(), StoreError> {
        let loaded = number.map(|number| self.dictionary(number)).transpose();
        let mut untrained = lock(&self.untrained);
        match &loaded {
            Ok(Some(_)) => drop(untrained.remove(form)),
            // Without a dictionary to use (none trained, or it could not be loaded), a later
            // training may try again.
            _ => {
                let entry = untrained.entry(form.to_owned()).or_default();
                entry.training = false;
                entry.next_attempt = entry.stored.max(TRAIN_AFTER) * 2;
            }
        }
        drop(untrained);
        if let Some(dictionary) = loaded? {
            self.use_for(form, dictionary);
        }
        Ok(())
    }
}

/// A dictionary trained on `samples` (each a meta or a payload, as they are compressed).
pub(super) fn train(samples: &[Vec<u8>]) -> std::io::Result<Vec<u8>> {
    zstd::dict::from_samples(samples, DICTIONARY_BYTES)
}

fn prepare(number: u64, bytes: &[u8]) -> Result<Dictionary, StoreError> {
    let unusable = || corrupt(format!("dictionary {number} cannot be loaded"));
    Ok(Dictionary {
        number,
        encoder: CDict::try_create(bytes, LEVEL).ok_or_else(unusable)?,
        decoder: DDict::try_create(bytes).ok_or_else(unusable)?,
    })
}

pub(super) fn number_of(value: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = value
        .try_into()
        .map_err(|_| corrupt("a dictionary number is not 8 bytes"))?;
    Ok(u64::from_be_bytes(bytes))
}

fn assemble(dictionary: Option<u64>, meta: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(1 + 8 + 4 + meta.len() + payload.len());
    match dictionary {
        Some(number) => {
            record.push(WITH_DICTIONARY);
            record.extend_from_slice(&number.to_be_bytes());
        }
        None => record.push(PLAIN),
    }
    // A meta is a few hundred bytes, far below u32::MAX.
    record.extend_from_slice(&(meta.len() as u32).to_be_bytes());
    record.extend_from_slice(meta);
    record.extend_from_slice(payload);
    record
}

enum Format {
    Plain,
    WithDictionary(u64),
}

/// A stored value's parts, still compressed; `format` is `None` for format 1's uncompressed records.
struct Parts<'a> {
    format: Option<Format>,
    meta: &'a [u8],
    payload: &'a [u8],
}

impl<'a> Parts<'a> {
    fn of(bytes: &'a [u8]) -> Result<Self, StoreError> {
        let (format, rest) = match bytes.first() {
            Some(0) => (None, bytes),
            Some(&PLAIN) => (Some(Format::Plain), &bytes[1..]),
            Some(&WITH_DICTIONARY) => {
                let (number, rest) = bytes[1..]
                    .split_first_chunk::<8>()
                    .ok_or_else(|| corrupt("shorter than its header"))?;
                (
                    Some(Format::WithDictionary(u64::from_be_bytes(*number))),
                    rest,
                )
            }
            Some(other) => return Err(corrupt(format!("unknown record format {other}"))),
            None => return Err(corrupt("empty")),
        };
        let (length, rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("shorter than its header"))?;
        let length = u32::from_be_bytes(*length) as usize;
        if rest.len() < length {
            return Err(corrupt("meta runs past the end"));
        }
        let (meta, payload) = rest.split_at(length);
        Ok(Self {
            format,
            meta,
            payload,
        })
    }
}

impl super::Store {
    /// Whether `form` has had enough submissions without a dictionary that one should be
    /// trained now; true once per training, for the caller to run [`Store::train_dictionary`].
    pub fn dictionary_due(&self, form: &str) -> bool {
        self.compression.claim_training(form)
    }

    /// Trains `form`'s dictionary on its first stored submissions and compresses its new ones
    /// with it (or with the one another node trained meanwhile). Takes a second or less: run it
    /// off the async workers. `None` when zstd could not learn from the samples (it is tried
    /// again after twice as many submissions).
    /// A training of `form`'s dictionary ended without an answer (its thread panicked): a
    /// later one may try again.
    pub fn dictionary_abandoned(&self, form: &str) {
        // Loads nothing when given no number, so it cannot fail.
        let _ = self.compression.trained(form, None);
    }

    pub fn train_dictionary(&self, form: &str) -> Result<Option<super::Pending<u64>>, StoreError> {
        let outcome = self.train_and_store(form);
        let number = match &outcome {
            Ok(Some(pending)) => Some(*pending.value()),
            _ => None,
        };
        self.compression.trained(form, number)?;
        outcome
    }

    fn train_and_store(&self, form: &str) -> Result<Option<super::Pending<u64>>, StoreError> {
        // Another node may have stored the form's dictionary since this one started.
        if let Some(theirs) = self.meta.get(keys::dictionary_of(form))? {
            return Ok(Some(self.after_earlier_writes(number_of(&theirs)?)));
        }
        let samples = self.training_samples(form)?;
        let bytes = match train(&samples) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(%form, samples = samples.len(), %error, "no compression dictionary could be trained");
                return Ok(None);
            }
        };
        tracing::info!(%form, bytes = bytes.len(), samples = samples.len(), "trained a compression dictionary");
        self.store_dictionary(form, &bytes).map(Some)
    }

    /// The metas and payloads of `form`'s first submissions, up to [`TRAINING_SAMPLES`]
    /// submissions or [`TRAINING_BYTES`].
    fn training_samples(&self, form: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let (mut samples, mut bytes, mut after) = (Vec::new(), 0, None);
        while samples.len() < TRAINING_SAMPLES * 2 && bytes < TRAINING_BYTES {
            let page = self.submissions_page(form, after, 100, |_, _| true, |_| true)?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some(match last {
                Ok(record) => record.meta.seq,
                Err(unreadable) => unreadable.seq,
            });
            for record in page.into_iter().flatten() {
                let meta = super::encode(TREE, &record.meta)?;
                bytes += meta.len() + record.payload.len();
                samples.push(meta);
                samples.push(record.payload);
            }
        }
        Ok(samples)
    }

    /// Stores `bytes` as `form`'s dictionary, unless it has one already: the number of the one
    /// it uses.
    fn store_dictionary(
        &self,
        form: &str,
        bytes: &[u8],
    ) -> Result<super::Pending<u64>, StoreError> {
        let pointer = keys::dictionary_of(form);
        let stored = self.commit(&[], 1, |tx| {
            // Another node trained one first: use that one, so a form has one dictionary.
            if let Some(theirs) = tx.meta.get(&pointer)? {
                return super::write::refuse(theirs);
            }
            let number = tx.number(0);
            tx.meta.insert(keys::dictionary(number), bytes)?;
            tx.meta.insert(&pointer, number.to_be_bytes())?;
            Ok(number)
        })?;
        match stored {
            Ok(pending) => Ok(pending),
            Err(theirs) => Ok(self.after_earlier_writes(number_of(&theirs)?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    const FORM: &str = "labour-survey";

    /// Households like the county's: the same keys and choices, other names and numbers.
    fn household(i: usize) -> Vec<u8> {
        let names = ["陆建华", "黄秀英", "农志强", "李美玲", "韦国庆", "梁春燕"];
        let work = ["stable", "flexible", "self_employed", "not_employed"];
        format!(
            r#"{{"id":"00000000-0000-4000-8000-{i:012}","form_version":"1","data":{{"household_id":"4510220000{i:04}","township":"思林镇","village":"定阳村","relocated":{},"members":[{{"name":"{}","age":{},"employment":"{}","wants_training":true}},{{"name":"{}","age":{},"employment":"{}","wants_training":false}}]}}}}"#,
            i.is_multiple_of(3),
            names[i % 6],
            20 + i % 40,
            work[i % 4],
            names[(i + 1) % 6],
            18 + i % 31,
            work[(i / 4) % 4],
        )
        .into_bytes()
    }

    fn meta(i: usize) -> Vec<u8> {
        format!(r#"{{"form":"{FORM}","form_version":"1","received_at":"2026-11-30T05:37:47.508476013Z","seq":{i},"submitted_by":"fw-silin","scope":"思林镇","version":1,"review_status":"received","deleted":null}}"#).into_bytes()
    }

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    /// [`Compression::with_meta`], inside a write as the store calls it.
    fn with_meta(store: &Store, bytes: &[u8], meta: &[u8]) -> Vec<u8> {
        let pending = store
            .commit_always(&[], 0, |tx| {
                Ok(store.compression.with_meta(bytes, meta, tx.meta)?)
            })
            .unwrap();
        pending.into_parts().0
    }

    fn round_trip(compression: &Compression, i: usize) -> Vec<u8> {
        let payload = compression.pack_payload(FORM, &household(i)).unwrap();
        let record = compression.pack(&meta(i), &payload).unwrap();
        let unpacked = compression.unpack(&record).unwrap();
        assert_eq!(
            unpacked.payload,
            household(i),
            "the payload comes back byte for byte"
        );
        assert_eq!(unpacked.meta, meta(i));
        record
    }

    #[test]
    fn a_records_bytes_come_back_exactly_and_smaller_with_a_dictionary() {
        let (_dir, store) = open();
        let plain = round_trip(&store.compression, 1);
        assert_eq!(plain[0], PLAIN);

        let samples: Vec<Vec<u8>> = (0..1000).flat_map(|i| [meta(i), household(i)]).collect();
        let dictionary = train(&samples).unwrap();
        let number = *store.store_dictionary(FORM, &dictionary).unwrap().value();
        store.compression.trained(FORM, Some(number)).unwrap();
        let with = round_trip(&store.compression, 1);
        assert_eq!(with[0], WITH_DICTIONARY);
        assert!(
            with.len() * 2 < plain.len(),
            "{} bytes with the dictionary, {} without",
            with.len(),
            plain.len()
        );
        // A record written before the dictionary still reads.
        assert_eq!(
            store.compression.unpack(&plain).unwrap().payload,
            household(1)
        );

        // Another process (a restart, another node) finds the form's dictionary in `meta`.
        let reopened = Compression::load(store.meta.clone()).unwrap();
        assert_eq!(reopened.unpack(&with).unwrap().payload, household(1));
        assert_eq!(round_trip(&reopened, 2)[0], WITH_DICTIONARY);
        // A second dictionary for the form is refused: the first one stays the form's.
        let again = *store.store_dictionary(FORM, &dictionary).unwrap().value();
        assert_eq!(again, number);
    }

    #[test]
    fn a_new_meta_keeps_the_payloads_stored_bytes() {
        let (_dir, store) = open();
        let compression = &store.compression;
        let record = round_trip(compression, 3);
        let changed = with_meta(&store, &record, b"{\"changed\":true}");
        let unpacked = compression.unpack(&changed).unwrap();
        assert_eq!(unpacked.meta, b"{\"changed\":true}");
        assert_eq!(unpacked.payload, household(3));
        let payload_at = |bytes: &[u8]| bytes.len() - Parts::of(bytes).unwrap().payload.len();
        assert_eq!(
            record[payload_at(&record)..],
            changed[payload_at(&changed)..]
        );
        // A record of format 1 stays uncompressed.
        let old = crate::store::submissions::encode_record(&meta(4), &household(4));
        let changed = with_meta(&store, &old, b"{}");
        assert_eq!(
            changed,
            crate::store::submissions::encode_record(b"{}", &household(4))
        );
    }

    #[test]
    fn a_review_reads_a_dictionary_it_has_not_seen_inside_its_write_and_keeps_the_payload() {
        let (_dir, store) = open();
        let samples: Vec<Vec<u8>> = (0..1000).flat_map(|i| [meta(i), household(i)]).collect();
        let dictionary = train(&samples).unwrap();
        // Another node's dictionary: stored after this store loaded what it knows.
        let number = *store
            .commit_always(&[], 1, |tx| {
                tx.meta
                    .insert(keys::dictionary(tx.number(0)), &dictionary)?;
                Ok(tx.number(0))
            })
            .unwrap()
            .value();
        let other = Compression::load(store.meta.clone()).unwrap();
        other.trained(FORM, Some(number)).unwrap();
        let id = uuid::Uuid::new_v4();
        let record = round_trip(&other, 7);
        assert_eq!(record[0], WITH_DICTIONARY);
        drop(
            store
                .commit_always(&[], 0, |tx| {
                    tx.submission_record.insert(keys::submission(id), &record)?;
                    Ok(())
                })
                .unwrap(),
        );

        // On sled a read outside the transaction would wait for the transaction's own lock.
        let store = Arc::new(store);
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn({
            let store = Arc::clone(&store);
            move || {
                let changed = store.change_submission(
                    id,
                    |meta| meta.review_status = crate::submissions::ReviewStatus::Approved,
                    None,
                    &[],
                );
                let _ = done.send(changed.map(|pending| pending.is_some()));
            }
        });
        let changed = finished
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the review finishes");
        assert!(changed.unwrap());
        let reviewed = store.submission(id).unwrap().unwrap();
        assert_eq!(
            reviewed.meta.review_status,
            crate::submissions::ReviewStatus::Approved
        );
        assert_eq!(reviewed.payload, household(7));
        let stored = store
            .submission_record
            .get(keys::submission(id))
            .unwrap()
            .unwrap();
        let payload_at = |bytes: &[u8]| bytes.len() - Parts::of(bytes).unwrap().payload.len();
        assert_eq!(
            stored[payload_at(&stored)..],
            record[payload_at(&record)..],
            "the payload's compressed bytes are untouched"
        );
    }

    #[test]
    fn damaged_records_are_reported_not_misread() {
        let (_dir, store) = open();
        let compression = &store.compression;
        let record = round_trip(compression, 5);
        for damaged in [
            &record[..3],
            &record[..record.len() - 1],
            &[][..],
            &[9, 0, 0, 0, 0][..],
            &[WITH_DICTIONARY, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 0][..],
        ] {
            assert!(
                matches!(compression.unpack(damaged), Err(StoreError::Corrupt { .. })),
                "{damaged:?}"
            );
        }
    }

    #[test]
    fn a_dictionary_is_due_once_after_enough_submissions_and_later_after_a_failure() {
        let (_dir, store) = open();
        let compression = &store.compression;
        let plain = compression.pack_payload(FORM, b"{}").unwrap();
        for _ in 1..TRAIN_AFTER {
            compression.note_stored(FORM, &plain);
        }
        assert!(!compression.claim_training(FORM));
        compression.note_stored(FORM, &plain);
        assert!(compression.claim_training(FORM));
        assert!(!compression.claim_training(FORM), "one training at a time");
        compression.trained(FORM, None).unwrap();
        assert!(
            !compression.claim_training(FORM),
            "after a failure, wait for more"
        );
        for _ in 0..TRAIN_AFTER {
            compression.note_stored(FORM, &plain);
        }
        assert!(compression.claim_training(FORM));
    }
}
