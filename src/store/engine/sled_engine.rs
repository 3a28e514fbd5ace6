//! The embedded engine: sled, in the data directory.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use sled::Transactional;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, UnabortableTransactionError,
};

use super::{Abort, TREES, TreeEntries, TxError, TxTree};
use crate::store::StoreError;

/// sled's own default tree; this server never writes it.
const SLED_DEFAULT_TREE: &[u8] = b"__sled__default";

pub struct Sled {
    pub db: sled::Db,
    /// Added to sled's own counter (see `keys::NUMBER_FLOOR`).
    floor: u64,
    trees: Vec<sled::Tree>,
    dir: PathBuf,
}

/// What stops a sled transaction: the caller's reason or broken data (conflicts are retried).
enum Stop<R> {
    Refused(R),
    Broken(StoreError),
}

impl From<UnabortableTransactionError> for TxError {
    fn from(error: UnabortableTransactionError) -> Self {
        match error {
            UnabortableTransactionError::Conflict => TxError::Conflict,
            UnabortableTransactionError::Storage(error) => TxError::Storage(error.into()),
        }
    }
}

impl Sled {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        let config = sled::Config::new().path(dir).cache_capacity(cache_bytes);
        let db = config.open().map_err(|e| match e {
            // sled reports a held file lock only in its message.
            sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
                StoreError::Locked
            }
            other => other.into(),
        })?;
        let trees: Vec<sled::Tree> = TREES
            .iter()
            .map(|name| db.open_tree(name))
            .collect::<Result<_, _>>()?;
        let meta = TREES.iter().position(|t| *t == "meta").unwrap_or_default();
        let floor = match trees[meta].get(crate::store::keys::NUMBER_FLOOR)? {
            Some(bytes) => {
                u64::from_be_bytes(bytes.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    tree: "meta",
                    reason: "number_floor is not 8 bytes".into(),
                })?)
            }
            None => 0,
        };
        Ok(Self {
            db,
            floor,
            trees,
            dir: dir.to_owned(),
        })
    }

    /// A number larger than any drawn before (in this database or the one it was restored from).
    pub fn generate_id(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?.saturating_add(self.floor))
    }

    pub fn tree(&self, index: usize) -> &sled::Tree {
        &self.trees[index]
    }

    pub fn transaction<T, R>(
        &self,
        numbers: usize,
        write: impl Fn(&[TxTree<'_>], &[u64]) -> Result<T, Abort<R>>,
    ) -> Result<Result<T, R>, StoreError> {
        // Drawn before the transaction: sled's id generator may write, which it cannot do inside one.
        let numbers = (0..numbers)
            .map(|_| self.generate_id())
            .collect::<Result<Vec<_>, _>>()?;
        let trees: Vec<&sled::Tree> = self.trees.iter().collect();
        // The one place a transaction runs.
        #[allow(clippy::disallowed_methods)]
        let outcome = trees[..].transaction(|views| {
            let views: Vec<TxTree<'_>> = views.iter().map(TxTree::Sled).collect();
            write(&views, &numbers).map_err(|abort| match abort {
                Abort::Refused(reason) => {
                    ConflictableTransactionError::Abort(Stop::Refused(reason))
                }
                Abort::Broken(error) => ConflictableTransactionError::Abort(Stop::Broken(error)),
                Abort::Conflict => ConflictableTransactionError::Conflict,
            })
        });
        match outcome {
            Ok(value) => Ok(Ok(value)),
            Err(TransactionError::Abort(Stop::Refused(reason))) => Ok(Err(reason)),
            Err(TransactionError::Abort(Stop::Broken(error))) => Err(error),
            Err(TransactionError::Storage(error)) => Err(error.into()),
        }
    }

    pub fn syncer(&self) -> io::Result<Syncer> {
        // The database files were just created or opened: make their directory entries durable once.
        File::open(&self.dir)?.sync_all()?;
        Ok(Syncer {
            db: self.db.clone(),
            log: File::open(self.dir.join("db"))?,
            blobs_dir: self.dir.join("blobs"),
            synced_blobs: BTreeSet::new(),
        })
    }

    pub fn snapshot(&self) -> Result<TreeEntries, StoreError> {
        let mut trees = Vec::new();
        for name in self.db.tree_names() {
            if name == SLED_DEFAULT_TREE {
                continue;
            }
            let tree = self.db.open_tree(&name)?;
            let entries = tree.iter().collect::<Result<Vec<_>, _>>()?;
            trees.push((String::from_utf8_lossy(&name).into_owned(), entries));
        }
        Ok(trees)
    }

    // Start-up only, before the store (and its write path) exists.
    #[allow(clippy::disallowed_methods)]
    pub fn stamp_meta(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.db.open_tree("meta")?.insert(key, value)?;
        self.db.flush()?;
        Ok(())
    }
}

/// Makes everything sled has accepted so far durable, including against power loss.
///
/// sled 0.34.7's `flush_async` deadlocks when called concurrently (sled #1308), and its
/// `flush` on Linux ends in `sync_file_range`, which does not survive power loss (sled #1452):
/// so after `flush` the log file and any new blob files are `fsync`ed here.
pub struct Syncer {
    db: sled::Db,
    /// The log file, reopened so that we can `fsync` it ourselves.
    log: File,
    blobs_dir: PathBuf,
    /// Blob files already fsynced; sled never rewrites a blob in place.
    synced_blobs: BTreeSet<std::ffi::OsString>,
}

impl Syncer {
    pub fn sync(&mut self) -> io::Result<()> {
        self.db.flush().map_err(io::Error::other)?;
        // Blobs first: a log made durable before the blobs it points to could, after a power
        // loss, name a value that is not there; blobs without their log entry are only orphans.
        self.sync_new_blobs()?;
        self.log.sync_data()
    }

    /// sled writes values too big for a log segment to separate blob files without fsync.
    fn sync_new_blobs(&mut self) -> io::Result<()> {
        let blobs_dir = &self.blobs_dir;
        let mut present = BTreeSet::new();
        let mut any_new = false;
        for entry in std::fs::read_dir(blobs_dir)? {
            let name = entry?.file_name();
            if !self.synced_blobs.contains(&name) {
                match File::open(blobs_dir.join(&name)) {
                    Ok(blob) => blob.sync_data()?,
                    // sled removed a blob it no longer needs: nothing to make durable.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
                any_new = true;
            }
            present.insert(name);
        }
        if any_new {
            File::open(blobs_dir)?.sync_all()?;
        }
        self.synced_blobs = present;
        Ok(())
    }
}
