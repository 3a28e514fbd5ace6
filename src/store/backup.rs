//! Online backups: a consistent snapshot of every tree, written as one self-checking file, and
//! the restore that turns such a file back into a data directory.
//!
//! Consistency: every write commits through `Store::commit`, which holds `write_order`, so the
//! snapshot takes that lock for as long as it takes to *collect* the entries (sled hands out
//! shared buffers: no copying), then releases it and writes the file while submissions keep
//! arriving.
//!
//! Attachment files are not in sled (`blobs.rs`): the backup adds every file the snapshot's
//! attachment records name, read from disk while the file is written (kept files never change).
//!
//! The file format, version 2 (all integers big-endian; version 1 is the same without files):
//! ```text
//! "SURVEY-SERVER-BACKUP\n"
//! header: one line of JSON ({"format":2,"storage_version":…,"created_at":…,"server_version":…}) "\n"
//! per tree: b'T', u32 name length, name, u64 entry count,
//!           then per entry: u32 key length, key, u32 value length, value
//! per file: b'F', its SHA-256 as 64 hex digits, u64 length, the bytes
//! end: b'E', then the SHA-256 of every byte before the b'E'
//! ```

use std::fs;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::attachments::{ATTACHMENTS, AttachmentRecord};
use super::engine::TreeEntries;
use super::{Blobs, Store, StoreError, decode, keys, migrate};

const MAGIC: &[u8] = b"SURVEY-SERVER-BACKUP\n";
const FORMAT: u32 = 2;
/// Entries written per sled batch while restoring.
const RESTORE_BATCH: usize = 10_000;

#[derive(Serialize, Deserialize)]
struct Header {
    format: u32,
    storage_version: u32,
    created_at: String,
    server_version: String,
}

/// What a backup holds, for the operator's confirmation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BackupSummary {
    pub created_at: String,
    pub trees: u64,
    pub entries: u64,
    pub submissions: u64,
    pub users: u64,
    pub form_versions: u64,
    /// Attachment files, and their bytes.
    pub files: u64,
    pub file_bytes: u64,
}

impl BackupSummary {
    fn count(&mut self, tree: &[u8], entries: u64) {
        self.trees += 1;
        self.entries += entries;
        match tree {
            b"submissionid_record" => self.submissions = entries,
            b"username_user" => self.users = entries,
            b"formversion_definition" => self.form_versions = entries,
            _ => {}
        }
    }
}

impl std::fmt::Display for BackupSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "taken {}: {} submissions, {} users, {} form versions ({} entries in {} trees), \
             {} attachment files ({:.1} MiB)",
            self.created_at,
            self.submissions,
            self.users,
            self.form_versions,
            self.entries,
            self.trees,
            self.files,
            self.file_bytes as f64 / (1024.0 * 1024.0)
        )
    }
}

/// Every tree's entries as of one instant, held in memory until written.
pub struct Snapshot {
    header: Header,
    trees: TreeEntries,
}

impl Store {
    /// Collects every tree while no multi-tree write can commit (see the module comment).
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let _order = self.snapshot_order();
        let started = std::time::Instant::now();
        let mut trees = self.engine.snapshot()?;
        // Login failures and download links: short-lived, and a link holds an access token.
        trees.retain(|(name, _)| name != super::engine::TRANSIENT);
        let storage_version = self
            .meta
            .get(keys::STORAGE_VERSION)?
            .map_or(Ok(migrate::CURRENT), |bytes| {
                migrate::decode_version(&bytes)
            })?;
        tracing::info!(
            paused_ms = started.elapsed().as_secs_f64() * 1000.0,
            "backup snapshot collected"
        );
        Ok(Snapshot {
            header: Header {
                format: FORMAT,
                storage_version,
                created_at: crate::clock::Timestamp::now().to_string(),
                server_version: env!("CARGO_PKG_VERSION").to_owned(),
            },
            trees,
        })
    }
}

impl Snapshot {
    /// Every tree's name and entries.
    pub(super) fn trees(&self) -> &TreeEntries {
        &self.trees
    }

    /// The hashes of every attachment file the snapshot's records name, each once.
    fn file_hashes(&self) -> io::Result<std::collections::BTreeSet<String>> {
        let mut hashes = std::collections::BTreeSet::new();
        for (name, entries) in &self.trees {
            if name != ATTACHMENTS {
                continue;
            }
            for (_, value) in entries {
                let record: AttachmentRecord =
                    decode(ATTACHMENTS, value).map_err(io::Error::other)?;
                hashes.insert(record.sha256);
            }
        }
        Ok(hashes)
    }

    /// Writes the backup file, with the attachment files from `blobs`; the summary describes
    /// what went in. A file missing from disk is left out (and logged): the rest is still saved.
    pub fn write_to(&self, out: impl Write, blobs: Option<&Blobs>) -> io::Result<BackupSummary> {
        let mut out = Hashing {
            inner: out,
            hash: Sha256::new(),
        };
        out.write_all(MAGIC)?;
        serde_json::to_writer(&mut out, &self.header)?;
        out.write_all(b"\n")?;
        let mut summary = BackupSummary {
            created_at: self.header.created_at.clone(),
            ..BackupSummary::default()
        };
        for (name, entries) in &self.trees {
            out.write_all(b"T")?;
            write_bytes(&mut out, name.as_bytes())?;
            out.write_all(&(entries.len() as u64).to_be_bytes())?;
            for (key, value) in entries {
                write_bytes(&mut out, key)?;
                write_bytes(&mut out, value)?;
            }
            summary.count(name.as_bytes(), entries.len() as u64);
        }
        if let Some(blobs) = blobs {
            for sha256 in self.file_hashes()? {
                let mut file = match blobs.open_object(&sha256) {
                    Ok(file) => file,
                    Err(error) => {
                        tracing::error!(%sha256, %error, "an attachment file is missing from disk; the backup goes on without it");
                        continue;
                    }
                };
                let length = file.metadata()?.len();
                out.write_all(b"F")?;
                out.write_all(sha256.as_bytes())?;
                out.write_all(&length.to_be_bytes())?;
                let copied = io::copy(&mut (&mut file).take(length), &mut out)?;
                if copied != length {
                    return Err(io::Error::other(format!(
                        "attachment {sha256} shrank while it was read"
                    )));
                }
                summary.files += 1;
                summary.file_bytes += length;
            }
        }
        out.write_all(b"E")?;
        let digest = out.hash.finalize();
        out.inner.write_all(&digest)?;
        out.inner.flush()?;
        Ok(summary)
    }
}

/// Why a backup file could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0} already holds a database; restore into a new, empty one")]
    NotEmpty(String),
    #[error("not a survey-server backup file")]
    NotABackup,
    #[error("backup file format {0} is newer than this survey-server understands")]
    TooNew(u32),
    #[error("the backup file is damaged or incomplete: {0}")]
    Damaged(String),
    #[error("the attachments directory {0} is inside the database's directory; choose another")]
    Misplaced(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<io::Error> for RestoreError {
    fn from(error: io::Error) -> Self {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            RestoreError::Damaged("it ends early".into())
        } else {
            RestoreError::Store(StoreError::Io(error))
        }
    }
}

impl From<sled::Error> for RestoreError {
    fn from(error: sled::Error) -> Self {
        RestoreError::Store(error.into())
    }
}

/// Checks a backup file from end to end without writing anything (each file's hash too).
pub fn verify(input: impl Read) -> Result<BackupSummary, RestoreError> {
    read_backup(
        input,
        |_, _| Ok(()),
        |sha256, bytes| {
            let mut hash = Sha256::new();
            io::copy(bytes, &mut HashWriter(&mut hash))?;
            if super::blobs::hex(&hash.finalize()) == sha256 {
                Ok(())
            } else {
                Err(RestoreError::Damaged(format!(
                    "file {sha256} does not have that hash"
                )))
            }
        },
    )
}

/// Feeds what is written into a hash.
struct HashWriter<'h>(&'h mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where a restore writes: a new data directory (sled), or an empty PostgreSQL database.
pub enum RestoreTarget<'a> {
    Sled(&'a Path),
    Postgres(&'a super::PgOptions),
}

/// Builds the database and the attachments directory from a backup. A damaged file leaves
/// nothing behind: sled's directory and the files are assembled beside their place and moved
/// there only once the whole file has checked out; PostgreSQL takes it in one transaction.
pub fn restore(
    input: impl Read,
    target: RestoreTarget<'_>,
    attachments_dir: &Path,
) -> Result<BackupSummary, RestoreError> {
    let database = match target {
        RestoreTarget::Sled(data_dir) => Some(data_dir.join("sled")),
        RestoreTarget::Postgres(_) => None,
    };
    let files = Files::stage(attachments_dir, database.as_deref())?;
    let summary = match target {
        RestoreTarget::Sled(data_dir) => restore_sled(input, data_dir, &files),
        RestoreTarget::Postgres(options) => restore_postgres(input, options, &files),
    };
    match summary {
        Ok(summary) => {
            files.publish()?;
            Ok(summary)
        }
        Err(error) => {
            files.discard();
            Err(error)
        }
    }
}

/// The attachment files of a restore, written beside `objects/` until the database is in.
struct Files {
    dir: PathBuf,
    staging: PathBuf,
    blobs: Blobs,
}

impl Files {
    fn stage(attachments_dir: &Path, database: Option<&Path>) -> Result<Self, RestoreError> {
        // Only `objects/` is ever written in the attachments directory (which may be the data
        // directory itself); it must hold no files yet, and must not be inside the database.
        if occupied(&attachments_dir.join("objects")) {
            return Err(RestoreError::NotEmpty(
                attachments_dir.display().to_string(),
            ));
        }
        let absolute = |path: &Path| std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        if database.is_some_and(|db| absolute(attachments_dir).starts_with(absolute(db))) {
            return Err(RestoreError::Misplaced(
                attachments_dir.display().to_string(),
            ));
        }
        // Ours by name: what an earlier restore that failed left.
        let staging = attachments_dir.join("objects.restoring");
        if staging.exists() {
            fs::remove_dir_all(&staging)?;
        }
        fs::create_dir_all(&staging)?;
        Ok(Self {
            dir: attachments_dir.to_owned(),
            blobs: Blobs::at(&staging),
            staging,
        })
    }

    fn write(&self, sha256: &str, bytes: &mut dyn Read) -> Result<(), RestoreError> {
        self.blobs.write_object(sha256, bytes).map_err(|e| {
            if e.kind() == io::ErrorKind::InvalidData {
                RestoreError::Damaged(e.to_string())
            } else {
                e.into()
            }
        })
    }

    fn publish(self) -> Result<(), RestoreError> {
        let objects = self.dir.join("objects");
        // `objects/` is absent or empty (checked before): `remove_dir` refuses anything else.
        if objects.exists() {
            fs::remove_dir(&objects)?;
        }
        fs::rename(&self.staging, &objects)?;
        fs::File::open(&self.dir)?.sync_all()?;
        Ok(())
    }

    fn discard(self) {
        let _ = fs::remove_dir_all(&self.staging);
    }
}

fn occupied(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}

/// The highest number a backup holds, so that a restored database draws only larger ones
/// (its own counter starts again; see `keys::NUMBER_FLOOR`).
#[derive(Default)]
struct NumberFloor {
    tree: Vec<u8>,
    highest: u64,
}

impl NumberFloor {
    fn tree(&mut self, name: &[u8]) {
        self.tree = name.to_vec();
    }

    fn entry(&mut self, key: &[u8], value: &[u8]) {
        let json_field = |field: &str| {
            serde_json::from_slice::<serde_json::Value>(value)
                .ok()
                .and_then(|record| record[field].as_u64())
        };
        let found = match self.tree.as_slice() {
            b"seq_audit" | b"formseq_submissionid" | b"submissionidseq_comment" => {
                keys::seq_of_form_seq(key)
            }
            b"formversion_definition" => json_field("seq"),
            b"form_registry" => json_field("version"),
            b"meta" if key == keys::NUMBER_FLOOR => <[u8; 8]>::try_from(value)
                .ok()
                .map(|floor| u64::from_be_bytes(floor).saturating_sub(1)),
            // A dictionary's number was drawn like any other: never hand it out again.
            b"meta" if key.starts_with(keys::DICTIONARY) => keys::seq_of_form_seq(key),
            _ => None,
        };
        self.highest = self.highest.max(found.unwrap_or_default());
    }

    /// The first number the restored database may draw.
    fn next(&self) -> u64 {
        self.highest.saturating_add(1)
    }
}

// Builds a database no server has open yet (a command for a stopped server), so it writes
// directly; it waits on sled's file lock with a plain sleep, outside any async runtime.
#[allow(clippy::disallowed_methods)]
fn restore_sled(
    input: impl Read,
    data_dir: &Path,
    files: &Files,
) -> Result<BackupSummary, RestoreError> {
    let target = data_dir.join("sled");
    if occupied(&target) {
        return Err(RestoreError::NotEmpty(data_dir.display().to_string()));
    }
    let staging = data_dir.join("sled.restoring");
    if staging.exists() {
        fs::remove_dir_all(&staging)?;
    }
    fs::create_dir_all(&staging)?;
    let written = (|| {
        let db = sled::Config::new().path(&staging).open()?;
        let mut batch = (None::<sled::Tree>, sled::Batch::default(), 0);
        let mut floor = NumberFloor::default();
        let tree_entry = |tree: Option<&[u8]>, entry: Option<(Vec<u8>, Vec<u8>)>| {
            if let Some(name) = tree {
                flush_batch(&mut batch)?;
                batch.0 = Some(db.open_tree(name)?);
                floor.tree(name);
            }
            if let Some((key, value)) = entry {
                floor.entry(&key, &value);
                batch.1.insert(key, value);
                batch.2 += 1;
                if batch.2 >= RESTORE_BATCH {
                    flush_batch(&mut batch)?;
                }
            }
            Ok(())
        };
        let summary = read_backup(input, tree_entry, |sha256, bytes| {
            files.write(sha256, bytes)
        })?;
        flush_batch(&mut batch)?;
        db.open_tree("meta")?
            .insert(keys::NUMBER_FLOOR, &floor.next().to_be_bytes())?;
        db.flush()?;
        Ok::<_, RestoreError>(summary)
    })();
    let summary = match written {
        Ok(summary) => summary,
        Err(error) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(error);
        }
    };
    if target.exists() {
        fs::remove_dir(&target)?;
    }
    fs::rename(&staging, &target)?;
    fs::File::open(data_dir)?.sync_all()?;
    // Opening runs the migrations a backup from an older server needs. sled's background thread
    // may hold the file lock for a moment after the builder's last handle is gone.
    for attempt in 1.. {
        match Store::open(data_dir) {
            Err(StoreError::Locked) if attempt < 50 => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            opened => {
                drop(opened?);
                break;
            }
        }
    }
    Ok(summary)
}

fn restore_postgres(
    input: impl Read,
    options: &super::PgOptions,
    files: &Files,
) -> Result<BackupSummary, RestoreError> {
    let pg = super::engine::pg::Pg::connect(options)?;
    let loader = pg
        .loader()?
        .ok_or_else(|| RestoreError::NotEmpty("PostgreSQL".into()))?;
    let mut floor = NumberFloor::default();
    let mut tree = String::new();
    let mut batch = Vec::new();
    let tree_entry = |name: Option<&[u8]>, entry: Option<(Vec<u8>, Vec<u8>)>| {
        if let Some(name) = name {
            if !batch.is_empty() {
                loader.load(&tree, std::mem::take(&mut batch))?;
            }
            tree = String::from_utf8_lossy(name).into_owned();
            floor.tree(name);
        }
        if let Some((key, value)) = entry {
            floor.entry(&key, &value);
            batch.push((key, value));
            if batch.len() >= RESTORE_BATCH {
                loader.load(&tree, std::mem::take(&mut batch))?;
            }
        }
        Ok(())
    };
    let summary = read_backup(input, tree_entry, |sha256, bytes| {
        files.write(sha256, bytes)
    })?;
    if !batch.is_empty() {
        loader.load(&tree, batch)?;
    }
    loader.finish(floor.next())?;
    drop(pg);
    // Opening runs the migrations a backup from an older server needs.
    drop(Store::open_postgres(options)?);
    Ok(summary)
}

type Batch = (Option<sled::Tree>, sled::Batch, usize);

#[allow(clippy::disallowed_methods)] // part of `restore`, before any server opens the database
fn flush_batch((tree, batch, count): &mut Batch) -> Result<(), RestoreError> {
    if let Some(tree) = tree {
        tree.apply_batch(std::mem::take(batch))?;
    }
    *count = 0;
    Ok(())
}

/// Parses a backup, handing each new tree name and each entry to `visit` and each file's hash
/// and bytes to `file`; checks the digest.
pub(super) fn read_backup(
    input: impl Read,
    mut visit: impl FnMut(Option<&[u8]>, Option<(Vec<u8>, Vec<u8>)>) -> Result<(), RestoreError>,
    mut file: impl FnMut(&str, &mut dyn Read) -> Result<(), RestoreError>,
) -> Result<BackupSummary, RestoreError> {
    let mut input = Hashing {
        inner: BufReader::with_capacity(1 << 20, input),
        hash: Sha256::new(),
    };
    let mut magic = [0; MAGIC.len()];
    input
        .read_exact(&mut magic)
        .map_err(|_| RestoreError::NotABackup)?;
    if magic != MAGIC {
        return Err(RestoreError::NotABackup);
    }
    let header: Header = serde_json::from_slice(&read_line(&mut input)?)
        .map_err(|e| RestoreError::Damaged(format!("header: {e}")))?;
    if header.format > FORMAT {
        return Err(RestoreError::TooNew(header.format));
    }
    if header.storage_version > migrate::CURRENT {
        return Err(StoreError::TooNew {
            found: header.storage_version,
            known: migrate::CURRENT,
        }
        .into());
    }
    let mut summary = BackupSummary {
        created_at: header.created_at,
        ..BackupSummary::default()
    };
    loop {
        match read_array::<1>(&mut input)? {
            [b'T'] => {
                let name = read_bytes(&mut input)?;
                let entries = u64::from_be_bytes(read_array(&mut input)?);
                visit(Some(&name), None)?;
                for _ in 0..entries {
                    let key = read_bytes(&mut input)?;
                    let value = read_bytes(&mut input)?;
                    visit(None, Some((key, value)))?;
                }
                summary.count(&name, entries);
            }
            [b'F'] => {
                let sha256 = String::from_utf8(read_array::<64>(&mut input)?.to_vec())
                    .map_err(|_| RestoreError::Damaged("a file's hash is not text".into()))?;
                let length = u64::from_be_bytes(read_array(&mut input)?);
                let mut bytes = (&mut input).take(length);
                file(&sha256, &mut bytes)?;
                // Whatever the visitor left unread still counts towards the digest.
                io::copy(&mut bytes, &mut io::sink())?;
                if bytes.limit() != 0 {
                    return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
                }
                summary.files += 1;
                summary.file_bytes += length;
            }
            [b'E'] => break,
            [other] => {
                return Err(RestoreError::Damaged(format!(
                    "unknown record {other:#04x}"
                )));
            }
        }
    }
    let computed = input.hash.finalize();
    let mut stored = [0; 32];
    input.inner.read_exact(&mut stored)?;
    if computed.as_slice() != stored {
        return Err(RestoreError::Damaged("its checksum does not match".into()));
    }
    if input.inner.read(&mut [0])? != 0 {
        return Err(RestoreError::Damaged("bytes after the end".into()));
    }
    Ok(summary)
}

fn write_bytes(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(io::Error::other)?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(bytes)
}

fn read_array<const N: usize>(input: &mut impl Read) -> io::Result<[u8; N]> {
    let mut bytes = [0; N];
    input.read_exact(&mut bytes)?;
    Ok(bytes)
}

fn read_bytes(input: &mut impl Read) -> io::Result<Vec<u8>> {
    let len = u32::from_be_bytes(read_array(input)?) as usize;
    // Grown as bytes arrive: a damaged length cannot make us allocate gigabytes up front.
    let mut bytes = Vec::new();
    input.take(len as u64).read_to_end(&mut bytes)?;
    if bytes.len() != len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(bytes)
}

fn read_line(input: &mut impl Read) -> Result<Vec<u8>, RestoreError> {
    let mut line = Vec::new();
    loop {
        match read_array::<1>(input)? {
            [b'\n'] => return Ok(line),
            [byte] if line.len() < 64 * 1024 => line.push(byte),
            _ => return Err(RestoreError::Damaged("header too long".into())),
        }
    }
}

/// Hashes every byte that passes through.
struct Hashing<T> {
    inner: T,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(bytes)?;
        self.hash.update(&bytes[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, bytes: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(bytes)?;
        self.hash.update(&bytes[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_data(dir: &Path) -> Store {
        let store = Store::open(dir).unwrap();
        let planted = store.commit_always(&[], 0, |tx| {
            tx.meta.insert(b"note", b"hello")?;
            tx.users.insert(b"wei", br#"{"x":1}"#)?;
            Ok(())
        });
        drop(planted.unwrap().into_parts());
        store
    }

    #[test]
    fn a_backup_restores_every_tree_and_checks_its_digest() {
        let source = tempfile::tempdir().unwrap();
        let store = store_with_data(source.path());
        let mut file = Vec::new();
        let written = store.snapshot().unwrap().write_to(&mut file, None).unwrap();
        assert_eq!(written.users, 1);
        assert_eq!(verify(file.as_slice()).unwrap(), written);

        let target = tempfile::tempdir().unwrap();
        assert_eq!(
            restore(
                file.as_slice(),
                RestoreTarget::Sled(target.path()),
                &target.path().join("attachments")
            )
            .unwrap(),
            written
        );
        let restored = Store::open(target.path()).unwrap();
        assert_eq!(restored.meta.get(b"note").unwrap().unwrap(), b"hello");
        assert_eq!(restored.users.iter().count(), 1);
    }

    #[test]
    fn a_damaged_backup_restores_nothing() {
        let source = tempfile::tempdir().unwrap();
        let store = store_with_data(source.path());
        let mut file = Vec::new();
        store.snapshot().unwrap().write_to(&mut file, None).unwrap();
        let middle = file.len() / 2;
        let mut flipped = file.clone();
        flipped[middle] ^= 0x01;
        for damaged in [&flipped[..], &file[..file.len() - 1], &file[..middle]] {
            let target = tempfile::tempdir().unwrap();
            assert!(matches!(
                restore(
                    damaged,
                    RestoreTarget::Sled(target.path()),
                    &target.path().join("attachments")
                ),
                Err(RestoreError::Damaged(_))
            ));
            assert!(!target.path().join("sled").exists());
            assert!(!target.path().join("sled.restoring").exists());
        }
        assert!(matches!(
            verify(&b"PK\x03\x04 a zip file"[..]),
            Err(RestoreError::NotABackup)
        ));
    }

    #[test]
    fn restore_refuses_a_data_directory_that_has_a_database() {
        let source = tempfile::tempdir().unwrap();
        let mut file = Vec::new();
        store_with_data(source.path())
            .snapshot()
            .unwrap()
            .write_to(&mut file, None)
            .unwrap();
        let occupied = tempfile::tempdir().unwrap();
        drop(Store::open(occupied.path()).unwrap());
        assert!(matches!(
            restore(
                file.as_slice(),
                RestoreTarget::Sled(occupied.path()),
                &occupied.path().join("attachments")
            ),
            Err(RestoreError::NotEmpty(_))
        ));
    }
}
