//! What the AFL++ drivers in `src/bin/` share besides the targets themselves (which they
//! include from `fuzz/targets/`, as the crates' `fuzz_*` cargo tests do, with
//! `fuzz/harness.rs` for the heap bound).
//!
//! A driver run by `afl-fuzz` reads inputs in afl.rs's persistent loop. Run as
//! `DRIVER --write-seeds DIR`, it instead writes its target's seeds — the committed corpus
//! and the seeds the target builds itself (frames of real Raft entries, batches of every
//! codec) — to `DIR`, one file each, for `afl-fuzz -i DIR`: `scripts/fuzz.sh afl` does this.

use std::path::PathBuf;

/// If the command line is `--write-seeds DIR`, writes each of `seeds()` to `DIR/<name>` and
/// returns true (the driver then exits); otherwise returns false without calling `seeds`.
pub fn write_seeds_if_asked(seeds: impl FnOnce() -> Vec<(String, Vec<u8>)>) -> bool {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let [flag, dir] = arguments.as_slice() else {
        return false;
    };
    if flag != "--write-seeds" {
        return false;
    }
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    for (name, bytes) in seeds() {
        let path = dir.join(&name);
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
    true
}
