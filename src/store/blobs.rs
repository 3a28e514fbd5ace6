//! Attachment bytes on disk, under `SURVEY_ATTACHMENTS_DIR`: each upload under way in
//! `uploads/<upload id>`, each kept file once, by its SHA-256, in `objects/<2 hex>/<62 hex>`.
//!
//! Nothing here is in sled: a county's photos are gigabytes, and a database that small stays
//! quick to back up, scan and restore. What a file is for is recorded in sled (`attachments.rs`).
//! Every step that must survive a crash is fsynced, and so is the directory that names it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The attachments directory.
#[derive(Debug)]
pub struct Blobs {
    root: PathBuf,
    /// `<root>/objects`: the kept files.
    objects: PathBuf,
}

impl Blobs {
    /// Opens (creating if missing) the directory.
    pub fn open(root: &Path) -> io::Result<Self> {
        for dir in ["uploads", "objects"] {
            fs::create_dir_all(root.join(dir))?;
        }
        Ok(Self {
            root: root.to_owned(),
            objects: root.join("objects"),
        })
    }

    /// Kept files laid out directly under `objects` (a restore's staging directory): only
    /// [`Blobs::write_object`] and reading are meant for it.
    pub(super) fn at(objects: &Path) -> Self {
        Self {
            root: objects.to_owned(),
            objects: objects.to_owned(),
        }
    }

    fn partial(&self, id: Uuid) -> PathBuf {
        self.root.join("uploads").join(id.simple().to_string())
    }

    /// Where the file with this SHA-256 (hex) is kept; `None` for text that is not one.
    pub fn object(&self, sha256: &str) -> Option<PathBuf> {
        let is_hash = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
        let (fan, rest) = sha256.split_at_checked(2)?;
        is_hash.then(|| self.objects.join(fan).join(rest))
    }

    /// Whether the file with this SHA-256 is kept.
    pub fn has(&self, sha256: &str) -> bool {
        self.object(sha256).is_some_and(|path| path.is_file())
    }

    /// Creates the empty file of a new upload, durably (the file and its name).
    pub fn create_partial(&self, id: Uuid) -> io::Result<()> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.partial(id))?;
        file.sync_all()?;
        sync_dir(&self.root.join("uploads"))
    }

    /// An upload's file, for appending; its length is the upload's offset.
    pub fn open_partial(&self, id: Uuid) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.partial(id))
    }

    /// Locks an upload's file against every other writer, on every node sharing this directory
    /// (an OS file lock, released when the returned file is dropped); `None` when the file is
    /// gone. `WouldBlock` when another holds it.
    pub fn lock_partial(&self, id: Uuid) -> io::Result<Option<File>> {
        let file = match File::open(self.partial(id)) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// Bytes an upload has on disk (0 when its file is gone).
    pub fn offset(&self, id: Uuid) -> io::Result<u64> {
        match fs::metadata(self.partial(id)) {
            Ok(meta) => Ok(meta.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// The SHA-256 (hex) and first bytes of an upload's file.
    pub fn digest_partial(&self, id: Uuid, head_bytes: usize) -> io::Result<(String, Vec<u8>)> {
        let mut file = File::open(self.partial(id))?;
        let mut hash = Sha256::new();
        let mut head = Vec::with_capacity(head_bytes);
        let mut buffer = vec![0; 256 * 1024];
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            let wanted = head_bytes.saturating_sub(head.len()).min(n);
            head.extend_from_slice(&buffer[..wanted]);
            hash.update(&buffer[..n]);
        }
        Ok((hex(&hash.finalize()), head))
    }

    /// Keeps an upload's file as the object `sha256`: a second name (hard link) for the same
    /// bytes, made durable; an identical file kept before is simply kept once. The upload's
    /// own name stays until [`Blobs::remove_partial`], so a crash in between loses nothing.
    pub fn keep(&self, id: Uuid, sha256: &str) -> io::Result<()> {
        let object = self
            .object(sha256)
            .ok_or_else(|| io::Error::other("not a hash"))?;
        let fan = object
            .parent()
            .ok_or_else(|| io::Error::other("no parent"))?;
        if !fan.is_dir() {
            fs::create_dir_all(fan)?;
            sync_dir(&self.objects)?;
        }
        match fs::hard_link(self.partial(id), &object) {
            Ok(()) => sync_dir(fan),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes an upload's file (done, refused, terminated or expired).
    pub fn remove_partial(&self, id: Uuid) -> io::Result<()> {
        match fs::remove_file(self.partial(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Opens a kept file.
    pub fn open_object(&self, sha256: &str) -> io::Result<File> {
        File::open(
            self.object(sha256)
                .ok_or_else(|| io::Error::other("not a hash"))?,
        )
    }

    /// Writes a kept file from `bytes` (a restore): into a temporary file, checked against its
    /// name, fsynced, renamed into place, directory fsynced.
    pub fn write_object(&self, sha256: &str, mut bytes: impl Read) -> io::Result<()> {
        let object = self
            .object(sha256)
            .ok_or_else(|| io::Error::other("not a hash"))?;
        let fan = object
            .parent()
            .ok_or_else(|| io::Error::other("no parent"))?;
        fs::create_dir_all(fan)?;
        let mut temporary = tempfile::NamedTempFile::new_in(fan)?;
        let mut hash = Sha256::new();
        let mut buffer = vec![0; 256 * 1024];
        loop {
            let n = bytes.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            hash.update(&buffer[..n]);
            temporary.write_all(&buffer[..n])?;
        }
        if hex(&hash.finalize()) != sha256 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("file {sha256} does not have that SHA-256"),
            ));
        }
        temporary.as_file().sync_all()?;
        temporary.persist(&object).map_err(|e| e.error)?;
        sync_dir(fan)
    }
}

/// Makes a directory's entries (a created, linked or renamed file) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_locked_by_one_node_is_refused_to_another_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let (node_a, node_b) = (
            Blobs::open(dir.path()).unwrap(),
            Blobs::open(dir.path()).unwrap(),
        );
        let id = Uuid::new_v4();
        assert!(
            node_a.lock_partial(id).unwrap().is_none(),
            "no file, no lock"
        );
        node_a.create_partial(id).unwrap();
        let held = node_a.lock_partial(id).unwrap().expect("locked");
        let refused = node_b.lock_partial(id).expect_err("refused");
        assert_eq!(refused.kind(), io::ErrorKind::WouldBlock);
        drop(held);
        assert!(node_b.lock_partial(id).unwrap().is_some());
    }

    #[test]
    fn a_kept_file_is_found_by_its_hash_and_kept_once() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for id in [a, b] {
            blobs.create_partial(id).unwrap();
            blobs
                .open_partial(id)
                .unwrap()
                .write_all(b"photo bytes")
                .unwrap();
        }
        assert_eq!(blobs.offset(a).unwrap(), 11);
        let (sha, head) = blobs.digest_partial(a, 5).unwrap();
        assert_eq!(head, b"photo");
        assert_eq!(sha, hex(&Sha256::digest(b"photo bytes")));
        blobs.keep(a, &sha).unwrap();
        blobs.keep(b, &sha).unwrap();
        blobs.remove_partial(a).unwrap();
        blobs.remove_partial(b).unwrap();
        assert_eq!(blobs.offset(a).unwrap(), 0);
        assert!(blobs.has(&sha));
        let mut kept = String::new();
        blobs
            .open_object(&sha)
            .unwrap()
            .read_to_string(&mut kept)
            .unwrap();
        assert_eq!(kept, "photo bytes");
        assert_eq!(
            fs::read_dir(dir.path().join("objects").join(&sha[..2]))
                .unwrap()
                .count(),
            1
        );
    }

    #[test]
    fn a_restored_file_must_match_its_name_and_paths_cannot_be_smuggled_in() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let sha = hex(&Sha256::digest(b"x"));
        assert!(blobs.write_object(&sha, &b"y"[..]).is_err());
        assert!(!blobs.has(&sha));
        blobs.write_object(&sha, &b"x"[..]).unwrap();
        assert!(blobs.has(&sha));
        assert!(blobs.object("../../etc/passwd").is_none());
        assert!(blobs.object(&"g".repeat(64)).is_none());
    }
}
