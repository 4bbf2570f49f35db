//! The data-directory lock: one broker process per data directory.
//!
//! Two processes writing one directory corrupt it: both would append to the same Raft log
//! segment and partition files, each believing its page cache. Before anything in the
//! directory is read or written, [`DataDirLock::acquire`] takes an exclusive advisory lock
//! (`flock`, through `std::fs::File::try_lock`) on `<data>/.lock` — Kafka's file name — and
//! writes the holder's process id and node id into it, so that a refused process can name the
//! one that holds it. The lock is held until the [`DataDirLock`] is dropped: for the process
//! lifetime of `sluice-broker`, until `Node::serve` returns for an in-process node. The kernel
//! releases it when the process dies, however it dies, so a stale file never blocks a restart;
//! the file itself is left in place.
//!
//! The lock is per open file description, so a second `Node` in the same process (a test) is
//! refused exactly like a second process.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::BrokerError;

/// Name of the lock file inside the data directory.
pub const LOCK_FILE_NAME: &str = ".lock";

/// Bytes of the lock file read to name its holder; the holder writes about 30.
const LOCK_FILE_READ_BYTES_MAX: u64 = 256;

/// Who holds a data directory, as written into its lock file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockHolder {
    /// Operating-system process id.
    pub pid: u32,
    /// Broker (and Raft) node id.
    pub node_id: i32,
}

impl LockHolder {
    /// The lock file's contents: `pid=<pid> node=<node id>` and a newline.
    pub fn to_text(self) -> String {
        format!("pid={} node={}\n", self.pid, self.node_id)
    }

    /// Parses [`LockHolder::to_text`]; `None` for anything else (an empty file: the holder has
    /// locked it and not yet written, or was written by a future format).
    pub fn parse(text: &str) -> Option<LockHolder> {
        let mut pid = None;
        let mut node_id = None;
        for field in text.split_whitespace() {
            match field.split_once('=') {
                Some(("pid", value)) => pid = value.parse().ok(),
                Some(("node", value)) => node_id = value.parse().ok(),
                _ => {}
            }
        }
        Some(LockHolder { pid: pid?, node_id: node_id? })
    }
}

/// A held lock on a data directory; released when dropped.
#[derive(Debug)]
pub struct DataDirLock {
    /// Keeps the `flock` alive.
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Creates `data_dir` if needed and locks it for `node_id`, or says who holds it.
    pub fn acquire(data_dir: &Path, node_id: i32) -> Result<DataDirLock, BrokerError> {
        let path = data_dir.join(LOCK_FILE_NAME);
        let io = |source| BrokerError::DataDir { path: path.clone(), source };
        std::fs::create_dir_all(data_dir).map_err(|source| BrokerError::DataDir { path: data_dir.into(), source })?;
        // Not truncated on open: until the lock is ours the contents name the holder.
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                // A holder that is still writing its line gives a partial text: then unnamed.
                let _ = (&file).take(LOCK_FILE_READ_BYTES_MAX).read_to_string(&mut text);
                return Err(BrokerError::DataDirLocked {
                    data_dir: data_dir.to_path_buf(),
                    holder: LockHolder::parse(&text),
                });
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        let holder = LockHolder { pid: std::process::id(), node_id };
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(holder.to_text().as_bytes()).map_err(io)?;
        tracing::debug!(path = %path.display(), "data directory locked");
        Ok(DataDirLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The one line a refused broker prints: who holds `data_dir`.
pub fn locked_message(data_dir: &Path, holder: Option<LockHolder>) -> String {
    match holder {
        Some(holder) => format!(
            "data directory {} is locked by process {} (node {})",
            data_dir.display(),
            holder.pid,
            holder.node_id
        ),
        None => format!("data directory {} is locked by another process", data_dir.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the holder line round-trips and anything else names no holder.
    #[test]
    fn holder_text_round_trips_and_garbage_names_nobody() {
        let holder = LockHolder { pid: 1234, node_id: 7 };
        assert_eq!(LockHolder::parse(&holder.to_text()), Some(holder));
        assert_eq!(LockHolder::parse(""), None);
        assert_eq!(LockHolder::parse("pid=12"), None);
        assert_eq!(LockHolder::parse("pid=x node=1"), None);
        assert_eq!(
            locked_message(Path::new("./data"), Some(holder)),
            "data directory ./data is locked by process 1234 (node 7)"
        );
    }

    // Goal: a second lock on a held directory is refused naming the holder, and dropping the
    // first releases it. Method: two acquisitions in this process (flock is per open file
    // description, so this is the same refusal a second process gets).
    #[test]
    fn a_held_directory_is_refused_until_released() {
        let temp = tempfile::tempdir().unwrap();
        let data = temp.path().join("data");
        let first = DataDirLock::acquire(&data, 1).unwrap();
        match DataDirLock::acquire(&data, 2) {
            Err(BrokerError::DataDirLocked { holder, .. }) => {
                assert_eq!(holder, Some(LockHolder { pid: std::process::id(), node_id: 1 }))
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        drop(first);
        let again = DataDirLock::acquire(&data, 2).unwrap();
        let text = std::fs::read_to_string(again.path()).unwrap();
        assert_eq!(LockHolder::parse(&text), Some(LockHolder { pid: std::process::id(), node_id: 2 }));
    }
}
