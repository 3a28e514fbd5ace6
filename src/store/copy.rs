//! `copy-store`: moves a county from sled (a stopped data directory) or a backup file into an
//! empty PostgreSQL database, and proves the copy.
//!
//! The copy is a restore (`backup.rs`): the source is written as a backup stream and read by
//! the PostgreSQL restore on the other end of a pipe, so the target takes everything in one
//! transaction and nothing of a failed copy is kept. Then every tree of the target is read
//! back and compared with the source, entry count and SHA-256 of its entries in key order, and
//! every attachment file the target's records name is checked against its hash.
//!
//! Running it again is safe: a target that holds exactly the source is left as it is (files a
//! crash kept from their place are copied now); a target holding anything else is refused.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read};
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::attachments::{ATTACHMENTS, AttachmentRecord};
use super::backup::{RestoreError, RestoreTarget, read_backup, restore};
use super::engine::{IVec, TRANSIENT, TREES, Tree, pg::Pg};
use super::{BackupSummary, Blobs, PgOptions, Snapshot, Store, StoreError, decode};

/// What to copy from.
pub enum CopySource<'a> {
    /// A data directory no server is using, with its attachments directory.
    DataDir {
        dir: &'a Path,
        attachments: &'a Path,
    },
    /// A file made by `survey-server backup`.
    Backup(&'a Path),
}

/// What a copy did and found.
#[derive(Debug)]
pub struct CopyReport {
    pub summary: BackupSummary,
    /// Every tree compared: name and entry count (the same in source and target).
    pub trees: Vec<(String, u64)>,
    /// The target held this very copy already (an earlier run).
    pub already_there: bool,
    /// Attachment files checked against their hash in the target directory.
    pub files_verified: u64,
    /// Files the records name that the source did not have either (left out, as a backup does).
    pub files_missing: Vec<String>,
}

/// Per tree: entry count and the SHA-256 of its entries (length-prefixed keys and values) in
/// key order. Short-lived state is left out: it is never copied.
type Fingerprint = BTreeMap<String, (u64, [u8; 32])>;

#[derive(Default)]
struct TreePrint {
    count: u64,
    hash: Sha256,
}

impl TreePrint {
    fn add(&mut self, key: &[u8], value: &[u8]) {
        self.count += 1;
        for part in [key, value] {
            self.hash.update((part.len() as u64).to_be_bytes());
            self.hash.update(part);
        }
    }

    fn finish(self) -> (u64, [u8; 32]) {
        (self.count, self.hash.finalize().into())
    }
}

/// Copies `source` into the PostgreSQL database of `options`, its attachment files into
/// `attachments_dir` (the directory the API nodes share), and verifies the result.
pub fn copy_store(
    source: CopySource<'_>,
    options: &PgOptions,
    attachments_dir: &Path,
) -> Result<CopyReport, RestoreError> {
    // A data directory is read once, from one snapshot, for the fingerprint and the copy.
    let snapshot = match &source {
        CopySource::DataDir { dir, .. } => {
            if !dir.join("sled").is_dir() {
                return Err(RestoreError::Damaged(format!(
                    "{} holds no survey-server database",
                    dir.display()
                )));
            }
            Some(Store::open(dir)?.snapshot()?)
        }
        CopySource::Backup(_) => None,
    };
    let (source_print, summary) = match (&source, &snapshot) {
        (CopySource::Backup(file), _) => {
            let (print, summary) = print_backup(file)?;
            (print, Some(summary))
        }
        (_, Some(snapshot)) => (print_entries(snapshot.trees()), None),
        (_, None) => (Fingerprint::new(), None),
    };
    let pg = Pg::connect(options)?;
    let target_print = print_target(&pg)?;
    let empty = target_print.values().all(|(count, _)| *count == 0);
    let already_there = !empty && same(&source_print, &target_print);
    let summary = if empty {
        copy_into(&source, snapshot.as_ref(), options, attachments_dir)?
    } else if already_there {
        fill_files(&source, &pg, attachments_dir)?;
        summary.unwrap_or_default()
    } else {
        return Err(RestoreError::NotEmpty(
            "PostgreSQL (with data other than this source's)".into(),
        ));
    };
    let copied = print_target(&pg)?;
    if !same(&source_print, &copied) {
        let differ: Vec<&str> = TREES
            .iter()
            .filter(|tree| source_print.get(**tree) != copied.get(**tree))
            .copied()
            .collect();
        return Err(RestoreError::Damaged(format!(
            "the copy differs from the source in {}",
            differ.join(", ")
        )));
    }
    let (files_verified, files_missing) = verify_files(&pg, attachments_dir)?;
    Ok(CopyReport {
        summary,
        trees: copied
            .iter()
            .map(|(tree, (count, _))| (tree.clone(), *count))
            .collect(),
        already_there,
        files_verified,
        files_missing,
    })
}

/// Two fingerprints match when every tree does; a tree absent from one is an empty one.
fn same(a: &Fingerprint, b: &Fingerprint) -> bool {
    let empty = TreePrint::default().finish();
    TREES.iter().filter(|tree| **tree != TRANSIENT).all(|tree| {
        a.get(*tree).copied().unwrap_or(empty) == b.get(*tree).copied().unwrap_or(empty)
    })
}

fn print_entries(trees: &[(String, Vec<(IVec, IVec)>)]) -> Fingerprint {
    let mut print = Fingerprint::new();
    for (name, entries) in trees {
        let mut tree = TreePrint::default();
        for (key, value) in entries {
            tree.add(key, value);
        }
        print.insert(name.clone(), tree.finish());
    }
    print
}

fn print_backup(file: &Path) -> Result<(Fingerprint, BackupSummary), RestoreError> {
    let input = File::open(file).map_err(StoreError::Io)?;
    let mut print = Fingerprint::new();
    let mut current: Option<(String, TreePrint)> = None;
    let summary = read_backup(
        input,
        |name, entry| {
            if let Some(name) = name {
                if let Some((done, tree)) = current.take() {
                    print.insert(done, tree.finish());
                }
                current = Some((
                    String::from_utf8_lossy(name).into_owned(),
                    TreePrint::default(),
                ));
            }
            if let (Some((key, value)), Some((_, tree))) = (entry, current.as_mut()) {
                tree.add(&key, &value);
            }
            Ok(())
        },
        |_, _| Ok(()),
    )?;
    if let Some((done, tree)) = current {
        print.insert(done, tree.finish());
    }
    Ok((print, summary))
}

/// The target's fingerprint, read tree by tree in pages (never all of it in memory).
fn print_target(pg: &Arc<Pg>) -> Result<Fingerprint, RestoreError> {
    let mut print = Fingerprint::new();
    for (index, name) in TREES.iter().enumerate() {
        if *name == TRANSIENT {
            continue;
        }
        let mut tree = TreePrint::default();
        for entry in Tree::Postgres(Arc::clone(pg), index).iter() {
            let (key, value) = entry?;
            tree.add(&key, &value);
        }
        print.insert((*name).to_owned(), tree.finish());
    }
    Ok(print)
}

/// The copy itself: the source as a backup stream, restored into PostgreSQL as it is written.
fn copy_into(
    source: &CopySource<'_>,
    snapshot: Option<&Snapshot>,
    options: &PgOptions,
    attachments_dir: &Path,
) -> Result<BackupSummary, RestoreError> {
    let target = RestoreTarget::Postgres(options);
    match (source, snapshot) {
        (CopySource::DataDir { .. }, None) => Err(RestoreError::Damaged(
            "the data directory was not read".into(),
        )),
        (CopySource::Backup(file), _) => {
            let input = File::open(file).map_err(StoreError::Io)?;
            restore(BufReader::new(input), target, attachments_dir)
        }
        (CopySource::DataDir { attachments, .. }, Some(snapshot)) => {
            let blobs = Blobs::open(attachments)?;
            let (reader, writer) = io::pipe()?;
            std::thread::scope(|scope| {
                let writing = scope.spawn(|| {
                    let mut out = BufWriter::with_capacity(1 << 20, writer);
                    snapshot.write_to(&mut out, Some(&blobs))
                    // Dropping `out` closes the pipe: the reader sees the end.
                });
                let restored = restore(reader, target, attachments_dir);
                match writing.join() {
                    Ok(Err(error)) if restored.is_err() => Err(StoreError::Io(error).into()),
                    Err(_) => Err(RestoreError::Damaged("the source could not be read".into())),
                    _ => restored,
                }
            })
        }
    }
}

/// Copies the files the source has and the target directory lacks (a copy whose database
/// committed but whose files were not all moved into place).
fn fill_files(
    source: &CopySource<'_>,
    pg: &Arc<Pg>,
    attachments_dir: &Path,
) -> Result<(), RestoreError> {
    let target = Blobs::open(attachments_dir)?;
    let wanted = named_files(pg)?;
    match source {
        CopySource::DataDir { attachments, .. } => {
            let from = Blobs::open(attachments)?;
            for sha256 in wanted.iter().filter(|sha256| !target.has(sha256)) {
                if let Ok(file) = from.open_object(sha256) {
                    target.write_object(sha256, BufReader::new(file))?;
                }
            }
        }
        CopySource::Backup(file) => {
            let input = File::open(file).map_err(StoreError::Io)?;
            read_backup(
                input,
                |_, _| Ok(()),
                |sha256, bytes| {
                    if wanted.contains(sha256) && !target.has(sha256) {
                        target.write_object(sha256, bytes)?;
                    }
                    Ok(())
                },
            )?;
        }
    }
    Ok(())
}

/// The hashes of every file the target's attachment records name.
fn named_files(pg: &Arc<Pg>) -> Result<BTreeSet<String>, RestoreError> {
    let index = TREES
        .iter()
        .position(|tree| *tree == ATTACHMENTS)
        .unwrap_or_default();
    let mut hashes = BTreeSet::new();
    for entry in Tree::Postgres(Arc::clone(pg), index).iter() {
        let (_, value) = entry?;
        let record: AttachmentRecord = decode(ATTACHMENTS, &value)?;
        hashes.insert(record.sha256);
    }
    Ok(hashes)
}

/// Checks every named file against its hash; how many were right, and which are absent.
fn verify_files(pg: &Arc<Pg>, attachments_dir: &Path) -> Result<(u64, Vec<String>), RestoreError> {
    let blobs = Blobs::open(attachments_dir)?;
    let mut verified = 0;
    let mut missing = Vec::new();
    for sha256 in named_files(pg)? {
        let mut file = match blobs.open_object(&sha256) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                missing.push(sha256);
                continue;
            }
            Err(error) => return Err(StoreError::Io(error).into()),
        };
        let mut hash = Sha256::new();
        let mut buffer = vec![0; 256 * 1024];
        loop {
            let n = file.read(&mut buffer).map_err(StoreError::Io)?;
            if n == 0 {
                break;
            }
            hash.update(&buffer[..n]);
        }
        if super::hex(&hash.finalize()) != sha256 {
            return Err(RestoreError::Damaged(format!(
                "attachment file {sha256} in {} does not have that hash",
                attachments_dir.display()
            )));
        }
        verified += 1;
    }
    Ok((verified, missing))
}
