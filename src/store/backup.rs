//! Online backups: a consistent snapshot of every tree, written as one self-checking file, and
//! the restore that turns such a file back into a data directory.
//!
//! Consistency: every write commits through `Store::commit`, which holds `write_order`, so the
//! snapshot takes that lock for as long as it takes to *collect* the entries (sled hands out
//! shared buffers: no copying), then releases it and writes the file while submissions keep
//! arriving.
//!
//! The file format, version 1 (all integers big-endian):
//! ```text
//! "SURVEY-SERVER-BACKUP\n"
//! header: one line of JSON ({"format":1,"storage_version":…,"created_at":…,"server_version":…}) "\n"
//! per tree: b'T', u32 name length, name, u64 entry count,
//!           then per entry: u32 key length, key, u32 value length, value
//! end: b'E', then the SHA-256 of every byte before the b'E'
//! ```

use std::fs;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Store, StoreError, keys, migrate};

const MAGIC: &[u8] = b"SURVEY-SERVER-BACKUP\n";
const FORMAT: u32 = 1;
/// sled's own default tree; this server never writes it, and reopening it by name is unsafe.
const SLED_DEFAULT_TREE: &[u8] = b"__sled__default";
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
            "taken {}: {} submissions, {} users, {} form versions ({} entries in {} trees)",
            self.created_at,
            self.submissions,
            self.users,
            self.form_versions,
            self.entries,
            self.trees
        )
    }
}

/// Every tree's entries as of one instant, held in memory until written.
pub struct Snapshot {
    header: Header,
    trees: Vec<(sled::IVec, Vec<(sled::IVec, sled::IVec)>)>,
}

impl Store {
    /// Collects every tree while no multi-tree write can commit (see the module comment).
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let _order = self.write_order();
        let started = std::time::Instant::now();
        let mut trees = Vec::new();
        for name in self.db.tree_names() {
            if name == SLED_DEFAULT_TREE {
                continue;
            }
            let tree = self.db.open_tree(&name)?;
            let entries = tree.iter().collect::<Result<Vec<_>, _>>()?;
            trees.push((name, entries));
        }
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
    /// Writes the backup file; the summary describes what went in.
    pub fn write_to(&self, out: impl Write) -> io::Result<BackupSummary> {
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
            write_bytes(&mut out, name)?;
            out.write_all(&(entries.len() as u64).to_be_bytes())?;
            for (key, value) in entries {
                write_bytes(&mut out, key)?;
                write_bytes(&mut out, value)?;
            }
            summary.count(name, entries.len() as u64);
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
    #[error("{0} already holds a database; restore into a new, empty data directory")]
    NotEmpty(String),
    #[error("not a survey-server backup file")]
    NotABackup,
    #[error("backup file format {0} is newer than this survey-server understands")]
    TooNew(u32),
    #[error("the backup file is damaged or incomplete: {0}")]
    Damaged(String),
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

/// Checks a backup file from end to end without writing anything.
pub fn verify(input: impl Read) -> Result<BackupSummary, RestoreError> {
    read_backup(input, |_, _| Ok(()))
}

/// Builds `<data_dir>/sled` from a backup. The database is assembled beside it and moved into
/// place only once the whole file has checked out, so a damaged file leaves nothing behind.
// Builds a database no server has open yet (a command for a stopped server), so it writes
// directly; it waits on sled's file lock with a plain sleep, outside any async runtime.
#[allow(clippy::disallowed_methods)]
pub fn restore(input: impl Read, data_dir: &Path) -> Result<BackupSummary, RestoreError> {
    let target = data_dir.join("sled");
    if fs::read_dir(&target).is_ok_and(|mut entries| entries.next().is_some()) {
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
        let summary = read_backup(input, |tree, entry| {
            if let Some(name) = tree {
                flush_batch(&mut batch)?;
                batch.0 = Some(db.open_tree(name)?);
            }
            if let Some((key, value)) = entry {
                batch.1.insert(key, value);
                batch.2 += 1;
                if batch.2 >= RESTORE_BATCH {
                    flush_batch(&mut batch)?;
                }
            }
            Ok(())
        })?;
        flush_batch(&mut batch)?;
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

type Batch = (Option<sled::Tree>, sled::Batch, usize);

#[allow(clippy::disallowed_methods)] // part of `restore`, before any server opens the database
fn flush_batch((tree, batch, count): &mut Batch) -> Result<(), RestoreError> {
    if let Some(tree) = tree {
        tree.apply_batch(std::mem::take(batch))?;
    }
    *count = 0;
    Ok(())
}

/// Parses a backup, handing each new tree name and each entry to `visit`; checks the digest.
fn read_backup(
    input: impl Read,
    mut visit: impl FnMut(Option<&[u8]>, Option<(Vec<u8>, Vec<u8>)>) -> Result<(), RestoreError>,
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
#[allow(clippy::disallowed_methods)] // tests plant entries directly
mod tests {
    use super::*;

    fn store_with_data(dir: &Path) -> Store {
        let store = Store::open(dir).unwrap();
        store.meta.insert(b"note", &b"hello"[..]).unwrap();
        store.users.insert(b"wei", &br#"{"x":1}"#[..]).unwrap();
        store
    }

    #[test]
    fn a_backup_restores_every_tree_and_checks_its_digest() {
        let source = tempfile::tempdir().unwrap();
        let store = store_with_data(source.path());
        let mut file = Vec::new();
        let written = store.snapshot().unwrap().write_to(&mut file).unwrap();
        assert_eq!(written.users, 1);
        assert_eq!(verify(file.as_slice()).unwrap(), written);

        let target = tempfile::tempdir().unwrap();
        assert_eq!(restore(file.as_slice(), target.path()).unwrap(), written);
        let restored = Store::open(target.path()).unwrap();
        assert_eq!(restored.meta.get(b"note").unwrap().unwrap(), b"hello");
        assert_eq!(restored.users.len(), 1);
    }

    #[test]
    fn a_damaged_backup_restores_nothing() {
        let source = tempfile::tempdir().unwrap();
        let store = store_with_data(source.path());
        let mut file = Vec::new();
        store.snapshot().unwrap().write_to(&mut file).unwrap();
        let middle = file.len() / 2;
        let mut flipped = file.clone();
        flipped[middle] ^= 0x01;
        for damaged in [&flipped[..], &file[..file.len() - 1], &file[..middle]] {
            let target = tempfile::tempdir().unwrap();
            assert!(matches!(
                restore(damaged, target.path()),
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
            .write_to(&mut file)
            .unwrap();
        let occupied = tempfile::tempdir().unwrap();
        drop(Store::open(occupied.path()).unwrap());
        assert!(matches!(
            restore(file.as_slice(), occupied.path()),
            Err(RestoreError::NotEmpty(_))
        ));
    }
}
