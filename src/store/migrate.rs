//! The storage format version and the ordered migrations that bring old data up to it.
//!
//! Each migration takes the database from version `n - 1` to `n`, runs once, in order, at
//! start-up, and records its version when done. Version 1 is the first format; a new
//! database starts at the newest version directly.

use super::{StoreError, keys};

/// The newest format this build writes.
pub const CURRENT: u32 = 1;

/// Rewrites the database from one format version to the next.
type Migration = fn(&sled::Db) -> Result<(), StoreError>;

/// Migration `MIGRATIONS[i]` takes the database from version `i + 1` to `i + 2`.
const MIGRATIONS: &[Migration] = &[];

// Runs at start-up before the store (and its write path) exists; stamps `meta` directly.
#[allow(clippy::disallowed_methods)]
pub fn run(db: &sled::Db) -> Result<(), StoreError> {
    let meta = db.open_tree("meta")?;
    let found = match meta.get(keys::STORAGE_VERSION)? {
        Some(bytes) => decode_version(&bytes)?,
        None => {
            meta.insert(keys::STORAGE_VERSION, &CURRENT.to_be_bytes())?;
            db.flush()?;
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
        migration(db)?;
        meta.insert(keys::STORAGE_VERSION, &(version + 1).to_be_bytes())?;
        db.flush()?;
    }
    Ok(())
}

pub(super) fn decode_version(bytes: &[u8]) -> Result<u32, StoreError> {
    let array: [u8; 4] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        tree: "meta",
        reason: format!("storage_version has {} bytes, expected 4", bytes.len()),
    })?;
    Ok(u32::from_be_bytes(array))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests plant a newer format directly
mod tests {
    use super::*;

    #[test]
    fn every_version_below_current_has_a_migration() {
        assert_eq!(MIGRATIONS.len() as u32, CURRENT - 1);
    }

    #[test]
    fn a_new_database_is_stamped_with_the_current_version() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        run(&db).unwrap();
        let stamped = db
            .open_tree("meta")
            .unwrap()
            .get(keys::STORAGE_VERSION)
            .unwrap();
        assert_eq!(stamped.as_deref(), Some(&CURRENT.to_be_bytes()[..]));
    }

    #[test]
    fn a_database_from_a_newer_server_is_refused() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let meta = db.open_tree("meta").unwrap();
        meta.insert(keys::STORAGE_VERSION, &(CURRENT + 1).to_be_bytes())
            .unwrap();
        assert!(matches!(run(&db), Err(StoreError::TooNew { .. })));
    }
}
