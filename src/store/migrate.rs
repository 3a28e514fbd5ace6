//! The storage format version and the ordered migrations that bring old data up to it.
//!
//! Each migration takes the database from version `n - 1` to `n`, runs once, in order, at
//! start-up, and records its version when done. Version 1 is the first format; a new
//! database starts at the newest version directly.

use super::engine::Engine;
use super::{StoreError, keys};

/// The newest format this build writes.
pub const CURRENT: u32 = 2;

/// Rewrites the database from one format version to the next.
type Migration = fn(&Engine) -> Result<(), StoreError>;

/// Migration `MIGRATIONS[i]` takes the database from version `i + 1` to `i + 2`.
const MIGRATIONS: &[Migration] = &[records_may_be_compressed];

/// 1 → 2: submission records may be zstd-compressed (`compression.rs`). Records written before
/// stay readable as they are, so nothing is rewritten; the version only keeps an older server,
/// which could not read the new records, from opening the database.
fn records_may_be_compressed(_: &Engine) -> Result<(), StoreError> {
    Ok(())
}

/// Runs at start-up, before the store (and its write path) exists; stamps `meta` directly.
pub fn run(engine: &Engine) -> Result<(), StoreError> {
    let meta = engine.tree(META)?;
    let found = match meta.get(keys::STORAGE_VERSION)? {
        Some(bytes) => decode_version(&bytes)?,
        None => {
            engine.stamp_meta(keys::STORAGE_VERSION, &CURRENT.to_be_bytes())?;
            return Ok(());
        }
    };
    if found > CURRENT {
        return Err(StoreError::TooNew {
            found,
            known: CURRENT,
        });
    }
    for version in found..CURRENT {
        let migration = MIGRATIONS[(version - 1) as usize];
        tracing::info!(from = version, to = version + 1, "migrating storage format");
        migration(engine)?;
        engine.stamp_meta(keys::STORAGE_VERSION, &(version + 1).to_be_bytes())?;
    }
    Ok(())
}

/// `meta`'s place in [`super::engine::TREES`].
const META: usize = 10;

pub(super) fn decode_version(bytes: &[u8]) -> Result<u32, StoreError> {
    let array: [u8; 4] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        tree: "meta",
        reason: format!("storage_version has {} bytes, expected 4", bytes.len()),
    })?;
    Ok(u32::from_be_bytes(array))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_version_below_current_has_a_migration() {
        assert_eq!(MIGRATIONS.len() as u32, CURRENT - 1);
    }

    fn engine() -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().unwrap();
        let sled = super::super::engine::sled_engine::Sled::open(dir.path(), 1 << 20).unwrap();
        (dir, Engine::Sled(sled))
    }

    #[test]
    fn a_new_database_is_stamped_with_the_current_version() {
        let (_dir, engine) = engine();
        run(&engine).unwrap();
        let stamped = engine
            .tree(META)
            .unwrap()
            .get(keys::STORAGE_VERSION)
            .unwrap();
        assert_eq!(stamped.as_deref(), Some(&CURRENT.to_be_bytes()[..]));
    }

    #[test]
    fn a_database_from_a_newer_server_is_refused() {
        let (_dir, engine) = engine();
        engine
            .stamp_meta(keys::STORAGE_VERSION, &(CURRENT + 1).to_be_bytes())
            .unwrap();
        assert!(matches!(run(&engine), Err(StoreError::TooNew { .. })));
    }

    #[test]
    fn meta_is_where_the_trees_say() {
        assert_eq!(super::super::engine::TREES[META], "meta");
    }
}
