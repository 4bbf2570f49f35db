//! The stamp at the start of an end-to-end record's value: which run wrote it and when it was
//! meant to be sent.
//!
//! Layout ([`STAMP_BYTES`]): the run's id (u64 little-endian), so records of another run in the
//! same topic are ignored, then the intended send time in nanoseconds after this process's
//! [`origin`] (u64 little-endian). Producer and consumer run in the same process and share its
//! monotonic clock, so no clock synchronisation is involved.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

/// Bytes of the stamp; an end-to-end record's value must be at least this long.
pub const STAMP_BYTES: usize = 16;

/// The instant stamps count from: the first call in this process.
pub fn origin() -> Instant {
    static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
    Instant::from_std(*ORIGIN.get_or_init(std::time::Instant::now))
}

/// Overwrites the first [`STAMP_BYTES`] of `value` with `run_id` and `intended`.
pub fn write(value: &mut [u8], run_id: u64, intended: Instant) {
    let offset_ns = u64::try_from(intended.saturating_duration_since(origin()).as_nanos()).unwrap_or(u64::MAX);
    value[..8].copy_from_slice(&run_id.to_le_bytes());
    value[8..STAMP_BYTES].copy_from_slice(&offset_ns.to_le_bytes());
}

/// The intended send time in `value`'s stamp, if `value` has one from run `run_id`.
pub fn read(value: &[u8], run_id: u64) -> Option<Instant> {
    let stamp = value.get(..STAMP_BYTES)?;
    let (id, offset_ns) = stamp.split_at(8);
    if u64::from_le_bytes(id.try_into().ok()?) != run_id {
        return None;
    }
    Some(origin() + Duration::from_nanos(u64::from_le_bytes(offset_ns.try_into().ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_for_its_own_run_only() {
        let intended = origin() + Duration::from_micros(1500);
        let mut value = vec![0xAB; 64];
        write(&mut value, 7, intended);
        assert_eq!(read(&value, 7), Some(intended));
        assert_eq!(read(&value, 8), None, "another run's record");
        assert_eq!(read(&value[..15], 7), None, "too short for a stamp");
        assert!(value[STAMP_BYTES..].iter().all(|byte| *byte == 0xAB), "the rest of the value is kept");
    }
}
